import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import {
  isTemplate,
  SUPPORTED_FILTERS,
  SUPPORTED_LOOKUPS,
  SUPPORTED_TESTS,
  Templar,
  TemplateError,
} from '../template/templar.js';
import { InputError, UserError } from '../util/errors.js';
import { holdsTemplate } from './modules/coerce.js';
import { type ModuleDef, moduleRegistry } from './modules/index.js';
import { type LinedYaml, parseLinedYaml } from './yaml-lines.js';

/**
 * Playbooks: YAML -> a validated model, or an InputError listing every problem as `file:line: message`.
 * Everything outside the supported subset is refused here, before any host is touched: unknown keywords,
 * modules and module parameters, template syntax errors, unknown filters, tests and lookups, `when` that is not an
 * expression, in every file the playbook brings in (imports, roles, includes whose name is known).
 */

export interface SourcePos {
  file: string;
  line: number;
}

export type TaskLoop =
  | { kind: 'loop'; items: unknown; at: SourcePos }
  | { kind: 'sequence'; spec: string; at: SourcePos }
  | { kind: 'dict'; items: unknown; at: SourcePos };

/** A role's variables, as its tasks see them. */
export interface RoleScope {
  name: string;
  dir: string;
  defaults: Record<string, unknown>;
  vars: Record<string, unknown>;
  /** `- role: x` / include_role `vars:` parameters (above everything but extra vars). */
  params: Record<string, unknown>;
}

/** Keywords a block, an import or a role hands down to each of its tasks. */
export interface Inherited {
  when: unknown[];
  tags: string[];
  vars: Record<string, unknown>;
  become?: boolean;
  ignoreErrors?: unknown;
  noLog?: unknown;
  environment?: Record<string, unknown>;
  checkMode?: unknown;
  diff?: unknown;
  delegateTo?: string;
  runOnce?: unknown;
  anyErrorsFatal?: boolean;
  role?: RoleScope;
  /** Loop variables of enclosing includes (known to the static check). */
  loopVars: string[];
}

export interface Task {
  kind: 'task';
  /** Position in the play's tree: tasks run in this order, hosts at the same task run it together. */
  key: number[];
  name?: string;
  /** The canonical module name (`docker_container`), whatever name the playbook used; `meta` for meta tasks. */
  module: string;
  /** As written: k=v free form already split into a dict. Values may hold templates. */
  args: Record<string, unknown>;
  at: SourcePos;
  loop?: TaskLoop;
  loopVar: string;
  loopLabel?: string;
  indexVar?: string;
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
  notify: string[];
  /** Handlers only: the topics it listens to (its name is one as well). */
  listen: string[];
  until?: unknown[];
  retries?: unknown;
  delay?: unknown;
  checkMode?: unknown;
  diff?: unknown;
  delegateTo?: string;
  runOnce?: unknown;
  anyErrorsFatal?: boolean;
  role?: RoleScope;
  loopVars: string[];
  /** Line of each task keyword, for runtime messages. */
  lines: Record<string, number>;
  /** Line of each module argument. */
  argLines: Record<string, number>;
}

export interface Block {
  kind: 'block';
  key: number[];
  name?: string;
  block: Node[];
  rescue: Node[];
  always: Node[];
  at: SourcePos;
}

/** include_tasks / include_role: decided per host when the run reaches it. */
export interface Include {
  kind: 'include';
  key: number[];
  name?: string;
  what: 'tasks' | 'role';
  /** The file or role name as written (may be a template). */
  target: string;
  /** The tasks, when the target is known before the run (then checked at parse time). */
  tasks?: Node[];
  /** What a target known only at run time is parsed with. */
  inherited: Inherited;
  roleOptions?: { tasksFrom?: string };
  when: unknown[];
  tags: string[];
  vars: Record<string, unknown>;
  loop?: TaskLoop;
  loopVar: string;
  at: SourcePos;
  lines: Record<string, number>;
}

export type Node = Task | Block | Include;

export interface Play {
  name?: string;
  hosts: string;
  vars: Record<string, unknown>;
  varsFiles: string[];
  gatherFacts: boolean;
  become: boolean;
  becomeMethod?: string;
  connection?: 'local' | 'ssh';
  remoteUser?: string;
  serial?: unknown;
  maxFailPercentage?: number;
  anyErrorsFatal: boolean;
  forceHandlers: boolean;
  tags: string[];
  environment?: Record<string, unknown>;
  /** pre_tasks, roles + tasks, post_tasks: handlers are flushed after each section. */
  sections: Node[][];
  /** Every task of the play's sections, flattened (roles, blocks and static includes expanded). */
  tasks: Task[];
  handlers: Task[];
  at: SourcePos;
}

export interface Playbook {
  file: string;
  plays: Play[];
}

/** Reads a file the playbook refers to (include_tasks, roles, include_vars, lookups); undefined when missing. */
export type FileReader = (path: string) => string | undefined;

/** Every task below some nodes, in tree order (static includes expanded). */
export function flattenTasks(nodes: readonly Node[], out: Task[] = []): Task[] {
  for (const n of nodes) {
    if (n.kind === 'task') out.push(n);
    else if (n.kind === 'block') {
      flattenTasks(n.block, out);
      flattenTasks(n.rescue, out);
      flattenTasks(n.always, out);
    } else if (n.tasks) flattenTasks(n.tasks, out);
  }
  return out;
}

/** Keywords of a task, their zod schemas (values before templating). */
const stringList = z.union([z.string(), z.number()]).transform(String);
const tagsSchema = z
  .union([stringList, z.array(stringList)])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter((s) => s !== ''));
const namesSchema = z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v : [v]));
const conditionList = z
  .union([z.string(), z.boolean(), z.number(), z.array(z.union([z.string(), z.boolean(), z.number()]))])
  .transform((v) => (Array.isArray(v) ? v : [v]));
const boolOrTemplate = z.union([z.boolean(), z.string(), z.number()]);
const numberOrTemplate = z.union([z.number(), z.string()]);
const varName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a valid variable name');
const varsSchema = z
  .record(varName, z.unknown())
  .nullable()
  .transform((v) => v ?? {});
const envSchema = z.record(z.string(), z.unknown());
const becomeMethod = z.literal('sudo', { message: 'only sudo is supported' });

