import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { SUPPORTED_FILTERS, SUPPORTED_TESTS, Templar, TemplateError } from '../template/templar.js';
import { InputError, UserError } from '../util/errors.js';
import { type ModuleDef, moduleRegistry } from './modules/index.js';
import { parseLinedYaml } from './yaml-lines.js';

/**
 * Playbooks: YAML -> a validated model, or an InputError listing every problem as `file:line: message`.
 * Everything outside the supported subset is refused here, before any host is touched: unknown keywords,
 * modules and module parameters, template syntax errors, unknown filters and tests, `when` that is not an
 * expression. Pure (readPlaybook reads the file and calls parsePlaybook).
 */

export interface SourcePos {
  file: string;
  line: number;
}

export type TaskLoop =
  | { kind: 'loop'; items: unknown; at: SourcePos }
  | { kind: 'sequence'; spec: string; at: SourcePos };

export interface Task {
  name?: string;
  /** The canonical module name (`docker_container`), whatever name the playbook used. */
  module: string;
  /** As written: k=v free form already split into a dict. Values may hold templates. */
  args: Record<string, unknown>;
  at: SourcePos;
  loop?: TaskLoop;
  loopVar: string;
  loopLabel?: string;
  when: unknown[];
  register?: string;
  changedWhen?: unknown[];
  failedWhen?: unknown[];
  ignoreErrors: unknown;
  noLog: unknown;
  tags: string[];
  environment?: Record<string, unknown>;
  become?: boolean;
  vars: Record<string, unknown>;
  /** Line of each task keyword, for runtime messages. */
  lines: Record<string, number>;
  /** Line of each module argument. */
  argLines: Record<string, number>;
}

export interface Play {
  name?: string;
  hosts: string;
  vars: Record<string, unknown>;
  varsFiles: string[];
  gatherFacts: boolean;
  become: boolean;
  serial?: unknown;
  tags: string[];
  environment?: Record<string, unknown>;
  tasks: Task[];
  at: SourcePos;
}

export interface Playbook {
  file: string;
  plays: Play[];
}

/** Keywords of a task, their zod schemas (values before templating). */
const stringList = z.union([z.string(), z.number()]).transform(String);
const tagsSchema = z
  .union([stringList, z.array(stringList)])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter((s) => s !== ''));
const conditionList = z
  .union([z.string(), z.boolean(), z.number(), z.array(z.union([z.string(), z.boolean(), z.number()]))])
  .transform((v) => (Array.isArray(v) ? v : [v]));
const boolOrTemplate = z.union([z.boolean(), z.string(), z.number()]);
const varName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a valid variable name');
const varsSchema = z
  .record(varName, z.unknown())
  .nullable()
  .transform((v) => v ?? {});
const envSchema = z.record(z.string(), z.unknown());

const taskKeywords = {
  name: z.union([z.string(), z.number()]).transform(String),
  loop: z.unknown(),
  with_items: z.unknown(),
  with_sequence: z.union([z.string(), z.number()]).transform(String),
  loop_control: z
    .object({ loop_var: varName.optional(), label: z.string().optional(), index_var: varName.optional() })
    .strict(),
  when: conditionList,
  register: varName,
  changed_when: conditionList,
  failed_when: conditionList,
  ignore_errors: boolOrTemplate,
  no_log: boolOrTemplate,
  tags: tagsSchema,
  environment: envSchema,
  become: z.boolean(),
  become_user: z.literal('root', { message: 'only root is supported' }),
  vars: varsSchema,
  args: z.record(z.string(), z.unknown()),
};
const TASK_KEYWORDS = new Set(Object.keys(taskKeywords));

