/**
 * The input conventions shared by every action input and CLI flag:
 * - lists: newline- or comma-separated;
 * - maps: `KEY=value` lines, newline-only, with a heredoc form (`KEY<<EOF` ... `EOF`) for multi-line values;
 * - booleans: `true` / `false`;
 * - durations: see ../util/duration.ts.
 * Each parser returns a result instead of throwing so that the schema layer can name the field.
 */
export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

export function parseList(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Newline-only list, for values that may contain a comma. */
export function parseLines(text: string): string[] {
  return text
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export function parseBoolean(text: string): Parsed<boolean> {
  const t = text.trim();
  if (t === 'true') return { ok: true, value: true };
  if (t === 'false') return { ok: true, value: false };
  return { ok: false, error: `must be true or false, got ${JSON.stringify(t)}` };
}

export interface MapEntry {
  key: string;
  value: string;
  /** 1-based line of the entry within the input text. */
  line: number;
}

/**
 * Parses `KEY=value` lines and heredocs. Blank lines and lines starting with `#` are skipped.
 * A value keeps everything after the first `=` byte for byte (no trimming of inner spaces, no quote handling),
 * so that hostile values arrive unchanged. Duplicate keys are an error.
 */
export function parseMap(text: string, opts: { keyPattern?: RegExp } = {}): Parsed<MapEntry[]> {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const out: MapEntry[] = [];
  const seen = new Set<string>();
  const keyPattern = opts.keyPattern ?? /^[A-Za-z_][A-Za-z0-9_.-]*$/;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const heredoc = /^([^=<\s]+)\s*<<\s*([A-Za-z_][A-Za-z0-9_]*)$/.exec(line);
    let key: string;
    let value: string;
    const start = i + 1;
    if (heredoc) {
      key = heredoc[1]!;
      const end = heredoc[2]!;
      const body: string[] = [];
      let closed = false;
      for (i++; i < lines.length; i++) {
        if (lines[i]!.trim() === end) {
          closed = true;
          break;
        }
        body.push(lines[i]!);
      }
      if (!closed)
        return { ok: false, error: `line ${start}: heredoc ${key}<<${end} is never closed by a line "${end}"` };
      value = body.join('\n');
    } else {
      const eq = raw.indexOf('=');
      if (eq <= 0)
        return { ok: false, error: `line ${start}: expected KEY=value or KEY<<EOF, got ${JSON.stringify(line)}` };
      key = raw.slice(0, eq).trim();
      value = raw.slice(eq + 1);
      if (value.endsWith('\r')) value = value.slice(0, -1);
    }
    if (!keyPattern.test(key)) return { ok: false, error: `line ${start}: invalid key ${JSON.stringify(key)}` };
    if (seen.has(key)) return { ok: false, error: `line ${start}: duplicate key ${JSON.stringify(key)}` };
    seen.add(key);
    out.push({ key, value, line: start });
  }
  return { ok: true, value: out };
}
