/**
 * The one shell word splitter: Python's `shlex.split(text, posix=True)`, which Ansible uses for inventory lines
 * (with comments), `-e` arguments, and the `command` of docker_container. No expansion of any kind: `$(id)` and
 * backquotes stay text.
 * - single quotes are literal;
 * - inside double quotes a backslash escapes only `"` and `\` (`"\$"` stays `\$`, as in shlex, not as in sh);
 * - outside quotes a backslash escapes the next character;
 * - with `comments`, a `#` outside quotes ends the text (also in the middle of a word, as in shlex).
 */
export function splitShellWords(
  text: string,
  opts: { comments?: boolean } = {},
): { words: string[] } | { error: string } {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) return { error: 'unclosed single quote' };
      cur += text.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      let k = i + 1;
      for (; k < text.length && text[k] !== '"'; k++) {
        if (text[k] === '\\' && (text[k + 1] === '"' || text[k + 1] === '\\')) k++;
        cur += text[k];
      }
      if (k >= text.length) return { error: 'unclosed double quote' };
      i = k;
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 < text.length) cur += text[++i];
      inWord = true;
    } else if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else if (c === '#' && opts.comments) {
      break;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return { words };
}
