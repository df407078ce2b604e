import { RE2JS } from 're2js';
import type { Parsed } from '../config/conventions.js';

/**
 * Go's regular expression dialect (RE2), the one blackbox_exporter compiles its `fail_if_*` patterns with.
 * JavaScript's RegExp would accept lookaheads and backreferences that RE2 refuses, and read `\A`, `\z`,
 * `[[:alpha:]]` or `(?i)` differently or not at all; RE2JS reads them as Go does.
 */
export interface GoRegexp {
  /** The pattern as written. */
  source: string;
  /** Unanchored search, as Go's MatchString. */
  test(text: string): boolean;
}

/** Compiles `pattern`, or says which construct RE2 (Go 1.19, as in blackbox_exporter 0.23) refuses. Pure. */
export function compileGoRegexp(pattern: string): Parsed<GoRegexp> {
  // Go before 1.22 has only (?P<name>...): (?<name>...) is refused there, while RE2JS takes it.
  const named = /(?:^|[^\\])(?:\\\\)*(\(\?<)(?![=!])/.exec(pattern);
  if (named)
    return {
      ok: false,
      error: 'Go refuses the named group `(?<name>...)` (write `(?P<name>...)`)',
    };
  try {
    const re = RE2JS.compile(pattern);
    return { ok: true, value: { source: pattern, test: (text) => re.matcher(text).find() } };
  } catch (e) {
    const msg = (e as Error).message.replace(/^error parsing regexp: /, '');
    return { ok: false, error: `Go's RE2 refuses it: ${msg}${hint(msg)}` };
  }
}

function hint(msg: string): string {
  if (msg.includes('`(?=') || msg.includes('`(?!')) return ' (lookaheads do not exist in RE2)';
  if (msg.includes('`(?<=') || msg.includes('`(?<!')) return ' (lookbehinds do not exist in RE2)';
  if (/invalid escape sequence: `\\[1-9]/.test(msg)) return ' (backreferences do not exist in RE2)';
  return '';
}