/** Keywords a block (and an import, a role entry) may carry and hands down to its tasks. */
const inheritableKeywords = {
  name: z.union([z.string(), z.number()]).transform(String),
  when: conditionList,
  tags: tagsSchema,
  vars: varsSchema,
  become: z.boolean(),
  become_user: z.literal('root', { message: 'only root is supported' }),
  become_method: becomeMethod,
  ignore_errors: boolOrTemplate,
  no_log: boolOrTemplate,
  environment: envSchema,
  check_mode: boolOrTemplate,
  diff: boolOrTemplate,
  delegate_to: z.string(),
  run_once: boolOrTemplate,
  any_errors_fatal: z.boolean(),
  collections: z.array(z.string()),
  connection: z.enum(['local', 'ssh', 'smart', 'paramiko']),
};

const taskKeywords = {
  ...inheritableKeywords,
  loop: z.unknown(),
  with_items: z.unknown(),
  with_list: z.unknown(),
  with_dict: z.unknown(),
  with_sequence: z.union([z.string(), z.number()]).transform(String),
  loop_control: z
    .object({
      loop_var: varName.optional(),
      label: z.string().optional(),
      index_var: varName.optional(),
      pause: z.number().optional(),
    })
    .strict(),
  register: varName,
  changed_when: conditionList,
  failed_when: conditionList,
  args: z.record(z.string(), z.unknown()),
  notify: namesSchema,
  listen: namesSchema,
  until: conditionList,
  retries: numberOrTemplate,
  delay: numberOrTemplate,
  delegate_facts: z.boolean(),
  throttle: z.number(),
};
const TASK_KEYWORDS = new Set(Object.keys(taskKeywords));

/** What `dyce play` supports and refuses by name, for docs/playbooks.md (test/unit/playbook/docs.test.ts). */
export function supportedLanguage(): Record<string, readonly string[]> {
  return {
    'play keywords': [...PLAY_KEYWORDS, 'import_playbook'].sort(),
    'task keywords': [...TASK_KEYWORDS, 'action', 'local_action'].sort(),
    'block keywords': [...BLOCK_KEYWORDS].sort(),
    'include and import': ['import_role', 'import_tasks', 'include_role', 'include_tasks', 'include_vars'],
    'refused play keywords': [...UNSUPPORTED_PLAY_KEYWORDS].sort(),
    'refused task keywords': [...UNSUPPORTED_TASK_KEYWORDS].sort(),
  };
}
const BLOCK_KEYWORDS = new Set([...Object.keys(inheritableKeywords), 'block', 'rescue', 'always']);
const LOOP_KEYWORDS = ['loop', 'with_items', 'with_list', 'with_dict', 'with_sequence'] as const;

/** Ansible task keywords Dyce knows of but does not run: named precisely instead of "unknown module". */
const UNSUPPORTED_TASK_KEYWORDS = new Set([
  'async',
  'poll',
  'include',
  'import_playbook',
  'with_fileglob',
  'with_together',
  'with_nested',
  'with_subelements',
  'with_lines',
  'with_first_found',
  'with_file',
  'with_indexed_items',
  'with_random_choice',
  'with_flattened',
  'become_flags',
  'remote_user',
  'port',
  'timeout',
  'debugger',
  'module_defaults',
  'ignore_unreachable',
]);

