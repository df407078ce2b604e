import type { Parsed } from '../config/conventions.js';
import { formatDuration, parseDuration } from '../util/duration.js';

/**
 * Gatus-style conditions, parsed once (pure) before any request and evaluated after each attempt:
 *   [STATUS] == 200          [STATUS] < 300            [STATUS] == any(200, 204)
 *   [BODY].status == UP      [BODY].data[0].id == 7    [BODY] == pat(*ok*)     len([BODY].items) > 0   has([BODY].x) == true
 *   [RESPONSE_TIME] < 300    (a bare number means ms, as in Gatus; 1.5s, 300ms also work)
 *   [CERTIFICATE_EXPIRATION] > 720h   (units ms, s, m, h, d)
 *   [CONNECTED] == true      [IP] == 127.0.0.1
 */
export type Operator = '==' | '!=' | '<' | '<=' | '>' | '>=';
type PathSegment = string | number;

export type Placeholder =
  | { kind: 'STATUS' }
  | { kind: 'BODY'; path: PathSegment[] }
  | { kind: 'RESPONSE_TIME' }
  | { kind: 'CERTIFICATE_EXPIRATION' }
  | { kind: 'CONNECTED' }
  | { kind: 'IP' };

export type Operand =
  | { kind: 'number'; value: number }
  | { kind: 'text'; value: string }
  | { kind: 'pattern'; value: string; re: RegExp }
  | { kind: 'any'; values: string[] };

export interface Condition {
  text: string;
  /** The two sides as written, for messages. */
  leftText: string;
  rightText: string;
  fn?: 'len' | 'has';
  placeholder: Placeholder;
  op: Operator;
  right: Operand;
}

/** What one attempt observed, as conditions see it. */
export interface Observation {
  connected: boolean;
  status?: number;
  body?: string;
  responseTimeMs: number;
  /** Earliest expiry in the server's certificate chain. */
  certExpiry?: Date;
  ip?: string;
  now: Date;
}

export interface ConditionResult {
  condition: string;
  ok: boolean;
  /** The condition with the observed value, e.g. `[STATUS] (503) == 200`. */
  resolved: string;
}

const ORDERING = new Set<Operator>(['<', '<=', '>', '>=']);

