import { createHash } from 'node:crypto';
import { existsSync, lstatSync, statSync } from 'node:fs';
import nunjucks from 'nunjucks';
import { parse as yamlParse, stringify as yamlStringify } from 'yaml';
import { quoteWord } from '../commands/quote.js';
import { isTemplate } from './unsafe.js';

export { isTemplate, unsafeDeep, unsafeText } from './unsafe.js';

/**
 * Jinja2 as Ansible uses it, through nunjucks.
 *
 * - Variables resolve lazily through a Scope, and a variable whose value is itself a template is rendered on use,
 *   as Ansible does (`image: "{{ REGISTRY }}/app"` in play vars follows `-e REGISTRY=...`).
 * - An undefined variable is an error naming the variable, unless `default`, `is defined` or `is undefined` handle it.
 * - Only the filters and tests listed here exist; any other name is an error, found at parse time by `analyse`.
 * - A template that is one expression (`"{{ x }}"`) keeps lists, dicts and booleans native and turns numbers into
 *   text, as Ansible's templar does (`PORT: "{{ base_port + item | int }}"` is the string "8001").
 */

/**
 * Where variables come from. `undefined` means "not defined" (a defined null is `{ value: null }`).
 * `unsafe` marks data that is never code (facts, registered results, set_fact, secrets): it is used as it is and
 * never rendered as a template, as Ansible's AnsibleUnsafe values.
 */
export interface Scope {
  lookup(name: string): { value: unknown; unsafe?: boolean } | undefined;
  /** `lookup('env', ...)`, `query(...)`: the lookup plugins this scope offers (none when absent). */
  plugin?(name: string, terms: unknown[], options: Record<string, unknown>): unknown[];
}

/** The lookup plugins Dyce runs (src/playbook/lookups.ts); any other is refused at parse time by name. */
export const SUPPORTED_LOOKUPS: readonly string[] = ['env', 'file', 'first_found', 'template', 'vars'];

/**
 * Names no template may reach, by any path: `constructor` leads to Function (code), `__proto__` and
 * `prototype` to shared prototypes, and `__x__` names are Python's way into the same (`__class__`, `__globals__`).
 */
export function forbiddenName(name: unknown): boolean {
  return typeof name === 'string' && (name === 'constructor' || name === 'prototype' || name.startsWith('__'));
}

export class TemplateError extends Error {
  override readonly name: string = 'TemplateError';
}

/** An undefined variable; `variable` is the name as written (`foo` or `foo.bar`). */
export class UndefinedVariableError extends TemplateError {
  override readonly name = 'UndefinedVariableError';
  constructor(
    readonly variable: string,
    readonly via: string[] = [],
  ) {
    super(`'${variable}' is undefined${via.length ? ` (used by ${via.map((v) => `'${v}'`).join(' <- ')})` : ''}`);
  }
}

const UNDEFINED = Symbol('dyce.undefined');

/** The value of an undefined variable: any use other than `default`/`defined` throws, naming it. */
function makeUndefined(name: string, record: (e: Error) => void): object {
  const fail = () => {
    const e = new UndefinedVariableError(name);
    record(e);
    throw e;
  };
  return new Proxy(
    {},
    {
      get(_t, key) {
        if (key === UNDEFINED) return name;
        if (key === Symbol.toPrimitive || key === 'toString' || key === 'valueOf' || key === 'toJSON') return fail;
        if (typeof key === 'symbol' || key === '__keywords' || key === 'then') return undefined;
        return makeUndefined(`${name}.${key}`, record);
      },
      has: () => false,
      ownKeys: fail,
    },
  );
}

export function undefinedName(v: unknown): string | undefined {
  if ((typeof v === 'function' || (typeof v === 'object' && v !== null)) && (v as never)[UNDEFINED])
    return (v as Record<symbol, string>)[UNDEFINED];
  return undefined;
}

function defined(v: unknown): boolean {
  return v !== undefined && undefinedName(v) === undefined;
}

function need(v: unknown, filter: string): unknown {
  const u = undefinedName(v);
  if (u !== undefined) throw new UndefinedVariableError(u);
  if (v === undefined) throw new TemplateError(`filter "${filter}" got an undefined value (a missing attribute?)`);
  return v;
}

/** Python's str() for the values YAML can hold, so that text output reads as Ansible's. */
export function toText(v: unknown): string {
  if (v === null || v === undefined) return v === null ? 'None' : '';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  return pyRepr(v);
}