const playKeywords = {
  name: z.union([z.string(), z.number()]).transform(String),
  hosts: z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v.join(',') : v)),
  vars: varsSchema,
  vars_files: z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v : [v])),
  gather_facts: z.boolean(),
  gather_subset: z.unknown(),
  become: z.boolean(),
  become_user: z.literal('root', { message: 'only root is supported' }),
  become_method: becomeMethod,
  serial: z.union([
    z.number().int().positive(),
    z.string(),
    z.array(z.union([z.number().int().positive(), z.string()])),
  ]),
  max_fail_percentage: z
    .union([z.number().min(0).max(100), z.string().regex(/^\d+(\.\d+)?%?$/)])
    .transform((v) => Number.parseFloat(String(v))),
  any_errors_fatal: z.boolean(),
  force_handlers: z.boolean(),
  strategy: z.literal('linear', { message: 'only the linear strategy is supported' }),
  connection: z.enum(['local', 'ssh', 'smart', 'paramiko']),
  remote_user: z.string(),
  collections: z.array(z.string()),
  tags: tagsSchema,
  environment: envSchema,
  roles: z.array(z.unknown()).nullable(),
  pre_tasks: z.array(z.unknown()).nullable(),
  tasks: z.array(z.unknown()).nullable(),
  post_tasks: z.array(z.unknown()).nullable(),
  handlers: z.array(z.unknown()).nullable(),
};
const PLAY_KEYWORDS = new Set(Object.keys(playKeywords));
const UNSUPPORTED_PLAY_KEYWORDS = new Set([
  'vars_prompt',
  'port',
  'include',
  'order',
  'module_defaults',
  'ignore_errors',
  'ignore_unreachable',
  'no_log',
  'check_mode',
  'diff',
  'fact_path',
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
  readonly #list: { file: string; line: number; text: string }[] = [];
  /** In file and line order (a stable sort keeps the issues of one line in the order found). */
  get list(): string[] {
    const files = [...new Set(this.#list.map((i) => i.file))];
    return [...this.#list]
      .sort((a, b) => files.indexOf(a.file) - files.indexOf(b.file) || a.line - b.line)
      .map((i) => i.text)
      .filter((t, i, all) => all.indexOf(t) === i);
  }
  add(at: SourcePos, message: string): void {
    this.#list.push({ file: at.file, line: at.line, text: `${at.file}:${at.line}: ${message}` });
  }
}

/** One YAML file being read: its values and the line of every key. */
interface Source {
  file: string;
  doc: LinedYaml;
  at(path: (string | number)[]): SourcePos;
}

type Path = (string | number)[];
const NO_INHERIT: Inherited = { when: [], tags: [], vars: {}, loopVars: [] };
const ROLE_DIRS = ['tasks', 'handlers', 'defaults', 'vars', 'meta', 'templates', 'files'];

export function defaultReader(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * The parser of one playbook and every file it refers to (imports, roles, statically known includes, vars files
 * of include_vars). Issues of all files are collected together.
 */
export class PlaybookParser {
  readonly issues = new Issues();
  readonly templar = new Templar();
  readonly modules = moduleRegistry();
  readonly #read: FileReader;
  readonly #sources = new Map<string, Source | undefined>();
  /** The playbook's directory: roles/ and files are looked for here. */
  readonly dir: string;
  #rolesPath: string[] | undefined;
  /** Handlers of roles met while parsing the current play. */
  #roleHandlers: Task[] = [];
  /** Roles (directory and parameters) already in the current play: a dependency met again does not run again. */
  #rolesSeen = new Set<string>();

  constructor(
    readonly file: string,
    read: FileReader = defaultReader,
  ) {
    this.#read = read;
    this.dir = dirname(resolve(file));
  }

  /** A YAML file, parsed once; YAML errors are reported once, as one issue (the first error is the real one). */
  source(file: string, text?: string, from?: SourcePos): Source | undefined {
    if (this.#sources.has(file)) return this.#sources.get(file);
    const body = text ?? this.#read(file);
    if (body === undefined) {
      this.issues.add(from ?? { file, line: 1 }, `cannot read ${file}`);
      this.#sources.set(file, undefined);
      return undefined;
    }
    const doc = parseLinedYaml(body);
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      this.issues.add({ file, line: e.line }, `invalid YAML: ${e.message}`);
      this.#sources.set(file, undefined);
      return undefined;
    }
    const src: Source = { file, doc, at: (path) => ({ file, line: doc.lineOf(path) }) };
    this.#sources.set(file, src);
    return src;
  }

  // -- plays ------------------------------------------------------------------------------------------------------

  plays(src: Source, out: Play[], chain: string[] = []): void {
    const root = src.doc.value;
    if (!Array.isArray(root)) {
      this.issues.add(src.at([]), 'a playbook is a list of plays (each starting with `- hosts: ...`)');
      return;
    }
    root.forEach((raw, pi) => {
      if (raw && typeof raw === 'object' && !Array.isArray(raw) && 'import_playbook' in raw) {
        const target = (raw as Record<string, unknown>).import_playbook;
        const at = src.at([pi, 'import_playbook']);
        if (typeof target !== 'string' || isTemplate(target)) {
          this.issues.add(at, 'import_playbook needs a file name (not a template)');
          return;
        }
        const path = resolve(dirname(src.file), target);
        if (chain.includes(path)) {
          this.issues.add(at, `import_playbook: ${target} imports itself`);
          return;
        }
        const other = this.source(path, undefined, at);
        if (other) this.plays(other, out, [...chain, path]);
        return;
      }
      const p = this.play(src, raw, [pi]);
      if (p) out.push(p);
    });
  }

  play(src: Source, rawPlay: unknown, pp: Path): Play | undefined {
    const { issues } = this;
    if (!rawPlay || typeof rawPlay !== 'object' || Array.isArray(rawPlay)) {
      issues.add(src.at(pp), 'each play must be a mapping (hosts:, tasks:, ...)');
      return undefined;
    }
    const rp = rawPlay as Record<string, unknown>;
    const p: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(rp)) {
      if (PLAY_KEYWORDS.has(k)) {
        const r = (playKeywords as Record<string, z.ZodType>)[k]!.safeParse(v);
        if (r.success) p[k] = r.data;
        else for (const i of r.error.issues) issues.add(src.at([...pp, k, ...(i.path as Path)]), `${k}: ${i.message}`);
      } else if (UNSUPPORTED_PLAY_KEYWORDS.has(k))
        issues.add(src.at([...pp, k]), `play keyword "${k}" is not supported by Dyce`);
      else issues.add(src.at([...pp, k]), `unknown play keyword "${k}"`);
    }
    if (rp.hosts === undefined) issues.add(src.at(pp), 'a play needs hosts:');
    this.checkTemplates(src, rp.vars, [...pp, 'vars'], 'play vars');
    if (p.serial !== undefined) this.checkTemplates(src, p.serial, [...pp, 'serial'], 'serial');
    this.#roleHandlers = [];
    this.#rolesSeen = new Set();
    const seen = new Set<string>();
    const sectionOf = (k: string, n: number): Node[] =>
      ((p[k] as unknown[] | null | undefined) ?? []).flatMap((raw, i) => {
        const node = this.node(src, raw, [...pp, k, i], NO_INHERIT, [n, i]);
        return node ? [node] : [];
      });
    const pre = sectionOf('pre_tasks', 0);
    const roles: Node[] = [];
    ((p.roles as unknown[] | null | undefined) ?? []).forEach((entry, i) => {
      const b = this.roleEntry(src, entry, [...pp, 'roles', i], [1, i], seen);
      if (b) roles.push(b);
    });
    const tasks = sectionOf('tasks', 2).map((n) => ({ ...n, key: [1, ...n.key] }) as Node);
    const post = sectionOf('post_tasks', 3).map((n) => ({ ...n, key: [2, ...n.key.slice(1)] }) as Node);
    const handlers = [
      ...this.#roleHandlers,
      ...((p.handlers as unknown[] | null | undefined) ?? []).flatMap((raw, i) => {
        const node = this.node(src, raw, [...pp, 'handlers', i], NO_INHERIT, [9, i]);
        return node ? flattenTasks([node]) : [];
      }),
    ];
    for (const h of handlers)
      if (h.name === undefined && h.listen.length === 0)
        issues.add(h.at, 'a handler needs a name (or listen:) to be notified by');
    const names = new Set(handlers.flatMap((h) => [...(h.name !== undefined ? [h.name] : []), ...h.listen]));
    const sections = [pre, [...roles, ...tasks], post];
    const all = flattenTasks(sections.flat());
    for (const t of [...all, ...handlers])
      for (const n of t.notify)
        if (!names.has(n) && !isTemplate(n))
          issues.add(
            { file: t.at.file, line: t.lines.notify ?? t.at.line },
            `notify: no handler named "${n}" in this play`,
          );
    return {
      ...(p.name !== undefined ? { name: p.name as string } : {}),
      hosts: (p.hosts as string | undefined) ?? 'all',
      vars: (p.vars as Record<string, unknown>) ?? {},
      varsFiles: (p.vars_files as string[]) ?? [],
      gatherFacts: (p.gather_facts as boolean | undefined) ?? true,
      become: (p.become as boolean | undefined) ?? false,
      ...(p.become_method ? { becomeMethod: p.become_method as string } : {}),
      ...(p.connection ? { connection: p.connection === 'local' ? 'local' : 'ssh' } : {}),
      ...(p.remote_user ? { remoteUser: p.remote_user as string } : {}),
      ...(p.serial !== undefined ? { serial: p.serial } : {}),
      ...(p.max_fail_percentage !== undefined ? { maxFailPercentage: p.max_fail_percentage as number } : {}),
      anyErrorsFatal: (p.any_errors_fatal as boolean | undefined) ?? false,
      forceHandlers: (p.force_handlers as boolean | undefined) ?? false,
      tags: (p.tags as string[]) ?? [],
      ...(p.environment ? { environment: p.environment as Record<string, unknown> } : {}),
      sections,
      tasks: all,
      handlers,
      at: src.at(pp),
    };
  }

  // -- roles ------------------------------------------------------------------------------------------------------

  /** A `roles:` entry: `name`, or `{role: name, when/tags/vars..., param: value}`. */
  roleEntry(src: Source, entry: unknown, path: Path, key: number[], seen: Set<string>): Node | undefined {
    let name: unknown;
    let rest: Record<string, unknown> = {};
    if (typeof entry === 'string') name = entry;
    else if (entry && typeof entry === 'object' && !Array.isArray(entry)) {
      const { role, name: n, ...r } = entry as Record<string, unknown>;
      name = role ?? n;
      rest = r;
    }
    if (typeof name !== 'string' || name === '') {
      this.issues.add(src.at(path), 'a roles: entry is a role name or a mapping with role:');
      return undefined;
    }
    const kw: Record<string, unknown> = {};
    const params: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(rest)) {
      if (k in inheritableKeywords && k !== 'name') kw[k] = v;
      else params[k] = v;
    }
    const id = `${name}${JSON.stringify(params)}`;
    if (seen.has(id)) return undefined;
    seen.add(id);
    const inh = this.inherit(src, kw, path, NO_INHERIT);
    const loaded = this.role(src, name, path, { ...inh, vars: inh.vars }, params, key, {});
    if (!loaded) return undefined;
    return { kind: 'block', key, name: `role ${name}`, block: loaded, rescue: [], always: [], at: src.at(path) };
  }

  #roleDirs(): string[] {
    if (this.#rolesPath === undefined) {
      this.#rolesPath = [];
      const cfg = this.#read(join(this.dir, 'ansible.cfg'));
      const m = cfg ? /^\s*roles_path\s*[=:]\s*(.+)$/m.exec(cfg) : null;
      if (m)
        for (const d of m[1]!.trim().split(':'))
          this.#rolesPath.push(resolve(this.dir, d.replace(/^~(?=\/)/, homedir())));
    }
    return [join(this.dir, 'roles'), ...this.#rolesPath, this.dir];
  }

  /** Finds a role's directory: roles/ beside the playbook, roles_path of an ansible.cfg there, the playbook's directory. */
  findRole(name: string): string | undefined {
    const short = name.includes('.') && !name.includes('/') ? name.split('.').pop()! : name;
    const candidates = name.includes('/') ? [resolve(this.dir, name)] : this.#roleDirs().map((d) => join(d, short));
    for (const dir of candidates)
      if (
        ROLE_DIRS.some((sub) =>
          ['main.yml', 'main.yaml', 'main'].some((f) => this.#read(join(dir, sub, f)) !== undefined),
        )
      )
        return dir;
    return undefined;
  }

  #roleFile(dir: string, sub: string, base = 'main'): string | undefined {
    const names = /\.ya?ml$/.test(base) ? [base] : [`${base}.yml`, `${base}.yaml`, base];
    for (const n of names) {
      const p = join(dir, sub, n);
      if (this.#read(p) !== undefined) return p;
    }
    return undefined;
  }

  #varsFile(path: string, at: SourcePos): Record<string, unknown> {
    const s = this.source(path, undefined, at);
    if (!s) return {};
    const v = s.doc.value;
    if (v === null || v === undefined) return {};
    if (typeof v !== 'object' || Array.isArray(v)) {
      this.issues.add(s.at([]), 'a vars file must hold a mapping of names to values');
      return {};
    }
    this.checkTemplates(s, v, [], 'vars');
    return v as Record<string, unknown>;
  }

  /** A role's tasks (dependencies first), with its handlers added to the play's. */
  role(
    src: Source,
    name: string,
    path: Path,
    inh: Inherited,
    params: Record<string, unknown>,
    key: number[],
    from: { tasksFrom?: string; varsFrom?: string; defaultsFrom?: string; handlersFrom?: string },
    chain: string[] = [],
  ): Node[] | undefined {
    const at = src.at(path);
    if (isTemplate(name)) {
      this.issues.add(at, `role name "${name}" must not be a template here (include_role takes one)`);
      return undefined;
    }
    const dir = this.findRole(name);
    if (!dir) {
      this.issues.add(
        at,
        `role "${name}" not found (looked in ${this.#roleDirs()
          .map((d) => join(d, name))
          .join(', ')})`,
      );
      return undefined;
    }
    if (chain.includes(dir)) {
      this.issues.add(at, `role "${name}" depends on itself (${[...chain, dir].join(' -> ')})`);
      return undefined;
    }
    const defaultsFile = this.#roleFile(dir, 'defaults', from.defaultsFrom);
    const varsFile = this.#roleFile(dir, 'vars', from.varsFrom);
    const scope: RoleScope = {
      name: basename(dir),
      dir,
      defaults: defaultsFile ? this.#varsFile(defaultsFile, at) : {},
      vars: varsFile ? this.#varsFile(varsFile, at) : {},
      params,
    };
    const roleInh: Inherited = { ...inh, role: scope };
    const nodes: Node[] = [];
    const metaFile = this.#roleFile(dir, 'meta');
    if (metaFile) {
      const meta = this.source(metaFile, undefined, at);
      const deps = (meta?.doc.value as { dependencies?: unknown } | null)?.dependencies;
      if (meta && deps !== undefined && deps !== null) {
        if (!Array.isArray(deps)) this.issues.add(meta.at(['dependencies']), 'dependencies must be a list of roles');
        else
          deps.forEach((d, i) => {
            let depName: unknown = d;
            let depParams: Record<string, unknown> = {};
            let depKw: Record<string, unknown> = {};
            if (d && typeof d === 'object') {
              const { role, name: n, ...r } = d as Record<string, unknown>;
              depName = role ?? n;
              for (const [k, v] of Object.entries(r))
                if (k in inheritableKeywords) depKw[k] = v;
                else depParams[k] = v;
            }
            if (typeof depName !== 'string') {
              this.issues.add(meta.at(['dependencies', i]), 'a dependency is a role name or a mapping with role:');
              return;
            }
            depKw = depKw as Record<string, unknown>;
            const depDir = this.findRole(depName);
            const depId = `${depDir}${JSON.stringify(depParams)}`;
            if (depDir && this.#rolesSeen.has(depId)) return;
            if (depDir) this.#rolesSeen.add(depId);
            const dInh = this.inherit(meta, depKw, ['dependencies', i], inh);
            const dep = this.role(meta, depName, ['dependencies', i], dInh, depParams, [...key, 0, i], {}, [
              ...chain,
              dir,
            ]);
            if (dep) nodes.push(...dep);
            depParams = {};
          });
      }
    }
    const tasksFile = this.#roleFile(dir, 'tasks', from.tasksFrom);
    if (from.tasksFrom && !tasksFile) this.issues.add(at, `role "${name}": no tasks file ${from.tasksFrom}`);
    if (tasksFile) nodes.push(...this.taskFile(tasksFile, roleInh, [...key, 1], at));
    const handlersFile = this.#roleFile(dir, 'handlers', from.handlersFrom);
    if (handlersFile) this.#roleHandlers.push(...flattenTasks(this.taskFile(handlersFile, roleInh, [9], at)));
    return nodes;
  }

  /** The tasks of a file (import_tasks, include_tasks, a role's tasks/main.yml). */
  taskFile(file: string, inh: Inherited, key: number[], from: SourcePos): Node[] {
    const s = this.source(file, undefined, from);
    if (!s) return [];
    const v = s.doc.value;
    if (v === null || v === undefined) return [];
    if (!Array.isArray(v)) {
      this.issues.add(s.at([]), 'a tasks file is a list of tasks');
      return [];
    }
    return v.flatMap((raw, i) => {
      const n = this.node(s, raw, [i], inh, [...key, i]);
      return n ? [n] : [];
    });
  }

  /** Where a relative include looks: the role's tasks/ (or vars/), the including file's directory, the playbook's. */
  resolveFile(target: string, src: { file: string }, inh: Inherited, sub: string): string {
    if (isAbsolute(target)) return target;
    const candidates = [
      ...(inh.role ? [join(inh.role.dir, sub, target), join(inh.role.dir, target)] : []),
      resolve(dirname(src.file), target),
      join(this.dir, target),
      join(this.dir, sub, target),
    ];
    return candidates.find((c) => this.#read(c) !== undefined) ?? candidates[0]!;
  }

  // -- tasks and blocks -------------------------------------------------------------------------------------------

  /** Block-level keywords folded into what enclosing blocks hand down. */
  inherit(src: Source, kw: Record<string, unknown>, path: Path, inh: Inherited): Inherited {
    const k: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(kw)) {
      const schema = (inheritableKeywords as Record<string, z.ZodType>)[key];
      if (!schema) continue;
      const r = schema.safeParse(v);
      if (r.success) k[key] = r.data;
      else
        for (const i of r.error.issues)
          this.issues.add(src.at([...path, key, ...(i.path as Path)]), `${key}: ${i.message}`);
    }
    if (k.when) this.checkConditions(src, k.when as unknown[], [...path, 'when'], 'when');
    if (kw.vars !== undefined) this.checkTemplates(src, kw.vars, [...path, 'vars'], 'vars');
    if (kw.environment !== undefined) this.checkTemplates(src, kw.environment, [...path, 'environment'], 'environment');
    return {
      ...inh,
      when: [...inh.when, ...((k.when as unknown[]) ?? [])],
      tags: [...new Set([...inh.tags, ...((k.tags as string[]) ?? [])])],
      vars: { ...inh.vars, ...((k.vars as Record<string, unknown>) ?? {}) },
      ...(k.become !== undefined ? { become: k.become as boolean } : {}),
      ...(k.ignore_errors !== undefined ? { ignoreErrors: k.ignore_errors } : {}),
      ...(k.no_log !== undefined ? { noLog: k.no_log } : {}),
      ...(k.environment ? { environment: { ...inh.environment, ...(k.environment as Record<string, unknown>) } } : {}),
      ...(k.check_mode !== undefined ? { checkMode: k.check_mode } : {}),
      ...(k.diff !== undefined ? { diff: k.diff } : {}),
      ...(k.delegate_to !== undefined ? { delegateTo: k.delegate_to as string } : {}),
      ...(k.connection === 'local' ? { delegateTo: 'localhost' } : {}),
      ...(k.run_once !== undefined ? { runOnce: k.run_once } : {}),
      ...(k.any_errors_fatal !== undefined ? { anyErrorsFatal: k.any_errors_fatal as boolean } : {}),
    };
  }

  node(src: Source, raw: unknown, tp: Path, inh: Inherited, key: number[]): Node | undefined {
    const { issues } = this;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
      issues.add(src.at(tp), 'each task must be a mapping (name:, a module, ...)');
      return undefined;
    }
    const rt = raw as Record<string, unknown>;
    if ('block' in rt) return this.block(src, rt, tp, inh, key);
    for (const kw of ['import_tasks', 'include_tasks', 'import_role', 'include_role'] as const)
      if (kw in rt) return this.include(src, rt, tp, inh, key, kw);
    return this.task(src, rt, tp, inh, key);
  }

  block(src: Source, rt: Record<string, unknown>, tp: Path, inh: Inherited, key: number[]): Node | undefined {
    const kw: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(rt)) {
      if (BLOCK_KEYWORDS.has(k)) kw[k] = v;
      else if (TASK_KEYWORDS.has(k) || UNSUPPORTED_TASK_KEYWORDS.has(k))
        this.issues.add(src.at([...tp, k]), `"${k}" is not a block keyword (put it on the block's tasks)`);
      else this.issues.add(src.at([...tp, k]), `a block holds only block/rescue/always and block keywords, not "${k}"`);
    }
    const b = this.inherit(src, kw, tp, inh);
    const list = (name: 'block' | 'rescue' | 'always', n: number): Node[] => {
      const v = rt[name];
      if (v === undefined || v === null) return [];
      if (!Array.isArray(v)) {
        this.issues.add(src.at([...tp, name]), `${name} must be a list of tasks`);
        return [];
      }
      return v.flatMap((raw, i) => {
        const node = this.node(src, raw, [...tp, name, i], b, [...key, n, i]);
        return node ? [node] : [];
      });
    };
    return {
      kind: 'block',
      key,
      ...(typeof kw.name === 'string' ? { name: kw.name } : {}),
      block: list('block', 0),
      rescue: list('rescue', 1),
      always: list('always', 2),
      at: src.at(tp),
    };
  }

  include(
    src: Source,
    rt: Record<string, unknown>,
    tp: Path,
    inh: Inherited,
    key: number[],
    kind: 'import_tasks' | 'include_tasks' | 'import_role' | 'include_role',
  ): Node | undefined {
    const { issues } = this;
    const kwRaw: Record<string, unknown> = {};
    const lines: Record<string, number> = {};
    for (const [k, v] of Object.entries(rt)) {
      lines[k] = src.doc.lineOf([...tp, k]);
      if (k === kind) continue;
      if (
        k in inheritableKeywords ||
        (kind.startsWith('include') && (LOOP_KEYWORDS as readonly string[]).includes(k)) ||
        k === 'loop_control' ||
        k === 'args'
      )
        kwRaw[k] = v;
      else issues.add(src.at([...tp, k]), `"${k}" is not supported on ${kind}`);
    }
    let spec = rt[kind];
    if (kwRaw.args && typeof kwRaw.args === 'object')
      spec = { ...(kwRaw.args as object), ...(typeof spec === 'object' ? spec : { file: spec }) };
    let target: unknown;
    let opts: Record<string, unknown> = {};
    if (typeof spec === 'string') target = spec;
    else if (spec && typeof spec === 'object' && !Array.isArray(spec)) {
      opts = { ...(spec as Record<string, unknown>) };
      target = kind.endsWith('role') ? opts.name : (opts.file ?? opts._raw_params);
      const allowed = kind.endsWith('role')
        ? [
            'name',
            'tasks_from',
            'vars_from',
            'defaults_from',
            'handlers_from',
            'apply',
            'public',
            'allow_duplicates',
            'rolespec_validate',
          ]
        : ['file', '_raw_params', 'apply'];
      for (const k of Object.keys(opts))
        if (!allowed.includes(k)) issues.add(src.at([...tp, kind, k]), `${kind}: unsupported option "${k}"`);
    }
    const at = src.at([...tp, kind]);
    if (typeof target !== 'string' || target === '') {
      issues.add(at, `${kind} needs a ${kind.endsWith('role') ? 'role name' : 'file name'}`);
      return undefined;
    }
    const isImport = kind.startsWith('import');
    if (isImport && isTemplate(target) && /\{\{/.test(target)) {
      // Ansible resolves imports before the run: only extra vars and play vars can be used; Dyce takes none.
      issues.add(
        at,
        `${kind}: the name must be known before the run (use include_${kind.slice(7)} for a templated name)`,
      );
      return undefined;
    }
    const { when, tags, vars, ...handed } = kwRaw;
    const inherited = isImport
      ? this.inherit(src, kwRaw, tp, inh)
      : this.inherit(src, { ...handed, ...(vars !== undefined ? { vars } : {}) }, tp, inh);
    const apply = opts.apply;
    const withApply =
      apply && typeof apply === 'object'
        ? this.inherit(src, apply as Record<string, unknown>, [...tp, kind, 'apply'], inherited)
        : inherited;
    // The loop of an include names a variable its tasks use.
    const lc = (kwRaw.loop_control ?? {}) as { loop_var?: string };
    const loopVar = typeof lc.loop_var === 'string' ? lc.loop_var : 'item';
    const loopKey = LOOP_KEYWORDS.find((k) => kwRaw[k] !== undefined);
    const inner: Inherited = loopKey ? { ...withApply, loopVars: [...withApply.loopVars, loopVar] } : withApply;
    const roleOpts = {
      ...(typeof opts.tasks_from === 'string' ? { tasksFrom: opts.tasks_from } : {}),
      ...(typeof opts.vars_from === 'string' ? { varsFrom: opts.vars_from } : {}),
      ...(typeof opts.defaults_from === 'string' ? { defaultsFrom: opts.defaults_from } : {}),
      ...(typeof opts.handlers_from === 'string' ? { handlersFrom: opts.handlers_from } : {}),
    };
    let tasks: Node[] | undefined;
    if (!isTemplate(target)) {
      if (kind.endsWith('role')) tasks = this.role(src, target, [...tp, kind], inner, {}, key, roleOpts);
      else tasks = this.taskFile(this.resolveFile(target, src, inh, 'tasks'), inner, key, at);
    }
    if (isImport)
      return { kind: 'block', key, name: `${kind} ${target}`, block: tasks ?? [], rescue: [], always: [], at };
    const k = this.inherit(
      src,
      { ...(when !== undefined ? { when } : {}), ...(tags !== undefined ? { tags } : {}) },
      tp,
      NO_INHERIT,
    );
    let loop: TaskLoop | undefined;
    if (loopKey) loop = this.loop(src, loopKey, kwRaw[loopKey], [...tp, loopKey]);
    return {
      kind: 'include',
      key,
      ...(typeof rt.name === 'string' ? { name: rt.name } : {}),
      what: kind.endsWith('role') ? 'role' : 'tasks',
      target,
      ...(tasks ? { tasks } : {}),
      inherited: inner,
      ...(kind.endsWith('role') ? { roleOptions: roleOpts } : {}),
      when: [...inh.when, ...k.when],
      tags: [...new Set([...inh.tags, ...k.tags])],
      vars: inherited.vars,
      ...(loop ? { loop } : {}),
      loopVar,
      at: src.at(tp),
      lines,
    };
  }

  loop(src: Source, key: string, raw: unknown, path: Path): TaskLoop | undefined {
    if (key === 'with_sequence') {
      const spec = String(raw);
      this.checkTemplates(src, spec, path, 'with_sequence');
      if (!/\{\{/.test(spec)) {
        const s = parseSequence(spec);
        if ('error' in s) this.issues.add(src.at(path), s.error);
      }
      return { kind: 'sequence', spec, at: src.at(path) };
    }
    let items = raw;
    // with_items flattens one level, as Ansible does.
    if (key === 'with_items' && Array.isArray(items)) items = items.flatMap((x) => (Array.isArray(x) ? x : [x]));
    this.checkTemplates(src, items, path, key);
    if (key === 'with_dict') {
      if (typeof items !== 'string' && (typeof items !== 'object' || items === null || Array.isArray(items)))
        this.issues.add(src.at(path), 'with_dict must be a mapping or a template that gives one');
      return { kind: 'dict', items, at: src.at(path) };
    }
    if (typeof items !== 'string' && !Array.isArray(items))
      this.issues.add(src.at(path), `${key} must be a list or a template that gives one`);
    return { kind: 'loop', items, at: src.at(path) };
  }

  task(src: Source, rt0: Record<string, unknown>, tp: Path, inh: Inherited, key: number[]): Task | undefined {
    const { issues, modules } = this;
    let rt = rt0;
    // `action: module args` and `local_action: module args` name the module as a value.
    for (const form of ['action', 'local_action'] as const) {
      if (!(form in rt)) continue;
      const { [form]: spec, ...others } = rt;
      let mod: string | undefined;
      let args: unknown;
      if (typeof spec === 'string') {
        const m = /^\s*(\S+)\s*([\s\S]*)$/.exec(spec);
        mod = m?.[1];
        args = m?.[2] ?? '';
      } else if (spec && typeof spec === 'object' && !Array.isArray(spec)) {
        const { module, ...a } = spec as Record<string, unknown>;
        mod = typeof module === 'string' ? module : undefined;
        args = a;
      }
      if (!mod) {
        issues.add(src.at([...tp, form]), `${form} needs a module name`);
        return undefined;
      }
      rt = { ...others, [mod]: args, ...(form === 'local_action' ? { delegate_to: 'localhost' } : {}) };
    }
    const k: Record<string, unknown> = {};
    const lines: Record<string, number> = {};
    const moduleKeys: string[] = [];
    for (const [kw, v] of Object.entries(rt)) {
      lines[kw] = src.doc.lineOf([...tp, kw]);
      if (kw === 'action' || kw === 'local_action') lines[kw] = src.doc.lineOf([...tp, kw]);
      if (TASK_KEYWORDS.has(kw)) {
        const r = (taskKeywords as Record<string, z.ZodType>)[kw]!.safeParse(v);
        if (r.success) k[kw] = r.data;
        else
          for (const i of r.error.issues) issues.add(src.at([...tp, kw, ...(i.path as Path)]), `${kw}: ${i.message}`);
      } else if (UNSUPPORTED_TASK_KEYWORDS.has(kw))
        issues.add(src.at([...tp, kw]), `task keyword "${kw}" is not supported by Dyce`);
      else if (kw === 'rescue' || kw === 'always')
        issues.add(src.at([...tp, kw]), `"${kw}" belongs to a block: this task has no block:`);
      else if (kw.startsWith('with_'))
        issues.add(
          src.at([...tp, kw]),
          `loop "${kw}" is not supported (use loop:, with_items:, with_list:, with_dict: or with_sequence:)`,
        );
      else moduleKeys.push(kw);
    }
    const at = src.at(tp);
    if (moduleKeys.length === 0) {
      issues.add(
        at,
        `no module in this task (expected one of: ${[...new Set([...modules.values()].map((m) => m.name))].join(', ')})`,
      );
      return undefined;
    }
    if (moduleKeys.length > 1) {
      const unknown = moduleKeys.filter((m) => !modules.has(m));
      for (const m of unknown.length ? unknown : moduleKeys.slice(1))
        issues.add(
          src.at([...tp, m]),
          modules.has(m) ? `more than one module in a task ("${moduleKeys.join('", "')}")` : unknownModule(m, modules),
        );
      return undefined;
    }
    const moduleName = moduleKeys[0]!;
    const def = modules.get(moduleName);
    const mp = [...tp, moduleName];
    if (!def) {
      issues.add(src.at(mp), unknownModule(moduleName, modules));
      return undefined;
    }
    const args = this.moduleArgs(src, def, rt[moduleName], k.args as Record<string, unknown> | undefined, mp);
    if (!args) return undefined;
    this.checkTemplates(src, args, mp, def.name);
    const loopKinds = LOOP_KEYWORDS.filter((x) => rt[x] !== undefined);
    if (loopKinds.length > 1) issues.add(at, `only one of ${loopKinds.join(', ')} per task`);
    const loop = loopKinds[0] ? this.loop(src, loopKinds[0], rt[loopKinds[0]], [...tp, loopKinds[0]]) : undefined;
    const lc = k.loop_control as { loop_var?: string; label?: string; index_var?: string } | undefined;
    if (lc && !loop) issues.add(src.at([...tp, 'loop_control']), 'loop_control without a loop');
    for (const kw of ['when', 'changed_when', 'failed_when', 'until'] as const)
      if (k[kw]) this.checkConditions(src, k[kw] as unknown[], [...tp, kw], kw);
    for (const kw of [
      'name',
      'ignore_errors',
      'no_log',
      'environment',
      'vars',
      'retries',
      'delay',
      'delegate_to',
      'notify',
    ] as const)
      if (rt[kw] !== undefined) this.checkTemplates(src, rt[kw], [...tp, kw], kw);
    if (lc?.label) this.checkTemplates(src, lc.label, [...tp, 'loop_control', 'label'], 'loop_control.label');
    const own = this.inherit(src, {}, tp, inh);
    const delegate = (k.connection === 'local' ? 'localhost' : (k.delegate_to as string | undefined)) ?? own.delegateTo;
    return {
      kind: 'task',
      key,
      ...(k.name !== undefined ? { name: k.name as string } : {}),
      module: def.name,
      args,
      at,
      ...(loop ? { loop } : {}),
      loopVar: lc?.loop_var ?? 'item',
      ...(lc?.label ? { loopLabel: lc.label } : {}),
      ...(lc?.index_var ? { indexVar: lc.index_var } : {}),
      when: [...own.when, ...((k.when as unknown[]) ?? [])],
      ...(k.register ? { register: k.register as string } : {}),
      ...(k.changed_when ? { changedWhen: k.changed_when as unknown[] } : {}),
      ...(k.failed_when ? { failedWhen: k.failed_when as unknown[] } : {}),
      ignoreErrors: k.ignore_errors ?? own.ignoreErrors ?? false,
      noLog: k.no_log ?? own.noLog ?? false,
      tags: [...new Set([...own.tags, ...((k.tags as string[]) ?? [])])],
      ...(k.environment || own.environment
        ? { environment: { ...own.environment, ...((k.environment as Record<string, unknown>) ?? {}) } }
        : {}),
      ...((k.become ?? own.become) !== undefined ? { become: (k.become ?? own.become) as boolean } : {}),
      vars: { ...own.vars, ...((k.vars as Record<string, unknown>) ?? {}) },
      notify: (k.notify as string[]) ?? [],
      listen: (k.listen as string[]) ?? [],
      ...(k.until ? { until: k.until as unknown[] } : {}),
      ...(k.retries !== undefined ? { retries: k.retries } : {}),
      ...(k.delay !== undefined ? { delay: k.delay } : {}),
      ...((k.check_mode ?? own.checkMode) !== undefined ? { checkMode: k.check_mode ?? own.checkMode } : {}),
      ...((k.diff ?? own.diff) !== undefined ? { diff: k.diff ?? own.diff } : {}),
      ...(delegate !== undefined ? { delegateTo: delegate } : {}),
      ...((k.run_once ?? own.runOnce) !== undefined ? { runOnce: k.run_once ?? own.runOnce } : {}),
      ...((k.any_errors_fatal ?? own.anyErrorsFatal) !== undefined
        ? { anyErrorsFatal: (k.any_errors_fatal ?? own.anyErrorsFatal) as boolean }
        : {}),
      ...(own.role ? { role: own.role } : {}),
      loopVars: own.loopVars,
      lines,
      argLines: Object.fromEntries(Object.keys(args).map((a) => [a, src.doc.lineOf([...mp, a])])),
    };
  }

  moduleArgs(
    src: Source,
    def: ModuleDef,
    value: unknown,
    extraArgs: Record<string, unknown> | undefined,
    mp: Path,
  ): Record<string, unknown> | undefined {
    const { issues } = this;
    let args: Record<string, unknown>;
    if (value === null || value === undefined) args = {};
    else if (typeof value === 'string') {
      const split = splitFreeForm(value);
      if ('error' in split) {
        issues.add(src.at(mp), `${def.name}: ${split.error}`);
        return undefined;
      }
      args = split.args;
      // set_fact k=v reads true/false/yes/no as booleans (Ansible's set_fact does, for this form only).
      if (def.name === 'set_fact')
        for (const [k, v] of Object.entries(args))
          if (/^(true|false|yes|no)$/i.test(String(v))) args[k] = /^(true|yes)$/i.test(String(v));
      if (split.raw.length > 0) {
        if (def.freeForm) args[def.freeForm] = split.raw.join(' ');
        else {
          issues.add(
            src.at(mp),
            `${def.name}: free-form text ${JSON.stringify(split.raw.join(' '))} is not supported; write key=value`,
          );
          return undefined;
        }
      }
    } else if (typeof value === 'object' && !Array.isArray(value)) args = { ...(value as Record<string, unknown>) };
    else {
      issues.add(src.at(mp), `${def.name}: arguments must be a mapping or key=value text`);
      return undefined;
    }
    if (extraArgs) args = { ...extraArgs, ...args };
    if (def.params !== 'any') {
      const known = new Set(def.params);
      for (const key of Object.keys(args))
        if (!known.has(key))
          issues.add(
            src.at([...mp, key]),
            `${def.name}: unsupported parameter "${key}" (supported: ${def.params.join(', ')})`,
          );
    }
    this.checkLiterals(src, def, args, mp);
    if (def.checkArgs)
      for (const p of def.checkArgs(args)) issues.add(src.at([...mp, ...p.path]), `${def.name}: ${p.message}`);
    return args;
  }

  /**
   * Every argument that holds no template is checked now, with the module's own schema (Ansible's coercion), and
   * named as the playbook wrote it, at the line of its key.
   */
  checkLiterals(src: Source, def: ModuleDef, args: Record<string, unknown>, mp: Path): void {
    const shape = (def.schema as unknown as { shape?: Record<string, z.ZodType> }).shape;
    if (!shape) return;
    for (const [key, value] of Object.entries(args)) {
      if (holdsTemplate(value)) continue;
      const field = shape[def.aliases?.[key] ?? key];
      if (!field) continue;
      const r = field.safeParse(value);
      if (!r.success)
        for (const i of r.error.issues.slice(0, 1)) {
          const path = [key, ...(i.path as Path)];
          this.issues.add(src.at([...mp, ...path]), `${def.name}: ${path.join('.')}: ${i.message}`);
        }
    }
  }

  // -- templates --------------------------------------------------------------------------------------------------

  checkTemplates(src: Source, value: unknown, path: Path, what: string): void {
    if (typeof value === 'string') {
      if (!/\{\{|\{%|\{#/.test(value)) return;
      checkTemplate(this.templar, value, src.at(path), what, this.issues);
    } else if (Array.isArray(value)) {
      for (const [i, v] of value.entries()) this.checkTemplates(src, v, [...path, i], what);
    } else if (value && typeof value === 'object')
      for (const [k, v] of Object.entries(value)) {
        this.checkTemplates(src, k, [...path, k], what);
        this.checkTemplates(src, v, [...path, k], what);
      }
  }

  checkConditions(src: Source, conds: unknown[], path: Path, keyword: string): void {
    for (const c of conds) {
      if (typeof c !== 'string') continue;
      if (/\{\{|\{%/.test(c) && !/^\s*\{\{[\s\S]*\}\}\s*$/.test(c)) {
        this.issues.add(src.at(path), `${keyword} is a bare expression; write it without {{ }} (${JSON.stringify(c)})`);
        continue;
      }
      const text = /^\s*\{\{([\s\S]*)\}\}\s*$/.exec(c)?.[1] ?? c;
      try {
        checkNames(this.templar.analyse(`{{ ${text} }}`), src.at(path), this.issues);
      } catch (error) {
        this.issues.add(
          src.at(path),
          `${keyword} is not an expression: ${JSON.stringify(c)}: ${(error as Error).message}`,
        );
      }
    }
  }
}

/** Pure but for the files it refers to: playbook text -> Playbook. Throws InputError naming file:line for every problem. */
export function parsePlaybook(text: string, file: string, read: FileReader = defaultReader): Playbook {
  const parser = new PlaybookParser(file, read);
  const src = parser.source(file, text);
  const plays: Play[] = [];
  if (src) parser.plays(src, plays, [resolve(file)]);
  if (parser.issues.list.length > 0) throw new InputError(parser.issues.list, `invalid playbook ${file}`);
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

const LOOKUPS = new Set(SUPPORTED_LOOKUPS);

function checkNames(a: { filters: string[]; tests: string[]; lookups: string[] }, at: SourcePos, issues: Issues): void {
  for (const l of a.lookups)
    if (!LOOKUPS.has(l))
      issues.add(at, `lookup plugin "${l}" is not supported (supported: ${SUPPORTED_LOOKUPS.join(', ')})`);
  for (const f of a.filters)
    if (!FILTERS.has(f)) issues.add(at, `unknown filter "${f}" (supported: ${SUPPORTED_FILTERS.join(', ')})`);
  for (const t of a.tests)
    if (!TESTS.has(t)) issues.add(at, `unknown test "${t}" (supported: ${SUPPORTED_TESTS.join(', ')})`);
}

/** Reads and parses a playbook file. */
export async function readPlaybook(path: string, read: FileReader = defaultReader): Promise<Playbook> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UserError(`cannot read playbook ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`, {
      cause: error,
    });
  }
  return parsePlaybook(text, path, read);
}