export function parseCondition(text: string): Parsed<Condition> {
  const t = text.trim();
  const fail = (why: string): Parsed<Condition> => ({ ok: false, error: `condition ${JSON.stringify(t)}: ${why}` });
  const m = /^(.+?)\s*(==|!=|<=|>=|<|>)\s*(.*)$/.exec(t);
  if (!m) return fail('expected `<placeholder> <operator> <value>`, e.g. `[STATUS] == 200`');
  const leftText = m[1]!.trim();
  let left = leftText;
  const op = m[2] as Operator;
  const rightText = m[3]!.trim();
  if (rightText === '') return fail(`nothing to compare with after ${op}`);

  let fn: Condition['fn'];
  const call = /^(len|has)\((.*)\)$/.exec(left);
  if (call) {
    fn = call[1] as 'len' | 'has';
    left = call[2]!.trim();
  }
  const ph = /^\[([A-Z_]+)\](.*)$/.exec(left);
  if (!ph)
    return fail(
      `${JSON.stringify(left)} is not a placeholder: use [STATUS], [BODY], [RESPONSE_TIME], [CERTIFICATE_EXPIRATION], [CONNECTED] or [IP]`,
    );
  const name = ph[1]!;
  const suffix = ph[2]!;
  let placeholder: Placeholder;
  switch (name) {
    case 'STATUS':
    case 'RESPONSE_TIME':
    case 'CERTIFICATE_EXPIRATION':
    case 'CONNECTED':
    case 'IP':
      if (suffix !== '') return fail(`[${name}] takes no path (only [BODY] does)`);
      placeholder = { kind: name };
      break;
    case 'BODY': {
      const path = parseJsonPath(suffix);
      if (!path.ok) return fail(path.error);
      placeholder = { kind: 'BODY', path: path.value };
      break;
    }
    default:
      return fail(
        `unknown placeholder [${name}]: use [STATUS], [BODY], [RESPONSE_TIME], [CERTIFICATE_EXPIRATION], [CONNECTED] or [IP]`,
      );
  }
  if (fn && placeholder.kind !== 'BODY') return fail(`${fn}() applies to [BODY] only`);

  const right = parseOperand(rightText);
  if (!right.ok) return fail(right.error);
  let operand = right.value;

  if (ORDERING.has(op) && (operand.kind === 'pattern' || operand.kind === 'any'))
    return fail(`${op} needs a number or a duration, not ${operand.kind === 'any' ? 'any()' : 'pat()'}`);

  const numeric = (what: string, v: Operand): Parsed<Operand> => {
    if (v.kind === 'number') return { ok: true, value: v };
    if (v.kind === 'any' && v.values.every((x) => /^-?\d+(\.\d+)?$/.test(x))) return { ok: true, value: v };
    return { ok: false, error: `${what} is compared with a number, got ${JSON.stringify(rightText)}` };
  };
  const duration = (what: string): Parsed<Operand> => {
    const ms = parseDuration(rightText, 'ms');
    if (ms === undefined)
      return {
        ok: false,
        error: `${what} is compared with a duration like 300, 300ms, 2s, 5m, 720h or 30d, got ${JSON.stringify(rightText)}`,
      };
    return { ok: true, value: { kind: 'number', value: ms } };
  };

  let checked: Parsed<Operand> = { ok: true, value: operand };
  if (fn === 'len') checked = numeric('len()', operand);
  else if (fn === 'has' || placeholder.kind === 'CONNECTED') {
    if (ORDERING.has(op)) return fail(`${fn ? 'has()' : '[CONNECTED]'} takes == or != with true or false`);
    if (operand.kind !== 'text' || (operand.value !== 'true' && operand.value !== 'false'))
      return fail(`${fn ? 'has()' : '[CONNECTED]'} is compared with true or false, got ${JSON.stringify(rightText)}`);
  } else if (placeholder.kind === 'STATUS') checked = numeric('[STATUS]', operand);
  else if (placeholder.kind === 'RESPONSE_TIME') checked = duration('[RESPONSE_TIME]');
  else if (placeholder.kind === 'CERTIFICATE_EXPIRATION') checked = duration('[CERTIFICATE_EXPIRATION]');
  else if (ORDERING.has(op) && operand.kind !== 'number')
    return fail(`${op} needs a number, got ${JSON.stringify(rightText)}`);
  if (!checked.ok) return fail(checked.error);
  operand = checked.value;

  const cond: Condition = { text: t, leftText, rightText, placeholder, op, right: operand };
  if (fn) cond.fn = fn;
  return { ok: true, value: cond };
}

/** Parses every condition; the errors name each bad condition. */
export function parseConditions(lines: readonly string[]): Parsed<Condition[]> {
  const out: Condition[] = [];
  const errors: string[] = [];
  for (const line of lines) {
    const r = parseCondition(line);
    if (r.ok) out.push(r.value);
    else errors.push(r.error);
  }
  return errors.length ? { ok: false, error: errors.join('; ') } : { ok: true, value: out };
}

function parseJsonPath(suffix: string): Parsed<PathSegment[]> {
  const out: PathSegment[] = [];
  const re = /\.([^.[\]\s]+)|\[(\d+)\]/y;
  let pos = 0;
  while (pos < suffix.length) {
    re.lastIndex = pos;
    const m = re.exec(suffix);
    if (!m) return { ok: false, error: `bad JSON path ${JSON.stringify(suffix)} (use .key, .key.sub or [0])` };
    out.push(m[1] !== undefined ? m[1] : Number(m[2]));
    pos = re.lastIndex;
  }
  return { ok: true, value: out };
}

function parseOperand(text: string): Parsed<Operand> {
  const pat = /^pat\((.*)\)$/.exec(text);
  if (pat) {
    const glob = pat[1]!;
    const re = new RegExp(`^${glob.split('*').map(escapeRegExp).join('.*')}$`, 's');
    return { ok: true, value: { kind: 'pattern', value: glob, re } };
  }
  const any = /^any\((.*)\)$/.exec(text);
  if (any) {
    const values = any[1]!
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    if (values.length === 0) return { ok: false, error: 'any() needs at least one value' };
    return { ok: true, value: { kind: 'any', values } };
  }
  if (/^-?\d+(\.\d+)?$/.test(text)) return { ok: true, value: { kind: 'number', value: Number(text) } };
  return { ok: true, value: { kind: 'text', value: text } };
}