function pyRepr(v: unknown): string {
  if (typeof v === 'string') return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (typeof v === 'object' && v !== null)
    return `{${Object.entries(v)
      .map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`)
      .join(', ')}}`;
  return toText(v);
}

const TRUE_WORDS = new Set(['yes', 'on', '1', 'true', 't', 'y']);

/** Ansible's `bool` filter: true for True/'yes'/'on'/'1'/'true'/1, false otherwise. */
export function ansibleBool(v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v === 1;
  if (typeof v === 'string') return TRUE_WORDS.has(v.trim().toLowerCase());
  return false;
}

/** Python's int(): whole numbers from numbers and numeric strings, `default` (0) otherwise. */
function toInt(v: unknown, def = 0, base = 10): number {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') return Number.isFinite(v) ? Math.trunc(v) : def;
  if (typeof v === 'string') {
    const s = v.trim();
    if (base === 10 && /^[-+]?\d+(\.\d+)?$/.test(s)) return Math.trunc(Number(s));
    const n = Number.parseInt(s, base);
    return Number.isNaN(n) ? def : n;
  }
  return def;
}

function toPyRegex(pattern: string, flags: string): RegExp {
  // Python named groups (?P<name>...) read as JS (?<name>...).
  return new RegExp(pattern.replace(/\(\?P</g, '(?<'), flags);
}

type Filter = (...args: unknown[]) => unknown;

function makeFilters(): Record<string, Filter> {
  // biome-ignore lint/style/useConst: filters refer to the table (map) before it is complete
  let base: Record<string, Filter>;
  const dflt: Filter = (v, d = '', boolean = false) =>
    !defined(v) || (boolean === true && (v === '' || v === null || v === false || v === 0)) ? d : v;
  const length: Filter = (v) => {
    need(v, 'length');
    if (typeof v === 'string' || Array.isArray(v)) return v.length;
    if (v && typeof v === 'object') return Object.keys(v).length;
    throw new TemplateError(`filter "length": ${toText(v)} has no length`);
  };
  base = {
    default: dflt,
    d: dflt,
    mandatory: (v, msg?: unknown) => {
      const u = undefinedName(v);
      if (u !== undefined || v === undefined)
        throw new TemplateError(typeof msg === 'string' ? msg : `Mandatory variable '${u ?? '?'}' not defined.`);
      return v;
    },
    int: (v, d = 0, base = 10) => toInt(need(v, 'int'), Number(d), Number(base)),
    float: (v, d = 0) => {
      const n = Number(need(v, 'float'));
      return Number.isNaN(n) ? d : n;
    },
    bool: (v) => ansibleBool(need(v, 'bool')),
    string: (v) => toText(need(v, 'string')),
    lower: (v) => toText(need(v, 'lower')).toLowerCase(),
    upper: (v) => toText(need(v, 'upper')).toUpperCase(),
    capitalize: (v) => {
      const s = toText(need(v, 'capitalize'));
      return s.charAt(0).toUpperCase() + s.slice(1).toLowerCase();
    },
    trim: (v) => toText(need(v, 'trim')).trim(),
    join: (v, sep = '') => {
      need(v, 'join');
      if (!Array.isArray(v)) return toText(v);
      return v.map(toText).join(toText(sep));
    },
    to_json: (v) => pyJson(need(v, 'to_json')),
    to_nice_json: (v, indent = 4) => JSON.stringify(need(v, 'to_nice_json'), null, Number(indent)),
    to_yaml: (v) => yamlStringify(need(v, 'to_yaml'), { flowCollectionPadding: false }),
    to_nice_yaml: (v, indent = 4) => yamlStringify(need(v, 'to_nice_yaml'), { indent: Number(indent) }),
    from_json: (v) => JSON.parse(toText(need(v, 'from_json'))),
    regex_replace: (v, pattern = '', replacement = '', ignorecase = false, multiline = false) => {
      const flags = `g${ignorecase === true ? 'i' : ''}${multiline === true ? 'm' : ''}`;
      // Python's \1 and \g<name> back-references read as JS $1 and $<name>.
      const rep = toText(replacement)
        .replace(/\$/g, '$$$$')
        .replace(/\\g<(\w+)>/g, (_m, g: string) => (/^\d+$/.test(g) ? `$${g}` : `$<${g}>`))
        .replace(/\\(\d)/g, '$$$1');
      return toText(need(v, 'regex_replace')).replace(toPyRegex(toText(pattern), flags), rep);
    },
    regex_search: (v, pattern = '') => {
      const m = toPyRegex(toText(pattern), '').exec(toText(need(v, 'regex_search')));
      return m ? m[0] : null;
    },
    replace: (v, old = '', neu = '') => toText(need(v, 'replace')).split(toText(old)).join(toText(neu)),
    b64encode: (v) => Buffer.from(toText(need(v, 'b64encode')), 'utf8').toString('base64'),
    b64decode: (v) => Buffer.from(toText(need(v, 'b64decode')), 'base64').toString('utf8'),
    quote: (v) => quoteWord(toText(need(v, 'quote'))),
    length,
    count: length,
    first: (v) => (need(v, 'first') as unknown[])[0],
    last: (v) => {
      const a = need(v, 'last') as unknown[];
      return a[a.length - 1];
    },
    list: (v) => {
      need(v, 'list');
      if (Array.isArray(v)) return v;
      if (typeof v === 'string') return [...v];
      if (v && typeof v === 'object') return Object.keys(v);
      return [v];
    },
    unique: (v) => [...new Set(need(v, 'unique') as unknown[])],
    sort: (v) => [...(need(v, 'sort') as unknown[])].sort(),
    min: (v) => Math.min(...(need(v, 'min') as number[])),
    max: (v) => Math.max(...(need(v, 'max') as number[])),
    abs: (v) => Math.abs(Number(need(v, 'abs'))),
    round: (v, precision = 0) => {
      const p = 10 ** Number(precision);
      return Math.round(Number(need(v, 'round')) * p) / p;
    },
    ternary: (v, yes, no) => (need(v, 'ternary') ? yes : no),
    dict2items: (v) =>
      Object.entries(need(v, 'dict2items') as Record<string, unknown>).map(([key, value]) => ({ key, value })),
    items2dict: (v) =>
      Object.fromEntries((need(v, 'items2dict') as { key: string; value: unknown }[]).map((e) => [e.key, e.value])),
    combine: (v, ...more) => {
      const recursive = more.some((m) => isKeywords(m) && (m as Record<string, unknown>).recursive === true);
      const merge = (a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> => {
        const out: Record<string, unknown> = { ...a };
        for (const [k, x] of Object.entries(b)) {
          if (forbiddenName(k)) continue;
          const y = out[k];
          out[k] = recursive && isDict(x) && isDict(y) ? merge(y, x) : x;
        }
        return out;
      };
      let out = need(v, 'combine') as Record<string, unknown>;
      for (const m of more.flat()) if (isDict(m) && !isKeywords(m)) out = merge(out, m);
      return out;
    },
    map: (v, ...args) => {
      const list = asList(need(v, 'map'));
      const kw = args.find(isKeywords) as Record<string, unknown> | undefined;
      if (kw?.attribute !== undefined) return list.map((x) => attribute(x, kw.attribute, kw.default));
      const [name, ...rest] = args.filter((a) => !isKeywords(a));
      const f = typeof name === 'string' && Object.hasOwn(filters, name) ? filters[name]! : undefined;
      if (!f) throw new TemplateError(`map: unknown filter ${JSON.stringify(name)}`);
      return list.map((x) => f(x, ...rest));
    },
    select: (v, test, ...rest) => asList(need(v, 'select')).filter((x) => runTest(test, x, rest)),
    reject: (v, test, ...rest) => asList(need(v, 'reject')).filter((x) => !runTest(test, x, rest)),
    selectattr: (v, attr, test, ...rest) =>
      asList(need(v, 'selectattr')).filter((x) => {
        const a = attribute(x, attr);
        return test === undefined ? Boolean(a) && defined(a) : runTest(test, a, rest);
      }),
    rejectattr: (v, attr, test, ...rest) =>
      asList(need(v, 'rejectattr')).filter((x) => {
        const a = attribute(x, attr);
        return !(test === undefined ? Boolean(a) && defined(a) : runTest(test, a, rest));
      }),
    flatten: (v, levels) => {
      const flat = (a: unknown[], depth: number): unknown[] =>
        a.flatMap((x) => (Array.isArray(x) && depth !== 0 ? flat(x, depth - 1) : x === null ? [] : [x]));
      return flat(asList(need(v, 'flatten')), typeof levels === 'number' ? levels : -1);
    },
    difference: (v, o) =>
      asList(need(v, 'difference')).filter((x, i, a) => !asList(o).includes(x) && a.indexOf(x) === i),
    intersect: (v, o) => asList(need(v, 'intersect')).filter((x, i, a) => asList(o).includes(x) && a.indexOf(x) === i),
    union: (v, o) => [...new Set([...asList(need(v, 'union')), ...asList(o)])],
    symmetric_difference: (v, o) => {
      const a = asList(need(v, 'symmetric_difference'));
      const b = asList(o);
      return [...new Set([...a.filter((x) => !b.includes(x)), ...b.filter((x) => !a.includes(x))])];
    },
    zip: (v, ...others) => {
      const a = asList(need(v, 'zip'));
      const lists = others.map(asList);
      const n = Math.min(a.length, ...lists.map((l) => l.length));
      return a.slice(0, n).map((x, i) => [x, ...lists.map((l) => l[i])]);
    },
    basename: (v) => toText(need(v, 'basename')).replace(/\/+$/, '').split('/').pop() ?? '',
    dirname: (v) => {
      const t = toText(need(v, 'dirname'));
      const i = t.lastIndexOf('/');
      return i < 0 ? '' : i === 0 ? '/' : t.slice(0, i);
    },
    splitext: (v) => {
      const t = toText(need(v, 'splitext'));
      const m = /^(.*?)(\.[^./]*)?$/.exec(t)!;
      return [m[1], m[2] ?? ''];
    },
    regex_findall: (v, pattern = '', ...rest) => {
      const kw = rest.find(isKeywords) as Record<string, unknown> | undefined;
      const flags = `g${kw?.ignorecase === true ? 'i' : ''}${kw?.multiline === true ? 'm' : ''}`;
      return [...toText(need(v, 'regex_findall')).matchAll(toPyRegex(toText(pattern), flags))].map((m) =>
        m.length > 2 ? m.slice(1) : (m[1] ?? m[0]),
      );
    },
    split: (v, sep) => (pythonMethod(toText(need(v, 'split')), 'split') as Filter)(sep),
    random: (v) => {
      const x = need(v, 'random');
      if (typeof x === 'number') return Math.floor(Math.random() * x);
      const a = asList(x);
      return a[Math.floor(Math.random() * a.length)];
    },
    shuffle: (v) => [...asList(need(v, 'shuffle'))].sort(() => Math.random() - 0.5),
    sum: (v, ...rest) => {
      const kw = rest.find(isKeywords) as Record<string, unknown> | undefined;
      const start = (kw?.start ?? rest.find((r) => !isKeywords(r)) ?? 0) as unknown;
      return asList(need(v, 'sum')).reduce<unknown>(
        (acc, x) => (Array.isArray(acc) ? [...acc, ...asList(x)] : Number(acc) + Number(x)),
        start,
      );
    },
    reverse: (v) => {
      const x = need(v, 'reverse');
      return typeof x === 'string' ? [...x].reverse().join('') : [...asList(x)].reverse();
    },
    hash: (v, algo = 'sha1') =>
      createHash(toText(algo))
        .update(toText(need(v, 'hash')))
        .digest('hex'),
    md5: (v) =>
      createHash('md5')
        .update(toText(need(v, 'md5')))
        .digest('hex'),
    sha1: (v) =>
      createHash('sha1')
        .update(toText(need(v, 'sha1')))
        .digest('hex'),
    from_yaml: (v) => yamlParse(toText(need(v, 'from_yaml'))),
    type_debug: (v) => pyType(need(v, 'type_debug')),
    dict: (v) => Object.fromEntries(asList(need(v, 'dict')) as [string, unknown][]),
    items: (v) => Object.entries(need(v, 'items') as Record<string, unknown>),
    title: (v) =>
      toText(need(v, 'title')).replace(/\w\S*/g, (w) => w.charAt(0).toUpperCase() + w.slice(1).toLowerCase()),
    indent: (v, width = 4, first = false) => {
      const pad = ' '.repeat(Number(width));
      return toText(need(v, 'indent'))
        .split('\n')
        .map((l, i) => ((i === 0 && first !== true) || l === '' ? l : pad + l))
        .join('\n');
    },
    comment: (v) =>
      toText(need(v, 'comment'))
        .split('\n')
        .map((l) => `# ${l}`.trimEnd())
        .join('\n'),
    realpath: (v) => toText(need(v, 'realpath')),
    expanduser: (v) => toText(need(v, 'expanduser')),
  };
  const runTest = (test: unknown, x: unknown, rest: unknown[]): boolean => {
    const name = test === undefined ? 'truthy' : toText(test);
    const t = testsRef()[name === '==' ? 'eq' : name === '!=' ? 'ne' : name];
    if (!t) throw new TemplateError(`unknown test ${JSON.stringify(name)}`);
    return Boolean(t(x, ...rest));
  };
  const filters: Record<string, Filter> = base;
  return filters;
}

