/**
 * The one shell-quoting function. Every remote command is built as argv (an array) and turned into a
 * POSIX shell string here, and nowhere else. Single quotes make every byte literal: `$(...)`, backquotes,
 * `\` and newlines included; an embedded single quote becomes '\''.
 */
export function shellQuote(argv: readonly string[]): string {
  return argv.map(quoteWord).join(' ');
}

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function quoteWord(word: string): string {
  if (word === '') return "''";
  if (SAFE.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