/** `9d23h`, `5h12m`, or formatDuration's form below an hour. */
function longDuration(ms: number): string {
  if (ms < 3_600_000) return formatDuration(ms);
  const d = Math.floor(ms / 86_400_000);
  const h = Math.floor((ms % 86_400_000) / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  return d ? `${d}d${h ? `${h}h` : ''}` : `${h}h${m ? `${m}m` : ''}`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

type Value = { present: true; value: unknown } | { present: false };

function resolveBody(body: string | undefined, path: PathSegment[]): Value {
  if (body === undefined) return { present: false };
  if (path.length === 0) return { present: true, value: body };
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return { present: false };
  }
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return { present: false };
    if (typeof seg === 'number') {
      if (!Array.isArray(v) || seg >= v.length) return { present: false };
      v = v[seg];
    } else {
      if (!Object.hasOwn(v, seg)) return { present: false };
      v = (v as Record<string, unknown>)[seg];
    }
  }
  return { present: true, value: v };
}

function display(v: unknown): string {
  if (typeof v === 'string') return v.length > 80 ? `${v.slice(0, 77)}...` : v;
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function compare(op: Operator, a: number, b: number): boolean {
  switch (op) {
    case '==':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
  }
}

function matchText(op: Operator, actual: string, right: Operand): boolean {
  let eq: boolean;
  if (right.kind === 'pattern') eq = right.re.test(actual);
  else if (right.kind === 'any') eq = right.values.includes(actual);
  else if (right.kind === 'number') eq = actual.trim() !== '' && Number(actual) === right.value;
  else eq = actual === right.value;
  return op === '!=' ? !eq : eq;
}

/** Evaluates a parsed condition against what an attempt observed. Pure. */
export function evaluateCondition(c: Condition, o: Observation): ConditionResult {
  const res = (ok: boolean, shown: string): ConditionResult => ({
    condition: c.text,
    ok,
    resolved: `${c.leftText} (${shown}) ${c.op} ${c.rightText}`,
  });
  const num = (actual: number | undefined, shown: string): ConditionResult => {
    if (actual === undefined || Number.isNaN(actual)) return res(false, shown);
    if (c.right.kind === 'any') return res(matchText(c.op, String(actual), c.right), shown);
    if (c.right.kind !== 'number') return res(false, shown);
    return res(compare(c.op, actual, c.right.value), shown);
  };
  const p = c.placeholder;
  switch (p.kind) {
    case 'STATUS':
      return num(o.status, o.status === undefined ? 'no response' : String(o.status));
    case 'RESPONSE_TIME':
      return num(o.responseTimeMs, `${Math.round(o.responseTimeMs)}ms`);
    case 'CERTIFICATE_EXPIRATION': {
      if (!o.certExpiry) return num(0, 'no certificate');
      const left = o.certExpiry.getTime() - o.now.getTime();
      return num(left, left <= 0 ? `expired ${longDuration(-left)} ago` : longDuration(left));
    }
    case 'CONNECTED': {
      const want = c.right.kind === 'text' && c.right.value === 'true';
      return res(c.op === '==' ? o.connected === want : o.connected !== want, String(o.connected));
    }
    case 'IP':
      return o.ip === undefined ? res(false, 'unknown') : res(matchText(c.op, o.ip, c.right), o.ip);
    case 'BODY': {
      const v = resolveBody(o.body, p.path);
      if (c.fn === 'has') {
        const want = c.right.kind === 'text' && c.right.value === 'true';
        return res(c.op === '==' ? v.present === want : v.present !== want, String(v.present));
      }
      if (!v.present) return res(false, o.body === undefined ? 'no body' : 'missing');
      if (c.fn === 'len') {
        const x = v.value;
        const n =
          typeof x === 'string' || Array.isArray(x)
            ? x.length
            : x !== null && typeof x === 'object'
              ? Object.keys(x).length
              : undefined;
        return num(n, n === undefined ? `not a list: ${display(x)}` : String(n));
      }
      const x = v.value;
      if (ORDERING.has(c.op)) return num(typeof x === 'number' ? x : Number(x), display(x));
      const text = typeof x === 'string' ? x : JSON.stringify(x);
      return res(matchText(c.op, text, c.right), display(x));
    }
  }
}