let testsCache: Record<string, Filter> | undefined;
function testsRef(): Record<string, Filter> {
  testsCache ??= makeTests();
  return testsCache;
}

function isKeywords(v: unknown): boolean {
  return typeof v === 'object' && v !== null && (v as Record<string, unknown>).__keywords === true;
}

function isDict(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && defined(v);
}

function asList(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  if (typeof v === 'string') return [...v];
  if (isDict(v)) return Object.keys(v);
  if (v === undefined || v === null) return [];
  return [v];
}

/** `attribute='a.b'` of map/selectattr, through the sandbox's own-data lookup. */
function attribute(x: unknown, path: unknown, dflt?: unknown): unknown {
  let cur = x;
  for (const part of toText(path).split('.')) {
    cur = safeMemberLookup(cur, /^\d+$/.test(part) && Array.isArray(cur) ? Number(part) : part);
    if (cur === undefined) return dflt;
  }
  return cur;
}

/** Python's json.dumps with its default separators (`, ` and `: `), as Ansible's to_json prints. */
function pyJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(pyJson).join(', ')}]`;
  if (v && typeof v === 'object')
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}: ${pyJson(x)}`)
      .join(', ')}}`;
  return JSON.stringify(v) ?? 'null';
}

function pyType(v: unknown): string {
  if (v === null) return 'NoneType';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'string') return 'str';
  if (Array.isArray(v)) return 'list';
  return 'dict';
}

/** Python-ish version comparison of the `version` test: numeric parts compare as numbers. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.\-+]/);
  const pb = b.split(/[.\-+]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '0';
    const y = pb[i] ?? '0';
    const nx = /^\d+$/.test(x) ? Number(x) : Number.NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : Number.NaN;
    const c = !Number.isNaN(nx) && !Number.isNaN(ny) ? nx - ny : x < y ? -1 : x > y ? 1 : 0;
    if (c !== 0) return c < 0 ? -1 : 1;
  }
  return 0;
}

function versionTest(v: unknown, other: unknown, op: unknown = 'eq'): boolean {
  const c = compareVersions(toText(v), toText(other));
  const o = toText(isKeywords(op) ? ((op as Record<string, unknown>).operator ?? 'eq') : op);
  const table: Record<string, boolean> = {
    '<': c < 0,
    lt: c < 0,
    '<=': c <= 0,
    le: c <= 0,
    '>': c > 0,
    gt: c > 0,
    '>=': c >= 0,
    ge: c >= 0,
    '==': c === 0,
    '=': c === 0,
    eq: c === 0,
    '!=': c !== 0,
    '<>': c !== 0,
    ne: c !== 0,
  };
  if (!Object.hasOwn(table, o)) throw new TemplateError(`version: unknown operator ${JSON.stringify(o)}`);
  return table[o]!;
}

/** Ansible's result tests: `result is changed`, `result is failed`, ... */
function resultFlag(v: unknown, key: string): boolean {
  need(v, key);
  return typeof v === 'object' && v !== null && (v as Record<string, unknown>)[key] === true;
}

function makeTests(): Record<string, Filter> {
  return {
    defined: (v) => defined(v),
    undefined: (v) => !defined(v),
    none: (v) => v === null,
    string: (v) => typeof v === 'string',
    number: (v) => typeof v === 'number',
    boolean: (v) => typeof v === 'boolean',
    mapping: (v) => typeof v === 'object' && v !== null && !Array.isArray(v) && defined(v),
    sequence: (v) => Array.isArray(v) || typeof v === 'string',
    iterable: (v) => Array.isArray(v) || typeof v === 'string' || (typeof v === 'object' && v !== null),
    truthy: (v) => Boolean(v),
    falsy: (v) => !v,
    equalto: (v, o) => v === o,
    eq: (v, o) => v === o,
    ne: (v, o) => v !== o,
    in: (v, o) => (Array.isArray(o) || typeof o === 'string' ? o.includes(v as string) : false),
    match: (v, p) => toPyRegex(toText(p), '').exec(toText(v))?.index === 0,
    search: (v, p) => toPyRegex(toText(p), '').test(toText(v)),
    changed: (v) => resultFlag(v, 'changed'),
    change: (v) => resultFlag(v, 'changed'),
    failed: (v) => resultFlag(v, 'failed'),
    failure: (v) => resultFlag(v, 'failed'),
    succeeded: (v) => !resultFlag(v, 'failed'),
    success: (v) => !resultFlag(v, 'failed'),
    skipped: (v) => resultFlag(v, 'skipped'),
    skip: (v) => resultFlag(v, 'skipped'),
    version: versionTest,
    version_compare: versionTest,
    contains: (v, x) =>
      Array.isArray(v) || typeof v === 'string'
        ? v.includes(x as never)
        : isDict(v) && typeof x === 'string' && Object.hasOwn(v, x),
    subset: (v, o) => asList(v).every((x) => asList(o).includes(x)),
    superset: (v, o) => asList(o).every((x) => asList(v).includes(x)),
    all: (v) => asList(v).every(Boolean),
    any: (v) => asList(v).some(Boolean),
    regex: (v, p) => toPyRegex(toText(p), '').test(toText(v)),
    even: (v) => Number(v) % 2 === 0,
    odd: (v) => Number(v) % 2 === 1,
    divisibleby: (v, n) => Number(v) % Number(n) === 0,
    lower: (v) => typeof v === 'string' && v === v.toLowerCase(),
    upper: (v) => typeof v === 'string' && v === v.toUpperCase(),
    float: (v) => typeof v === 'number' && !Number.isInteger(v),
    integer: (v) => typeof v === 'number' && Number.isInteger(v),
    list: (v) => Array.isArray(v),
    callable: () => false,
    sameas: (v, o) => v === o,
    '==': (v, o) => v === o,
    '!=': (v, o) => v !== o,
    gt: (v, o) => (v as number) > (o as number),
    ge: (v, o) => (v as number) >= (o as number),
    lt: (v, o) => (v as number) < (o as number),
    le: (v, o) => (v as number) <= (o as number),
    abs: (v) => typeof v === 'string' && v.startsWith('/'),
    exists: (v) => existsSync(toText(v)),
    file: (v) => existsSync(toText(v)) && statSync(toText(v)).isFile(),
    directory: (v) => existsSync(toText(v)) && statSync(toText(v)).isDirectory(),
    link: (v) => existsSync(toText(v)) && lstatSync(toText(v)).isSymbolicLink(),
    reachable: (v) => resultFlag(v, 'unreachable') === false,
    unreachable: (v) => resultFlag(v, 'unreachable'),
  };
}

export const SUPPORTED_FILTERS: readonly string[] = Object.keys(makeFilters()).sort();
export const SUPPORTED_TESTS: readonly string[] = Object.keys(makeTests()).sort();
const GUARDS = new Set(['default', 'd', 'mandatory']);
const GUARD_TESTS = new Set(['defined', 'undefined', 'none']);
const NATIVE_FILTER = '__dyce_native';
const TEXT_FILTER = '__dyce_text';
/** Names that are Jinja literals or nunjucks globals rather than variables. */
const BUILTIN_NAMES = new Set([
  'True',
  'False',
  'None',
  'true',
  'false',
  'none',
  'range',
  'loop',
  'lookup',
  'query',
  'q',
  'cycler',
  'joiner',
  'dict',
  'varargs',
  'kwargs',
]);

export interface TemplateAnalysis {
  /** Top-level variable names read (locals of `for`/`set` excluded). */
  variables: string[];
  filters: string[];
  tests: string[];
  /** True when a `default` filter or a `defined`/`undefined` test is present: undefined names may be intended. */
  guarded: boolean;
  /** Lookup plugins named as literals (`lookup('env', ...)`, `query('file', ...)`). */
  lookups: string[];
}

interface NjNode {
  typename: string;
  left?: NjNode;
  value?: unknown;
  name?: NjNode;
  right?: NjNode;
  target?: NjNode;
  targets?: NjNode[];
  children?: NjNode[];
  args?: NjNode & { children: NjNode[] };
  findAll(type: unknown, results?: NjNode[]): NjNode[];
}

/**
 * The sandbox. nunjucks has none: `range.constructor("code")()` runs code. Every `a.b` and `a[b]` of every
 * template goes through nunjucks's runtime.memberLookup, so that one function is replaced, process-wide, by one
 * that reads only a value's own data (never an inherited property: no `constructor`, no prototype methods such as
 * `__lookupGetter__` or `call`), refuses the forbidden names outright, and offers a few Python methods of its own.
 */
class SandboxError extends TemplateError {}
let sandboxError: SandboxError | undefined;

function refuse(name: string): never {
  sandboxError = new SandboxError(`access to "${name}" is not allowed in a template`);
  throw sandboxError;
}

function safeMemberLookup(obj: unknown, key: unknown): unknown {
  if (obj === undefined || obj === null) return undefined;
  if (forbiddenName(key)) refuse(key as string);
  if (typeof key !== 'string' && typeof key !== 'number') return undefined;
  if (undefinedName(obj) !== undefined) return (obj as Record<string, unknown>)[key];
  let k: string | number = key;
  if ((Array.isArray(obj) || typeof obj === 'string') && typeof k === 'number' && k < 0) k = obj.length + k;
  const o = Object(obj) as Record<string | number, unknown>;
  if (Object.hasOwn(o, k)) {
    const v = o[k];
    if (typeof v === 'function') return (...args: unknown[]) => (v as Filter).apply(obj, args);
    return v;
  }
  if (typeof k === 'string') return pythonMethod(obj, k);
  return undefined;
}

/** The Python methods playbooks call on strings, lists and dicts (`x.split(',')`, `d.items()`). */
function pythonMethod(obj: unknown, name: string): Filter | undefined {
  if (typeof obj === 'string') {
    const strip = (chars: unknown, left: boolean, right: boolean) => {
      const set = typeof chars === 'string' ? chars : ' \t\n\r\f\v';
      let a = 0;
      let b = obj.length;
      while (left && a < b && set.includes(obj[a]!)) a++;
      while (right && b > a && set.includes(obj[b - 1]!)) b--;
      return obj.slice(a, b);
    };
    const methods: Record<string, Filter> = {
      split: (sep, max) => {
        const parts =
          sep === undefined || sep === null
            ? obj
                .trim()
                .split(/\s+/)
                .filter((x) => x !== '')
            : obj.split(String(sep));
        if (typeof max === 'number' && max >= 0 && parts.length > max + 1)
          return [...parts.slice(0, max), parts.slice(max).join(sep === undefined || sep === null ? ' ' : String(sep))];
        return parts;
      },
      strip: (c) => strip(c, true, true),
      lstrip: (c) => strip(c, true, false),
      rstrip: (c) => strip(c, false, true),
      startswith: (p) => (Array.isArray(p) ? p.some((x) => obj.startsWith(String(x))) : obj.startsWith(String(p))),
      endswith: (p) => (Array.isArray(p) ? p.some((x) => obj.endsWith(String(x))) : obj.endsWith(String(p))),
      lower: () => obj.toLowerCase(),
      upper: () => obj.toUpperCase(),
      replace: (a, b) => obj.split(String(a)).join(String(b)),
      find: (x) => obj.indexOf(String(x)),
      join: (xs) => (Array.isArray(xs) ? xs.map(toText).join(obj) : toText(xs)),
      splitlines: () => obj.split(/\r?\n/).filter((x, i, a) => i < a.length - 1 || x !== ''),
      isdigit: () => /^\d+$/.test(obj),
    };
    return Object.hasOwn(methods, name) ? methods[name] : undefined;
  }
  if (Array.isArray(obj)) {
    const methods: Record<string, Filter> = {
      index: (x) => obj.indexOf(x),
      count: (x) => obj.filter((y) => y === x).length,
    };
    return Object.hasOwn(methods, name) ? methods[name] : undefined;
  }
  if (typeof obj === 'object') {
    const o = obj as Record<string, unknown>;
    const methods: Record<string, Filter> = {
      items: () => Object.entries(o),
      keys: () => Object.keys(o),
      values: () => Object.values(o),
      get: (k, d = null) => (typeof k === 'string' && !forbiddenName(k) && Object.hasOwn(o, k) ? o[k] : d),
    };
    return Object.hasOwn(methods, name) ? methods[name] : undefined;
  }
  return undefined;
}

(nunjucks as unknown as { runtime: { memberLookup: unknown } }).runtime.memberLookup = safeMemberLookup;

/**
 * nunjucks compiles a test's arguments without commas between them (`x is version('2.0', '>=')` is a syntax error
 * in the generated code); this compiles them as a call's arguments.
 */
interface NjCompiler {
  _emit(s: string): void;
  compile(n: unknown, frame: unknown): void;
}
(
  nunjucks as unknown as {
    compiler: { Compiler: { prototype: { compileIs(this: NjCompiler, node: NjNode, frame: unknown): void } } };
  }
).compiler.Compiler.prototype.compileIs = function compileIs(node, frame) {
  const right = node.right!;
  const name = right.name ? right.name.value : right.value;
  this._emit(`env.getTest(${JSON.stringify(String(name))}).call(context, `);
  this.compile(node.left, frame);
  for (const a of right.args?.children ?? []) {
    this._emit(', ');
    this.compile(a, frame);
  }
  this._emit(') === true');
};

const nodes = (nunjucks as unknown as { nodes: Record<string, unknown> }).nodes;
const njParser = (nunjucks as unknown as { parser: { parse(src: string, ext?: unknown, opts?: unknown): NjNode } })
  .parser;

/**
 * One templating engine per playbook run (no module-level state). Renders strings, deep values and conditions
 * against a Scope. Not re-entrant across async boundaries: every render is synchronous.
 */
export class Templar {
  readonly #env: nunjucks.Environment;
  readonly #compiled = new Map<string, nunjucks.Template>();
  readonly #scopes: Scope[] = [];
  /** Variables being resolved, to report a variable defined through itself instead of recursing forever. */
  readonly #resolving: string[] = [];
  #native: unknown[] = [];
  /** nunjucks re-wraps errors thrown inside a render and drops them; the last one of ours is kept here. */
  #lastError: Error | undefined;

  constructor() {
    const env = new nunjucks.Environment(null, { autoescape: false, throwOnUndefined: true });
    const record = (e: Error) => {
      this.#lastError = e;
    };
    const guard =
      (fn: Filter): Filter =>
      (...args) => {
        try {
          return fn(...args);
        } catch (error) {
          if (error instanceof Error) record(error);
          throw error;
        }
      };
    // Only our filters and tests exist: nunjucks's own (groupby, selectattr, dictsort, ...) read attributes
    // without the sandbox's member lookup.
    const raw = env as unknown as { filters: Record<string, unknown>; tests: Record<string, unknown> };
    raw.filters = Object.create(null);
    raw.tests = Object.create(null);
    for (const [name, fn] of Object.entries(makeFilters())) env.addFilter(name, guard(fn));
    for (const [name, fn] of Object.entries(makeTests()))
      (env as unknown as { addTest(n: string, f: Filter): void }).addTest(name, guard(fn));
    env.addFilter(
      TEXT_FILTER,
      guard((v: unknown) => {
        const u = undefinedName(v);
        if (u !== undefined) throw new UndefinedVariableError(u);
        if (v === undefined)
          throw new TemplateError('a value in the template is undefined (a missing key or attribute?)');
        return toText(v);
      }),
    );
    env.addFilter(NATIVE_FILTER, (v: unknown) => {
      this.#native.push(v);
      return '';
    });
    const plugin =
      (asList: boolean) =>
      (name: unknown, ...args: unknown[]): unknown => {
        const scope = this.#scopes[this.#scopes.length - 1];
        const kw = (args.find(isKeywords) ?? {}) as Record<string, unknown>;
        const terms = args.filter((a) => !isKeywords(a));
        const n = toText(name);
        if (!scope?.plugin) throw new TemplateError(`lookup plugin "${n}" is not available here`);
        let out: unknown[];
        try {
          out = scope.plugin(n, terms, kw);
        } catch (error) {
          if (error instanceof Error) record(error);
          throw error;
        }
        if (asList || kw.wantlist === true) return out;
        return out.length === 1 ? out[0] : out.map(toText).join(',');
      };
    const builtins: Record<string, unknown> = {
      True: true,
      False: false,
      None: null,
      lookup: plugin(false),
      query: plugin(true),
      q: plugin(true),
    };
    const base = (env as unknown as { globals: Record<string, unknown> }).globals;
    // nunjucks asks `name in env.globals` before its own context: answering yes for every name routes each
    // variable lookup through the current Scope, which renders templated values lazily and marks undefined ones.
    (env as unknown as { globals: object }).globals = new Proxy(base, {
      has: () => true,
      get: (t, key) => {
        if (typeof key === 'symbol') return Reflect.get(t, key);
        if (forbiddenName(key)) refuse(key);
        if (Object.hasOwn(builtins, key)) return builtins[key];
        let found: { value: unknown } | undefined;
        try {
          found = this.#lookup(key);
        } catch (error) {
          if (error instanceof Error) record(error);
          throw error;
        }
        if (found !== undefined) return found.value;
        if (Object.hasOwn(t, key)) return t[key];
        return makeUndefined(key, record);
      },
    });
    this.#env = env;
  }

  #lookup(name: string): { value: unknown } | undefined {
    const scope = this.#scopes[this.#scopes.length - 1];
    const found = scope?.lookup(name);
    if (found === undefined) return undefined;
    if (found.unsafe || !containsTemplate(found.value)) return { value: found.value };
    if (this.#resolving.includes(name))
      throw new TemplateError(
        `variable '${name}' is defined through itself (${[...this.#resolving, name].join(' -> ')})`,
      );
    this.#resolving.push(name);
    try {
      return { value: this.#renderDeep(found.value) };
    } catch (error) {
      if (error instanceof UndefinedVariableError && error.variable !== name)
        throw new UndefinedVariableError(error.variable, [...error.via, name]);
      throw error;
    } finally {
      this.#resolving.pop();
    }
  }

  /** Parses a template and reports what it uses; throws TemplateError on a syntax error. */
  analyse(text: string): TemplateAnalysis {
    let root: NjNode;
    try {
      root = njParser.parse(text, [], {});
    } catch (error) {
      throw new TemplateError(cleanMessage(error), { cause: error });
    }
    const nameNodes = new Set<NjNode>();
    const filters: string[] = [];
    for (const f of root.findAll(nodes.Filter)) {
      filters.push(String(f.name?.value));
      if (f.name) nameNodes.add(f.name);
    }
    const tests: string[] = [];
    for (const n of root.findAll(nodes.Is)) {
      const r = n.right;
      if (r?.typename === 'Symbol') {
        tests.push(String(r.value));
        nameNodes.add(r);
      } else if (r?.typename === 'FunCall') {
        tests.push(String(r.name?.value));
        if (r.name) nameNodes.add(r.name);
      }
    }
    // `f(attribute='x')`: keyword names are not variables.
    for (const kw of root.findAll(nodes.KeywordArgs))
      for (const pair of kw.children ?? [])
        if ((pair as NjNode & { key?: NjNode }).key) nameNodes.add((pair as NjNode & { key: NjNode }).key);
    const locals = new Set<string>();
    for (const f of root.findAll(nodes.For)) {
      for (const s of f.name ? [f.name, ...(f.name.children ?? [])] : [])
        if (s.typename === 'Symbol') locals.add(String(s.value));
    }
    for (const s of root.findAll(nodes.Set)) for (const t of s.targets ?? []) locals.add(String(t.value));
    const variables = [
      ...new Set(
        root
          .findAll(nodes.Symbol)
          .filter((s) => !nameNodes.has(s))
          .map((s) => String(s.value))
          .filter((v) => !locals.has(v) && !BUILTIN_NAMES.has(v)),
      ),
    ];
    const lookups: string[] = [];
    for (const c of root.findAll(nodes.FunCall)) {
      const fn = c.name;
      const first = c.args?.children?.[0];
      if (
        fn?.typename === 'Symbol' &&
        ['lookup', 'query', 'q'].includes(String(fn.value)) &&
        first?.typename === 'Literal'
      )
        lookups.push(String(first.value));
    }
    const guarded = filters.some((f) => GUARDS.has(f)) || tests.some((t) => GUARD_TESTS.has(t));
    return {
      variables,
      filters: [...new Set(filters)],
      tests: [...new Set(tests)],
      guarded,
      lookups: [...new Set(lookups)],
    };
  }

  /** Renders a string as Ansible would; values that are not strings are returned as they are. */
  render(text: string, scope: Scope): unknown {
    this.#scopes.push(scope);
    try {
      return this.#renderString(text);
    } finally {
      this.#scopes.pop();
    }
  }

  /** Renders every string inside a value (lists, dicts, keys included). */
  renderDeep(value: unknown, scope: Scope): unknown {
    this.#scopes.push(scope);
    try {
      return this.#renderDeep(value);
    } finally {
      this.#scopes.pop();
    }
  }

  /** A `when`/`failed_when`/`changed_when`/`assert` expression (bare Jinja, no braces), or a boolean. */
  evaluate(expression: unknown, scope: Scope): boolean {
    if (typeof expression === 'boolean') return expression;
    if (expression === null || expression === undefined) return false;
    if (typeof expression === 'number') return expression !== 0;
    const text = String(expression).trim();
    const value = isTemplate(text) ? this.render(text, scope) : this.render(`{{ ${text} }}`, scope);
    if (typeof value === 'string') {
      // `when: "{{ flag }}"` gives text; Ansible reads it as a boolean.
      const s = value.trim().toLowerCase();
      if (s === '' || s === 'false' || s === 'no' || s === 'off' || s === '0' || s === 'none') return false;
      return true;
    }
    if (Array.isArray(value)) return value.length > 0;
    if (value && typeof value === 'object') return Object.keys(value).length > 0;
    return Boolean(value);
  }

  #renderDeep(value: unknown): unknown {
    if (typeof value === 'string') return this.#renderString(value);
    if (Array.isArray(value)) return value.map((v) => this.#renderDeep(v));
    if (value && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[String(this.#renderString(k))] = this.#renderDeep(v);
      return out;
    }
    return value;
  }

  #renderString(text: string): unknown {
    if (!isTemplate(text)) return text;
    const single = singleExpression(text);
    if (single !== undefined) {
      const saved = this.#native;
      this.#native = [];
      try {
        this.#template(`{{ (${single}) | ${NATIVE_FILTER} }}`).render({});
        const v = this.#native[0];
        if (v === undefined)
          throw new TemplateError(`${text.trim()}: the value is undefined (a missing key or attribute?)`);
        const u = undefinedName(v);
        if (u !== undefined) throw new UndefinedVariableError(u);
        // Ansible's templar: `{{ name }}` alone gives the variable's own value; any other expression's number or
        // None becomes text.
        if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(single)) return v;
        if (typeof v === 'number') return String(v);
        if (v === null) return 'None';
        return v;
      } catch (error) {
        throw this.#wrap(error);
      } finally {
        this.#native = saved;
      }
    }
    try {
      return this.#template(pythonText(text)).render({});
    } catch (error) {
      throw this.#wrap(error);
    }
  }

  #wrap(error: unknown): Error {
    const sandbox = sandboxError;
    sandboxError = undefined;
    if (sandbox) return sandbox;
    const ours = this.#lastError;
    this.#lastError = undefined;
    if (error instanceof TemplateError) return error;
    if (ours instanceof TemplateError) return ours;
    return new TemplateError(cleanMessage(error), { cause: error });
  }

  #template(src: string): nunjucks.Template {
    let t = this.#compiled.get(src);
    if (!t) {
      t = new nunjucks.Template(src, this.#env, undefined, true);
      this.#compiled.set(src, t);
    }
    return t;
  }
}

const lexer = (nunjucks as unknown as { lexer: { lex(src: string, opts: object): { nextToken(): NjToken | null } } })
  .lexer;
interface NjToken {
  type: string;
  value: string;
  lineno: number;
  colno: number;
}

/**
 * Rewrites every `{{ expr }}` of a template into `{{ (expr) | __dyce_text }}`, so that values print as Python's
 * str() prints them (True, False, None, ['a']) as in Ansible, not as JavaScript would (true, a). Token positions
 * come from nunjucks's own lexer, so braces inside strings are never mistaken for delimiters.
 */
function pythonText(src: string): string {
  const lineStarts = [0];
  for (let i = 0; i < src.length; i++) if (src[i] === '\n') lineStarts.push(i + 1);
  const inserts: { at: number; text: string }[] = [];
  try {
    const tokens = lexer.lex(src, {});
    for (let t = tokens.nextToken(); t; t = tokens.nextToken()) {
      const at = (lineStarts[t.lineno] ?? 0) + t.colno;
      if (t.type === 'variable-start') inserts.push({ at: at + t.value.length, text: '(' });
      else if (t.type === 'variable-end') inserts.push({ at, text: `) | ${TEXT_FILTER} ` });
    }
  } catch {
    return src; // a lexing error is reported by the render itself
  }
  let out = src;
  for (const ins of inserts.sort((a, b) => b.at - a.at)) out = out.slice(0, ins.at) + ins.text + out.slice(ins.at);
  return out;
}

function containsTemplate(v: unknown): boolean {
  if (typeof v === 'string') return isTemplate(v);
  if (Array.isArray(v)) return v.some(containsTemplate);
  if (v && typeof v === 'object') return Object.entries(v).some(([k, x]) => isTemplate(k) || containsTemplate(x));
  return false;
}

/** `{{ expr }}` and nothing else: the expression text, else undefined. */
function singleExpression(text: string): string | undefined {
  const m = /^\{\{-?([\s\S]*?)-?\}\}$/.exec(text);
  if (!m) return undefined;
  const inner = m[1]!;
  if (inner.includes('{{') || inner.includes('}}') || inner.includes('{%') || inner.includes('{#')) return undefined;
  return inner.trim();
}

function cleanMessage(error: unknown): string {
  const raw = error instanceof Error ? error.message : String(error);
  return raw
    .replace(/^\(unknown path\)\s*/, '')
    .replace(/\s*\n\s*/g, ' ')
    .replace(/^(Error|TemplateError|Template render error): /g, '')
    .trim();
}