/** Ansible task keywords Dyce knows of but does not run: named precisely instead of "unknown module". */
const UNSUPPORTED_TASK_KEYWORDS = new Set([
  'action',
  'local_action',
  'delegate_to',
  'delegate_facts',
  'run_once',
  'notify',
  'until',
  'retries',
  'delay',
  'async',
  'poll',
  'check_mode',
  'diff',
  'any_errors_fatal',
  'block',
  'rescue',
  'always',
  'include_tasks',
  'import_tasks',
  'include_role',
  'import_role',
  'include',
  'import_playbook',
  'with_dict',
  'with_fileglob',
  'with_together',
  'with_nested',
  'with_subelements',
  'with_lines',
  'with_first_found',
  'with_file',
  'with_list',
  'with_indexed_items',
  'with_random_choice',
  'with_flattened',
  'become_method',
  'become_flags',
  'connection',
  'remote_user',
  'port',
  'throttle',
  'timeout',
  'debugger',
  'collections',
  'module_defaults',
  'ignore_unreachable',
]);

const playKeywords = {
  name: z.union([z.string(), z.number()]).transform(String),
  hosts: z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v.join(',') : v)),
  vars: varsSchema,
  vars_files: z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v : [v])),
  gather_facts: z.boolean(),
  become: z.boolean(),
  become_user: z.literal('root', { message: 'only root is supported' }),
  serial: z.union([z.number().int().positive(), z.string()]),
  tags: tagsSchema,
  environment: envSchema,
  tasks: z.array(z.unknown()).nullable(),
};
const PLAY_KEYWORDS = new Set(Object.keys(playKeywords));
const UNSUPPORTED_PLAY_KEYWORDS = new Set([
  'roles',
  'pre_tasks',
  'post_tasks',
  'handlers',
  'vars_prompt',
  'strategy',
  'max_fail_percentage',
  'remote_user',
  'connection',
  'port',
  'import_playbook',
  'include',
  'order',
  'force_handlers',
  'module_defaults',
  'collections',
  'any_errors_fatal',
  'ignore_errors',
  'ignore_unreachable',
  'no_log',
  'check_mode',
  'diff',
  'become_method',
  'fact_path',
  'gather_subset',
  'gather_timeout',
  'run_once',
  'throttle',
  'timeout',
  'debugger',
  'hosts_file',
]);

/** Splits Ansible's `k=v k2="v 2"` free form, keeping `{{ ... }}` and quotes together. */
export function splitFreeForm(text: string): { args: Record<string, string>; raw: string[] } | { error: string } {
  const words: string[] = [];
  let cur = '';
  let quote: string | undefined;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    const two = text.slice(i, i + 2);
    if (!quote && (two === '{{' || two === '{%')) {
      depth++;
      cur += two;
      i++;
      continue;
    }
    if (!quote && depth > 0 && (two === '}}' || two === '%}')) {
      depth--;
      cur += two;
      i++;
      continue;
    }
    if (quote) {
      if (c === '\\' && text[i + 1] === quote) {
        cur += text[++i];
        continue;
      }
      if (c === quote) quote = undefined;
      cur += c;
    } else if ((c === '"' || c === "'") && depth === 0) {
      quote = c;
      cur += c;
    } else if (/\s/.test(c) && depth === 0) {
      if (cur !== '') words.push(cur);
      cur = '';
    } else cur += c;
  }
  if (quote) return { error: `unbalanced ${quote} quote in ${JSON.stringify(text)}` };
  if (depth > 0) return { error: `unbalanced {{ }} in ${JSON.stringify(text)}` };
  if (cur !== '') words.push(cur);
  const args: Record<string, string> = {};
  const raw: string[] = [];
  for (const w of words) {
    const m = /^([A-Za-z_][A-Za-z0-9_-]*)=([\s\S]*)$/.exec(w);
    if (!m) {
      raw.push(w);
      continue;
    }
    let v = m[2]!;
    if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v[v.length - 1] === v[0]) v = v.slice(1, -1);
    args[m[1]!] = v;
  }
  return { args, raw };
}

