import nunjucks from 'nunjucks';
import { stringify as yamlStringify } from 'yaml';
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
}

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
  const dflt: Filter = (v, d = '', boolean = false) =>
    !defined(v) || (boolean === true && (v === '' || v === null || v === false || v === 0)) ? d : v;
  const length: Filter = (v) => {
    need(v, 'length');
    if (typeof v === 'string' || Array.isArray(v)) return v.length;
    if (v && typeof v === 'object') return Object.keys(v).length;
    throw new TemplateError(`filter "length": ${toText(v)} has no length`);
  };
  return {
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
    to_json: (v) => JSON.stringify(need(v, 'to_json')),
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
    combine: (v, ...more) => Object.assign({}, need(v, 'combine'), ...more.filter((m) => typeof m === 'object')),
  };
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
  };
}

export const SUPPORTED_FILTERS: readonly string[] = Object.keys(makeFilters()).sort();
export const SUPPORTED_TESTS: readonly string[] = Object.keys(makeTests()).sort();
const GUARDS = new Set(['default', 'd', 'mandatory']);
const GUARD_TESTS = new Set(['defined', 'undefined', 'none']);
const NATIVE_FILTER = '__dyce_native';
const TEXT_FILTER = '__dyce_text';
/** Names that are Jinja literals or nunjucks globals rather than variables. */
const BUILTIN_NAMES = new Set(['True', 'False', 'None', 'true', 'false', 'none', 'range', 'loop']);

export interface TemplateAnalysis {
  /** Top-level variable names read (locals of `for`/`set` excluded). */
  variables: string[];
  filters: string[];
  tests: string[];
  /** True when a `default` filter or a `defined`/`undefined` test is present: undefined names may be intended. */
  guarded: boolean;
}

interface NjNode {
  typename: string;
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
    const builtins: Record<string, unknown> = { True: true, False: false, None: null };
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
    const guarded = filters.some((f) => GUARDS.has(f)) || tests.some((t) => GUARD_TESTS.has(t));
    return { variables, filters: [...new Set(filters)], tests: [...new Set(tests)], guarded };
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
