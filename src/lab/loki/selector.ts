/**
 * The part of LogQL the lab's receiver answers: a stream selector `{name="value", other!="x", re=~"a.*", nre!~"b"}`
 * optionally followed by line filters `|= "text"`, `!= "text"`, `|~ "re"`, `!~ "re"`.
 */
export type MatchOp = '=' | '!=' | '=~' | '!~';
export interface LabelMatcher {
  name: string;
  op: MatchOp;
  value: string;
}
export interface LineFilter {
  op: '|=' | '!=' | '|~' | '!~';
  value: string;
}
export interface LogSelector {
  matchers: LabelMatcher[];
  filters: LineFilter[];
}

export class SelectorError extends Error {
  override readonly name = 'SelectorError';
}

/** A Go-style double-quoted string or a backquoted raw string, starting at s[pos]; returns [value, next]. */
function readString(s: string, pos: number): [string, number] {
  const q = s[pos];
  if (q === '`') {
    const end = s.indexOf('`', pos + 1);
    if (end < 0) throw new SelectorError('unterminated raw string');
    return [s.slice(pos + 1, end), end + 1];
  }
  if (q !== '"') throw new SelectorError(`expected a quoted string at position ${pos}`);
  let out = '';
  for (let i = pos + 1; i < s.length; i++) {
    const c = s[i]!;
    if (c === '"') return [out, i + 1];
    if (c === '\\') {
      const n = s[++i];
      const esc: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"' };
      if (n === undefined) break;
      out += esc[n] ?? `\\${n}`;
    } else out += c;
  }
  throw new SelectorError('unterminated string');
}

export function parseSelector(query: string): LogSelector {
  const s = query.trim();
  let pos = 0;
  const skip = () => {
    while (pos < s.length && /\s/.test(s[pos]!)) pos++;
  };
  skip();
  if (s[pos] !== '{') throw new SelectorError('a query starts with a stream selector {label="value"}');
  pos++;
  const matchers: LabelMatcher[] = [];
  for (;;) {
    skip();
    if (s[pos] === '}') {
      pos++;
      break;
    }
    const m = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(s.slice(pos));
    if (!m) throw new SelectorError(`expected a label name at position ${pos}`);
    pos += m[0].length;
    skip();
    const op = (['=~', '!~', '!=', '='] as const).find((o) => s.startsWith(o, pos));
    if (!op) throw new SelectorError(`expected =, !=, =~ or !~ after ${m[0]}`);
    pos += op.length;
    skip();
    const [value, next] = readString(s, pos);
    pos = next;
    matchers.push({ name: m[0], op, value });
    skip();
    if (s[pos] === ',') pos++;
    else if (s[pos] !== '}') throw new SelectorError(`expected , or } at position ${pos}`);
  }
  if (!matchers.some((m) => !matchOne(m, ''))) {
    throw new SelectorError('queries require at least one matcher that does not match the empty string');
  }
  const filters: LineFilter[] = [];
  for (;;) {
    skip();
    if (pos >= s.length) break;
    const op = (['|=', '!=', '|~', '!~'] as const).find((o) => s.startsWith(o, pos));
    if (!op) throw new SelectorError(`unsupported expression at position ${pos}: only line filters follow a selector`);
    pos += op.length;
    skip();
    const [value, next] = readString(s, pos);
    pos = next;
    filters.push({ op, value });
  }
  return { matchers, filters };
}

function anchored(re: string): RegExp {
  try {
    return new RegExp(`^(?:${re})$`);
  } catch (error) {
    throw new SelectorError(`invalid regular expression ${re}: ${(error as Error).message}`);
  }
}

function matchOne(m: LabelMatcher, value: string): boolean {
  switch (m.op) {
    case '=':
      return value === m.value;
    case '!=':
      return value !== m.value;
    case '=~':
      return anchored(m.value).test(value);
    case '!~':
      return !anchored(m.value).test(value);
  }
}

export function matchesLabels(sel: LogSelector, labels: Record<string, string>): boolean {
  return sel.matchers.every((m) => matchOne(m, labels[m.name] ?? ''));
}

export function matchesLine(sel: LogSelector, line: string): boolean {
  return sel.filters.every((f) => {
    switch (f.op) {
      case '|=':
        return line.includes(f.value);
      case '!=':
        return !line.includes(f.value);
      case '|~':
        return new RegExp(f.value).test(line);
      default:
        return !new RegExp(f.value).test(line);
    }
  });
}