/** Parses `count=N` or `start=A end=B stride=S format=F` (after templating). */
export function parseSequence(spec: string): { items: string[] } | { error: string } {
  const split = splitFreeForm(spec.trim());
  if ('error' in split) return split;
  let { args } = split;
  if (split.raw.length > 0) {
    // Shortcut form: `start-end/stride:format` (`1-5`, `0-10/2:host%02d`).
    const m = /^(-?\d+)-(-?\d+)(?:\/(\d+))?(?::(.+))?$/.exec(split.raw.join(' '));
    if (!m) return { error: `with_sequence: cannot read ${JSON.stringify(spec)}` };
    args = { start: m[1]!, end: m[2]!, ...(m[3] ? { stride: m[3] } : {}), ...(m[4] ? { format: m[4] } : {}), ...args };
  }
  for (const k of Object.keys(args))
    if (!['start', 'end', 'count', 'stride', 'format'].includes(k))
      return { error: `with_sequence: unknown option ${JSON.stringify(k)}` };
  const num = (k: string): number | undefined => {
    const v = args[k];
    if (v === undefined) return undefined;
    const n = /^-?(0x[0-9a-f]+|0o?[0-7]+|\d+)$/i.test(v.trim())
      ? Number(v.trim().replace(/^0(?=[0-7])/, '0o'))
      : Number.NaN;
    if (!Number.isInteger(n)) throw new Error(`with_sequence: ${k} must be a whole number, got ${JSON.stringify(v)}`);
    return n;
  };
  try {
    const start = num('start') ?? 1;
    const count = num('count');
    let end = num('end');
    const stride = num('stride') ?? 1;
    if (count !== undefined && end !== undefined)
      return { error: 'with_sequence: count and end are mutually exclusive' };
    if (count !== undefined) {
      if (count === 0) return { items: [] };
      end = start + (count - 1) * stride;
    }
    if (end === undefined) return { error: 'with_sequence: give count= or end=' };
    if (stride === 0) return { error: 'with_sequence: stride must not be 0' };
    if ((end - start) / stride < 0) return { items: [] };
    if ((end - start) / stride > 10000) return { error: 'with_sequence: more than 10000 items' };
    const format = args.format ?? '%d';
    const items: string[] = [];
    for (let i = start; stride > 0 ? i <= end : i >= end; i += stride) items.push(printfInt(format, i));
    return { items };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

function printfInt(format: string, n: number): string {
  return format.replace(/%(0?)(\d*)([dxXo])/g, (_m, zero: string, width: string, conv: string) => {
    let s = conv === 'd' ? String(Math.abs(n)) : Math.abs(n).toString(conv === 'o' ? 8 : 16);
    if (conv === 'X') s = s.toUpperCase();
    const w = Number(width || 0) - (n < 0 ? 1 : 0);
    s = s.padStart(w, zero ? '0' : ' ');
    return n < 0 ? `-${s}` : s;
  });
}

/** Collects issues while walking the playbook; each is `file:line: message`. */
class Issues {
  readonly #list: { line: number; text: string }[] = [];
  /** In line order (a stable sort keeps the issues of one line in the order found). */
  get list(): string[] {
    return [...this.#list].sort((a, b) => a.line - b.line).map((i) => i.text);
  }
  add(at: SourcePos, message: string): void {
    this.#list.push({ line: at.line, text: `${at.file}:${at.line}: ${message}` });
  }
}

/** Pure: playbook text -> Playbook. Throws InputError naming file:line for every problem found. */
export function parsePlaybook(text: string, file: string): Playbook {
  const doc = parseLinedYaml(text);
  const issues = new Issues();
  const at = (path: (string | number)[]): SourcePos => ({ file, line: doc.lineOf(path) });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) issues.add({ file, line: e.line }, `invalid YAML: ${e.message}`);
    throw new InputError(issues.list, `invalid playbook ${file}`);
  }
  const templar = new Templar();
  const modules = moduleRegistry();
  const root = doc.value;
  if (!Array.isArray(root)) {
    issues.add(at([]), 'a playbook is a list of plays (each starting with `- hosts: ...`)');
    throw new InputError(issues.list, `invalid playbook ${file}`);
  }

  const checkTemplates = (value: unknown, path: (string | number)[], what: string): void => {
    if (typeof value === 'string') {
      if (!/\{\{|\{%|\{#/.test(value)) return;
      checkTemplate(templar, value, at(path), what, issues);
    } else if (Array.isArray(value)) {
      for (const [i, v] of value.entries()) checkTemplates(v, [...path, i], what);
    } else if (value && typeof value === 'object')
      for (const [k, v] of Object.entries(value)) {
        checkTemplates(k, [...path, k], what);
        checkTemplates(v, [...path, k], what);
      }
  };
  const checkConditions = (conds: unknown[], path: (string | number)[], keyword: string): void => {
    for (const c of conds) {
      if (typeof c !== 'string') continue;
      if (/\{\{|\{%/.test(c)) {
        issues.add(at(path), `${keyword} is a bare expression; write it without {{ }} (${JSON.stringify(c)})`);
        continue;
      }
      try {
        const a = templar.analyse(`{{ ${c} }}`);
        checkNames(a, at(path), issues);
      } catch (error) {
        issues.add(at(path), `${keyword} is not an expression: ${JSON.stringify(c)}: ${(error as Error).message}`);
      }
    }
  };

  const plays: Play[] = [];
  root.forEach((rawPlay, pi) => {
    const pp: (string | number)[] = [pi];
    if (!rawPlay || typeof rawPlay !== 'object' || Array.isArray(rawPlay)) {
      issues.add(at(pp), 'each play must be a mapping (hosts:, tasks:, ...)');
      return;
    }
    const rp = rawPlay as Record<string, unknown>;
    const p: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(rp)) {
      if (PLAY_KEYWORDS.has(k)) {
        const r = (playKeywords as Record<string, z.ZodType>)[k]!.safeParse(v);
        if (r.success) p[k] = r.data;
        else
          for (const i of r.error.issues)
            issues.add(at([...pp, k, ...(i.path as (string | number)[])]), `${k}: ${i.message}`);
      } else if (UNSUPPORTED_PLAY_KEYWORDS.has(k))
        issues.add(at([...pp, k]), `play keyword "${k}" is not supported by Dyce`);
      else issues.add(at([...pp, k]), `unknown play keyword "${k}"`);
    }
    if (rp.hosts === undefined) issues.add(at(pp), 'a play needs hosts:');
    checkTemplates(rp.vars, [...pp, 'vars'], 'play vars');
    if (typeof p.serial === 'string') checkTemplates(p.serial, [...pp, 'serial'], 'serial');
    const tasks: Task[] = [];
    ((p.tasks as unknown[] | null | undefined) ?? []).forEach((rawTask, ti) => {
      const tp = [...pp, 'tasks', ti];
      const t = parseTask(rawTask, tp);
      if (t) tasks.push(t);
    });
    plays.push({
      ...(p.name !== undefined ? { name: p.name as string } : {}),
      hosts: (p.hosts as string | undefined) ?? 'all',
      vars: (p.vars as Record<string, unknown>) ?? {},
      varsFiles: (p.vars_files as string[]) ?? [],
      gatherFacts: (p.gather_facts as boolean | undefined) ?? true,
      become: (p.become as boolean | undefined) ?? false,
      ...(p.serial !== undefined ? { serial: p.serial } : {}),
      tags: (p.tags as string[]) ?? [],
      ...(p.environment ? { environment: p.environment as Record<string, unknown> } : {}),
      tasks,
      at: at(pp),
    });
  });

  function parseTask(rawTask: unknown, tp: (string | number)[]): Task | undefined {
    if (!rawTask || typeof rawTask !== 'object' || Array.isArray(rawTask)) {
      issues.add(at(tp), 'each task must be a mapping (name:, a module, ...)');
      return undefined;
    }
    const rt = rawTask as Record<string, unknown>;
    const k: Record<string, unknown> = {};
    const lines: Record<string, number> = {};
    const moduleKeys: string[] = [];
    for (const [key, v] of Object.entries(rt)) {
      lines[key] = doc.lineOf([...tp, key]);
      if (TASK_KEYWORDS.has(key)) {
        const r = (taskKeywords as Record<string, z.ZodType>)[key]!.safeParse(v);
        if (r.success) k[key] = r.data;
        else
          for (const i of r.error.issues)
            issues.add(at([...tp, key, ...(i.path as (string | number)[])]), `${key}: ${i.message}`);
      } else if (UNSUPPORTED_TASK_KEYWORDS.has(key))
        issues.add(at([...tp, key]), `task keyword "${key}" is not supported by Dyce`);
      else if (key.startsWith('with_'))
        issues.add(at([...tp, key]), `loop "${key}" is not supported (use loop:, with_items: or with_sequence:)`);
      else moduleKeys.push(key);
    }
    if (moduleKeys.length === 0) {
      issues.add(
        at(tp),
        'no module in this task (expected one of: ' +
          [...new Set([...modules.values()].map((m) => m.name))].join(', ') +
          ')',
      );
      return undefined;
    }
    if (moduleKeys.length > 1) {
      const unknown = moduleKeys.filter((m) => !modules.has(m));
      for (const m of unknown.length ? unknown : moduleKeys.slice(1))
        issues.add(
          at([...tp, m]),
          modules.has(m) ? `more than one module in a task ("${moduleKeys.join('", "')}")` : unknownModule(m, modules),
        );
      return undefined;
    }
    const moduleName = moduleKeys[0]!;
    const def = modules.get(moduleName);
    const mp = [...tp, moduleName];
    if (!def) {
      issues.add(at(mp), unknownModule(moduleName, modules));
      return undefined;
    }
    const args = moduleArgs(def, rt[moduleName], k.args as Record<string, unknown> | undefined, mp);
    if (!args) return undefined;
    checkTemplates(args, mp, def.name);
    const loopKinds = ['loop', 'with_items', 'with_sequence'].filter((x) => k[x] !== undefined || rt[x] !== undefined);
    if (loopKinds.length > 1) issues.add(at(tp), `only one of ${loopKinds.join(', ')} per task`);
    let loop: TaskLoop | undefined;
    if (rt.loop !== undefined || rt.with_items !== undefined) {
      const key = rt.loop !== undefined ? 'loop' : 'with_items';
      let items = rt[key];
      // with_items flattens one level, as Ansible does.
      if (key === 'with_items' && Array.isArray(items)) items = items.flatMap((x) => (Array.isArray(x) ? x : [x]));
      checkTemplates(items, [...tp, key], key);
      if (typeof items !== 'string' && !Array.isArray(items))
        issues.add(at([...tp, key]), `${key} must be a list or a template that gives one`);
      loop = { kind: 'loop', items, at: at([...tp, key]) };
    } else if (k.with_sequence !== undefined) {
      const spec = k.with_sequence as string;
      checkTemplates(spec, [...tp, 'with_sequence'], 'with_sequence');
      if (!/\{\{/.test(spec)) {
        const s = parseSequence(spec);
        if ('error' in s) issues.add(at([...tp, 'with_sequence']), s.error);
      }
      loop = { kind: 'sequence', spec, at: at([...tp, 'with_sequence']) };
    }
    const lc = k.loop_control as { loop_var?: string; label?: string } | undefined;
    if (lc && !loop) issues.add(at([...tp, 'loop_control']), 'loop_control without a loop');
    for (const kw of ['when', 'changed_when', 'failed_when'] as const)
      if (k[kw]) checkConditions(k[kw] as unknown[], [...tp, kw], kw);
    for (const kw of ['name', 'ignore_errors', 'no_log', 'environment', 'vars'] as const)
      if (rt[kw] !== undefined) checkTemplates(rt[kw], [...tp, kw], kw);
    if (lc?.label) checkTemplates(lc.label, [...tp, 'loop_control', 'label'], 'loop_control.label');
    return {
      ...(k.name !== undefined ? { name: k.name as string } : {}),
      module: def.name,
      args,
      at: at(tp),
      ...(loop ? { loop } : {}),
      loopVar: lc?.loop_var ?? 'item',
      ...(lc?.label ? { loopLabel: lc.label } : {}),
      when: (k.when as unknown[]) ?? [],
      ...(k.register ? { register: k.register as string } : {}),
      ...(k.changed_when ? { changedWhen: k.changed_when as unknown[] } : {}),
      ...(k.failed_when ? { failedWhen: k.failed_when as unknown[] } : {}),
      ignoreErrors: k.ignore_errors ?? false,
      noLog: k.no_log ?? false,
      tags: (k.tags as string[]) ?? [],
      ...(k.environment ? { environment: k.environment as Record<string, unknown> } : {}),
      ...(k.become !== undefined ? { become: k.become as boolean } : {}),
      vars: (k.vars as Record<string, unknown>) ?? {},
      lines,
      argLines: Object.fromEntries(Object.keys(args).map((a) => [a, doc.lineOf([...mp, a])])),
    };
  }

  function moduleArgs(
    def: ModuleDef,
    value: unknown,
    extraArgs: Record<string, unknown> | undefined,
    mp: (string | number)[],
  ): Record<string, unknown> | undefined {
    let args: Record<string, unknown>;
    if (value === null || value === undefined) args = {};
    else if (typeof value === 'string') {
      const split = splitFreeForm(value);
      if ('error' in split) {
        issues.add(at(mp), `${def.name}: ${split.error}`);
        return undefined;
      }
      if (split.raw.length > 0) {
        issues.add(
          at(mp),
          `${def.name}: free-form text ${JSON.stringify(split.raw.join(' '))} is not supported; write key=value`,
        );
        return undefined;
      }
      args = split.args;
    } else if (typeof value === 'object' && !Array.isArray(value)) args = { ...(value as Record<string, unknown>) };
    else {
      issues.add(at(mp), `${def.name}: arguments must be a mapping or key=value text`);
      return undefined;
    }
    if (extraArgs) args = { ...extraArgs, ...args };
    if (def.params !== 'any') {
      const known = new Set(def.params);
      for (const key of Object.keys(args))
        if (!known.has(key))
          issues.add(
            at([...mp, key]),
            `${def.name}: unsupported parameter "${key}" (supported: ${def.params.join(', ')})`,
          );
    }
    return args;
  }

  if (issues.list.length > 0) throw new InputError(issues.list, `invalid playbook ${file}`);
  if (plays.length === 0) throw new InputError([`${file}:1: the playbook has no plays`], `invalid playbook ${file}`);
  return { file, plays };
}

function unknownModule(name: string, modules: Map<string, ModuleDef>): string {
  const short = [...new Set([...modules.values()].map((m) => m.name))];
  return `unknown module or task keyword "${name}" (Dyce runs: ${short.join(', ')}, and their FQCNs)`;
}

function checkTemplate(templar: Templar, text: string, at: SourcePos, what: string, issues: Issues): void {
  try {
    checkNames(templar.analyse(text), at, issues);
  } catch (error) {
    if (error instanceof TemplateError)
      issues.add(at, `${what}: template error in ${JSON.stringify(text)}: ${error.message}`);
    else throw error;
  }
}

const FILTERS = new Set(SUPPORTED_FILTERS);
const TESTS = new Set(SUPPORTED_TESTS);

function checkNames(a: { filters: string[]; tests: string[] }, at: SourcePos, issues: Issues): void {
  for (const f of a.filters)
    if (!FILTERS.has(f)) issues.add(at, `unknown filter "${f}" (supported: ${SUPPORTED_FILTERS.join(', ')})`);
  for (const t of a.tests)
    if (!TESTS.has(t)) issues.add(at, `unknown test "${t}" (supported: ${SUPPORTED_TESTS.join(', ')})`);
}

/** Reads and parses a playbook file. */
export async function readPlaybook(path: string): Promise<Playbook> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UserError(`cannot read playbook ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`, {
      cause: error,
    });
  }
  return parsePlaybook(text, path);
}
