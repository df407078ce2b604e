import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { InputError, UserError } from '../util/errors.js';
import { readIniInventory, shellSplit } from './inventory-ini.js';
import type { RawInventory, RawVar, SourcePos } from './inventory-raw.js';
import { readYamlInventory } from './inventory-yaml.js';

/**
 * Ansible inventories (INI and YAML) resolved into hosts with their connection settings.
 *
 *   parseInventory(text, { source })  pure: text -> Inventory (throws InputError naming file:line)
 *   readInventory(path)                reads a file, then parseInventory
 *   selectHosts(inventory, pattern)    Ansible host patterns: all, groups, a:b, a:&b, a:!b, web*, ~regex, g[0:2]
 *
 * Variables merge with Ansible's precedence: `all` < parent group < child group < host
 * (groups of equal depth by ansible_group_priority, then name). Connection variables are validated with zod,
 * and a bad value is reported at the line that set it.
 */

export const jumpHostSchema = z.object({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  user: z.string().min(1).optional(),
});
export type JumpHost = z.infer<typeof jumpHostSchema>;

export const hostSchema = z.object({
  /** The inventory name (inventory_hostname). */
  name: z.string().min(1),
  /** Where to connect: ansible_host, else the name. */
  address: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  /** ansible_user; undefined when the inventory does not say (the caller picks a default). */
  user: z.string().min(1).optional(),
  /** ansible_ssh_private_key_file, as written (the caller resolves it). */
  privateKeyFile: z.string().min(1).optional(),
  /** ansible_become: run privileged commands through `sudo -n`. */
  become: z.boolean(),
  becomeUser: z.string().min(1),
  /** `ssh` (also for Ansible's smart/paramiko) or `local` (run on this machine). */
  connection: z.enum(['ssh', 'local']),
  /** From `-o ProxyJump=user@host:port` or `-J ...` in ansible_ssh_common_args / ansible_ssh_extra_args. */
  jump: jumpHostSchema.optional(),
  /** dyce_state_dir: where Dyce keeps locks, env files and keys on this host. */
  stateDir: z.string().startsWith('/').optional(),
  /** dyce_port_base: added to every host port on this host (0 by default), so that hosts sharing one machine never collide. */
  portBase: z.number().int().min(0).max(64511).optional(),
  /** Every group the host belongs to, ancestors included, `all` first; sorted as Ansible merges them. */
  groups: z.array(z.string()),
  /** All variables after merging (connection variables included, as written). */
  vars: z.record(z.string(), z.unknown()),
  /** Where the host was first defined. */
  source: z.object({ file: z.string(), line: z.number().int() }),
});
export type Host = z.infer<typeof hostSchema>;

export interface InventoryGroup {
  name: string;
  children: string[];
  parents: string[];
  /** Hosts of this group and its descendants, in inventory order. */
  hosts: string[];
  vars: Record<string, unknown>;
}

export interface Inventory {
  hosts: Host[];
  groups: Record<string, InventoryGroup>;
  /** Things accepted but not acted on (e.g. ssh options Dyce does not use), each `file:line: message`. */
  warnings: string[];
}

export type InventoryFormat = 'ini' | 'yaml';

export interface ParseInventoryOptions {
  /** The name used in messages: a file path, or the input name (`hosts`). */
  source: string;
  /** Default: by extension (.yml/.yaml/.json are YAML), else by content (a first line like `all:` is YAML). */
  format?: InventoryFormat;
}

export function detectInventoryFormat(text: string, source: string): InventoryFormat {
  if (/\.(ya?ml|json)$/i.test(source)) return 'yaml';
  if (/\.(ini|cfg)$/i.test(source)) return 'ini';
  const first = text.split(/\r?\n/).find((l) => l.trim() !== '' && !/^\s*[#;]/.test(l));
  if (first === undefined) return 'ini';
  // An INI line is `[section]` or `host key=value`; `name:` alone on a line (or `{`) only makes sense in YAML.
  return /^[A-Za-z_][\w]*:\s*(#.*)?$/.test(first.trim()) || /^---\s*$/.test(first.trim()) || first.trim() === '{'
    ? 'yaml'
    : 'ini';
}

/** Pure: inventory text -> resolved Inventory. Throws InputError listing every issue as `source:line: message`. */
export function parseInventory(text: string, opts: ParseInventoryOptions): Inventory {
  const format = opts.format ?? detectInventoryFormat(text, opts.source);
  const raw = format === 'yaml' ? readYamlInventory(text, opts.source) : readIniInventory(text, opts.source);
  return resolveInventory(raw, opts.source);
}

/** Reads an INI or YAML inventory file. */
export async function readInventory(path: string, opts: { format?: InventoryFormat } = {}): Promise<Inventory> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UserError(`cannot read inventory ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`, {
      cause: error,
    });
  }
  return parseInventory(text, { source: path, ...(opts.format ? { format: opts.format } : {}) });
}

/** Resolves groups (parents, depth, cycles) and merges variables into typed hosts. */
export function resolveInventory(raw: RawInventory, source: string): Inventory {
  const issues = [...raw.issues];
  const at0: SourcePos = { file: source, line: 1 };
  const all = raw.group('all', at0);
  const ungrouped = raw.group('ungrouped', at0);

  // Every group except `all` hangs under something; top-level groups hang under `all`.
  const parents = new Map<string, string[]>();
  for (const g of raw.groups.values()) {
    for (const c of g.children) {
      if (c === 'all') {
        issues.push(`${g.at.file}:${g.at.line}: group "all" cannot be a child of "${g.name}"`);
        continue;
      }
      const list = parents.get(c) ?? [];
      if (!list.includes(g.name)) list.push(g.name);
      parents.set(c, list);
    }
  }
  // `ungrouped` is always the first child of `all` (Ansible creates it first), then top-level groups in file order.
  if (!parents.get('ungrouped')?.length) {
    const at = all.children.indexOf('ungrouped');
    if (at >= 0) all.children.splice(at, 1);
    all.children.unshift('ungrouped');
    parents.set('ungrouped', ['all']);
  }
  for (const g of raw.groups.values()) {
    if (g.name !== 'all' && !(parents.get(g.name)?.length ?? 0)) {
      raw.addChild(all, g.name);
      parents.set(g.name, ['all']);
    }
  }

  // Depth = longest path from `all`; a cycle is an error (Ansible: "recursive dependency loop").
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const cyclic = new Set<string>();
  const depthOf = (name: string): number => {
    const known = depth.get(name);
    if (known !== undefined) return known;
    if (name === 'all') return 0;
    if (visiting.has(name)) {
      if (!cyclic.has(name)) {
        cyclic.add(name);
        const g = raw.groups.get(name)!;
        issues.push(`${g.at.file}:${g.at.line}: group "${name}" is its own ancestor (a loop in :children)`);
      }
      return 0;
    }
    visiting.add(name);
    const d = Math.max(0, ...(parents.get(name) ?? []).map(depthOf)) + 1;
    visiting.delete(name);
    depth.set(name, d);
    return d;
  };
  for (const name of raw.groups.keys()) depthOf(name);
  depth.set('all', 0);

  const ancestors = (name: string, acc = new Set<string>()): Set<string> => {
    if (acc.has(name)) return acc;
    acc.add(name);
    for (const p of parents.get(name) ?? []) ancestors(p, acc);
    return acc;
  };

  const priority = (name: string): number => {
    const v = raw.groups.get(name)?.vars.get('ansible_group_priority')?.value;
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : 1;
    return n;
  };
  const groupOrder = (a: string, b: string): number =>
    depth.get(a)! - depth.get(b)! || priority(a) - priority(b) || (a < b ? -1 : a > b ? 1 : 0);

  // Direct memberships. A host listed in any real group leaves `ungrouped` (as Ansible reconciles).
  const direct = new Map<string, Set<string>>();
  for (const g of raw.groups.values()) {
    for (const h of g.hosts) {
      const s = direct.get(h) ?? new Set<string>();
      s.add(g.name);
      direct.set(h, s);
    }
  }
  for (const h of raw.hosts.keys()) {
    const s = direct.get(h) ?? new Set<string>();
    // As Ansible reconciles: a host in no real group (at most `all` itself) is in `ungrouped`, and only then.
    const real = [...s].filter((g) => g !== 'all' && g !== 'ungrouped');
    if (real.length > 0) s.delete('ungrouped');
    else s.add('ungrouped');
    direct.set(h, s);
  }
  ungrouped.hosts.splice(
    0,
    ungrouped.hosts.length,
    ...[...raw.hosts.keys()].filter((h) => direct.get(h)!.has('ungrouped')),
  );

  const hosts: Host[] = [];
  const hostGroups = new Map<string, string[]>();
  for (const rh of raw.hosts.values()) {
    const groupSet = new Set<string>();
    for (const g of direct.get(rh.name)!) for (const a of ancestors(g)) groupSet.add(a);
    const groups = [...groupSet].sort(groupOrder);
    hostGroups.set(rh.name, groups);
    const merged = new Map<string, RawVar>();
    for (const g of groups) for (const [k, v] of raw.groups.get(g)!.vars) merged.set(k, v);
    for (const [k, v] of rh.vars) merged.set(k, v);
    // Ansible consumes this one as the group's priority; it is not a host variable.
    merged.delete('ansible_group_priority');
    const built = buildHost(rh.name, rh.at, groups, merged, raw.warnings);
    if ('issues' in built) issues.push(...built.issues);
    else hosts.push(built.host);
  }
  if (issues.length > 0) throw new InputError(sortByLine(issues), `invalid inventory ${source}`);

  const valid = new Set(hosts.map((h) => h.name));
  const groups: Record<string, InventoryGroup> = {};
  for (const g of raw.groups.values()) {
    groups[g.name] = {
      name: g.name,
      children: [...g.children],
      parents: [...(parents.get(g.name) ?? [])],
      hosts: groupHosts(raw, g.name).filter((h) => valid.has(h)),
      vars: Object.fromEntries([...g.vars].map(([k, v]) => [k, v.value])),
    };
  }
  return { hosts, groups, warnings: [...raw.warnings] };
}

/**
 * A group's hosts in Ansible's order: the group's own hosts, then its descendants level by level (breadth
 * first), each group's hosts in the order they were listed; a host appears once. This is the order plays and
 * `serial` batches see.
 */
function groupHosts(raw: RawInventory, name: string): string[] {
  const out: string[] = [];
  const seenHosts = new Set<string>();
  const seenGroups = new Set<string>([name]);
  let level = [name];
  while (level.length > 0) {
    const next: string[] = [];
    for (const g of level) {
      for (const h of raw.groups.get(g)?.hosts ?? []) {
        if (!seenHosts.has(h)) {
          seenHosts.add(h);
          out.push(h);
        }
      }
      for (const c of raw.groups.get(g)?.children ?? []) {
        if (!seenGroups.has(c)) {
          seenGroups.add(c);
          next.push(c);
        }
      }
    }
    level = next;
  }
  return out;
}

/** `file:line: message` strings in file order, then line order (a stable sort keeps same-line issues together). */
function sortByLine(issues: string[]): string[] {
  const key = (s: string) => /^(.*?):(\d+):/.exec(s);
  return [...issues].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    if (!ka || !kb || ka[1] !== kb[1]) return 0;
    return Number(ka[2]) - Number(kb[2]);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Connection variables

const ANSIBLE_TRUE = new Set(['y', 'yes', 'on', '1', 'true', 't']);
const ANSIBLE_FALSE = new Set(['n', 'no', 'off', '0', 'false', 'f']);

const ansibleBool = z.unknown().transform((v, ctx) => {
  if (typeof v === 'boolean') return v;
  const s = String(v).trim().toLowerCase();
  if (ANSIBLE_TRUE.has(s)) return true;
  if (ANSIBLE_FALSE.has(s)) return false;
  ctx.addIssue({ code: 'custom', message: `must be a boolean (true/false, yes/no), got ${JSON.stringify(v)}` });
  return false;
});

const wholeNumber = (min: number, max: number) =>
  z.unknown().transform((v, ctx) => {
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      ctx.addIssue({
        code: 'custom',
        message: `must be a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`,
      });
      return min;
    }
    return n;
  });

const text = (what: string) =>
  z.unknown().transform((v, ctx) => {
    if (typeof v !== 'string' && typeof v !== 'number') {
      ctx.addIssue({ code: 'custom', message: `must be ${what}, got ${JSON.stringify(v)}` });
      return '';
    }
    const s = String(v).trim();
    if (s === '') ctx.addIssue({ code: 'custom', message: `must be ${what}, got an empty value` });
    else if (s.includes('{{') || s.includes('{%'))
      ctx.addIssue({
        code: 'custom',
        message: `templated connection variables are not supported, got ${JSON.stringify(s)}`,
      });
    else if (/\s/.test(s) && what !== 'ssh arguments')
      ctx.addIssue({ code: 'custom', message: `must be ${what} without spaces, got ${JSON.stringify(s)}` });
    return s;
  });

/** The variables Dyce acts on, each with its alias; the first name listed wins when both are set. */
const CONNECTION_VARS = {
  address: ['ansible_host', 'ansible_ssh_host'],
  port: ['ansible_port', 'ansible_ssh_port'],
  user: ['ansible_user', 'ansible_ssh_user'],
  privateKeyFile: ['ansible_ssh_private_key_file', 'ansible_private_key_file'],
  become: ['ansible_become'],
  becomeUser: ['ansible_become_user'],
  becomeMethod: ['ansible_become_method'],
  connection: ['ansible_connection'],
  commonArgs: ['ansible_ssh_common_args'],
  extraArgs: ['ansible_ssh_extra_args'],
  stateDir: ['dyce_state_dir'],
  portBase: ['dyce_port_base'],
} as const;

const connectionVarsSchema = z.object({
  address: text('a host name or address').optional(),
  port: wholeNumber(1, 65535).optional(),
  user: text('a user name').optional(),
  privateKeyFile: text('a file path').optional(),
  become: ansibleBool.optional(),
  becomeUser: text('a user name').optional(),
  becomeMethod: z
    .unknown()
    .refine((v) => v === 'sudo', { message: 'only "sudo" is supported' })
    .optional(),
  connection: z
    .unknown()
    .transform((v, ctx) => {
      if (v === 'ssh' || v === 'smart' || v === 'paramiko') return 'ssh' as const;
      if (v === 'local') return 'local' as const;
      ctx.addIssue({ code: 'custom', message: `must be ssh or local, got ${JSON.stringify(v)}` });
      return 'ssh' as const;
    })
    .optional(),
  commonArgs: text('ssh arguments').optional(),
  extraArgs: text('ssh arguments').optional(),
  stateDir: text('an absolute path')
    .refine((s) => s.startsWith('/'), { message: 'must be an absolute path' })
    .refine((s) => !s.split('/').includes('..'), { message: 'must not contain ".."' })
    .optional(),
  portBase: wholeNumber(0, 64511).optional(),
});

function buildHost(
  name: string,
  at: SourcePos,
  groups: string[],
  vars: Map<string, RawVar>,
  warnings: string[],
): { host: Host } | { issues: string[] } {
  const picked: Record<string, unknown> = {};
  const origin: Record<string, { varName: string; at: SourcePos }> = {};
  for (const [field, names] of Object.entries(CONNECTION_VARS)) {
    for (const n of names) {
      const v = vars.get(n);
      if (v !== undefined && v.value !== null) {
        picked[field] = v.value;
        origin[field] = { varName: n, at: v.at };
        break;
      }
    }
  }
  const issues: string[] = [];
  const where = (field: string): string => {
    const o = origin[field];
    return o ? `${o.at.file}:${o.at.line}: host "${name}": ${o.varName}` : `${at.file}:${at.line}: host "${name}"`;
  };
  const parsed = connectionVarsSchema.safeParse(picked);
  if (!parsed.success) {
    for (const i of parsed.error.issues) issues.push(`${where(String(i.path[0]))}: ${i.message}`);
    return { issues };
  }
  const c = parsed.data;
  let jump: JumpHost | undefined;
  for (const field of ['commonArgs', 'extraArgs'] as const) {
    const args = c[field];
    if (!args) continue;
    const r = parseSshArgs(args);
    for (const w of r.ignored)
      warnings.push(`${where(field)}: ignoring ssh option ${JSON.stringify(w)} (Dyce does not use it)`);
    if (r.error) issues.push(`${where(field)}: ${r.error}`);
    if (r.jump) jump = r.jump;
  }
  if (issues.length > 0) return { issues };

  const host: Host = {
    name,
    address: c.address ?? name,
    port: c.port ?? 22,
    become: c.become ?? false,
    becomeUser: c.becomeUser ?? 'root',
    connection: c.connection ?? 'ssh',
    groups,
    vars: Object.fromEntries([...vars].map(([k, v]) => [k, v.value])),
    source: at,
    ...(c.user === undefined ? {} : { user: c.user }),
    ...(c.privateKeyFile === undefined ? {} : { privateKeyFile: c.privateKeyFile }),
    ...(jump === undefined ? {} : { jump }),
    ...(c.stateDir === undefined ? {} : { stateDir: c.stateDir }),
    ...(c.portBase === undefined ? {} : { portBase: c.portBase }),
  };
  // The model is checked once more as a whole, so that what deploy receives is exactly the documented type.
  const checked = hostSchema.safeParse(host);
  if (!checked.success) {
    return {
      issues: checked.error.issues.map(
        (i) => `${at.file}:${at.line}: host "${name}": ${i.path.join('.')}: ${i.message}`,
      ),
    };
  }
  return { host: checked.data };
}

/**
 * Reads the ssh options Dyce understands from ansible_ssh_common_args: `-o ProxyJump=[user@]host[:port]` and
 * `-J [user@]host[:port]`. ProxyCommand and multi-hop jumps are refused; other options are reported as ignored.
 */
export function parseSshArgs(args: string): { jump?: JumpHost; ignored: string[]; error?: string } {
  const split = shellSplit(args);
  if ('error' in split) return { ignored: [], error: split.error };
  const words = split.words;
  const ignored: string[] = [];
  let jump: JumpHost | undefined;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    let jumpSpec: string | undefined;
    if (w === '-J' || w === '-o') {
      const next = words[++i];
      if (next === undefined) return { ignored, error: `"${w}" needs a value` };
      if (w === '-J') jumpSpec = next;
      else {
        const opt = parseSshOption(next);
        if (opt.key === 'proxyjump') jumpSpec = opt.value;
        else if (opt.key === 'proxycommand')
          return { ignored, error: 'ProxyCommand is not supported; use -o ProxyJump=user@host:port' };
        else ignored.push(`-o ${next}`);
      }
    } else if (w.startsWith('-J')) jumpSpec = w.slice(2);
    else if (w.startsWith('-o')) {
      const opt = parseSshOption(w.slice(2));
      if (opt.key === 'proxyjump') jumpSpec = opt.value;
      else if (opt.key === 'proxycommand')
        return { ignored, error: 'ProxyCommand is not supported; use -o ProxyJump=user@host:port' };
      else ignored.push(w);
    } else ignored.push(w);
    if (jumpSpec !== undefined) {
      if (jumpSpec.toLowerCase() === 'none') continue;
      const j = parseJumpSpec(jumpSpec);
      if ('error' in j) return { ignored, error: j.error };
      jump = j;
    }
  }
  return { ignored, ...(jump ? { jump } : {}) };
}

function parseSshOption(text: string): { key: string; value: string } {
  const m = /^([A-Za-z]+)\s*(?:=|\s)\s*(.*)$/.exec(text);
  return m ? { key: m[1]!.toLowerCase(), value: m[2]! } : { key: text.toLowerCase(), value: '' };
}

/** `[user@]host[:port]`, `ssh://[user@]host[:port]` or `user@[v6]:port`; one hop only. */
export function parseJumpSpec(spec: string): JumpHost | { error: string } {
  const s = spec.trim().replace(/^ssh:\/\//, '');
  if (s.includes(',')) return { error: `only one jump host is supported, got ${JSON.stringify(spec)}` };
  const m = /^(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s[\]]+)(?::(\d+))?$/.exec(s);
  if (!m) return { error: `bad jump host ${JSON.stringify(spec)} (expected [user@]host[:port])` };
  const port = m[3] === undefined ? 22 : Number(m[3]);
  if (port < 1 || port > 65535) return { error: `bad port in jump host ${JSON.stringify(spec)}` };
  return { host: m[2]!.replace(/^\[|\]$/g, ''), port, ...(m[1] ? { user: m[1] } : {}) };
}

// ---------------------------------------------------------------------------------------------------------------
// Host patterns

export interface HostSelection {
  hosts: Host[];
  /** Pattern terms that matched no host (Ansible warns about these; a caller may refuse). */
  unmatched: string[];
}

/**
 * Ansible host patterns: `all`/`*`, group or host names, globs (`web*`), `~regex`, subscripts (`web[0]`,
 * `web[0:2]` inclusive, `web[-1]`), unions `a:b` (or `a,b`), intersections `a:&b`, exclusions `a:!b`.
 * Unions are taken first, then intersections, then exclusions, whatever their order in the pattern.
 * `limit`, when given, is a second pattern the result is intersected with (Ansible's --limit).
 */
export function selectHosts(inventory: Inventory, pattern: string, limit?: string): HostSelection {
  const first = evaluatePattern(inventory, pattern);
  if (limit === undefined || limit.trim() === '') return first;
  const lim = evaluatePattern(inventory, limit);
  const keep = new Set(lim.hosts.map((h) => h.name));
  return { hosts: first.hosts.filter((h) => keep.has(h.name)), unmatched: [...first.unmatched, ...lim.unmatched] };
}

export function splitHostPattern(pattern: string): string[] {
  const p = pattern.trim();
  if (p.includes(','))
    return p
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
  const terms: string[] = [];
  let cur = '';
  let depth = 0;
  for (const c of p) {
    if (c === '[') depth++;
    if (c === ']') depth = Math.max(0, depth - 1);
    if (c === ':' && depth === 0) {
      terms.push(cur);
      cur = '';
    } else cur += c;
  }
  terms.push(cur);
  // A bare IPv6 address is one term even though it holds colons.
  if (terms.length > 2 && /^[0-9A-Fa-f:]+$/.test(p) && terms.every((t) => /^[0-9A-Fa-f]{0,4}$/.test(t))) return [p];
  return terms.map((s) => s.trim()).filter((s) => s !== '');
}

function evaluatePattern(inventory: Inventory, pattern: string): HostSelection {
  const terms = splitHostPattern(pattern);
  if (terms.length === 0) throw new UserError(`empty host pattern ${JSON.stringify(pattern)}`);
  const plain = terms.filter((t) => !t.startsWith('&') && !t.startsWith('!'));
  const and = terms.filter((t) => t.startsWith('&')).map((t) => t.slice(1));
  const not = terms.filter((t) => t.startsWith('!')).map((t) => t.slice(1));
  const unmatched: string[] = [];
  const byName = new Map(inventory.hosts.map((h) => [h.name, h]));
  const match = (term: string): Host[] => {
    const names = matchTerm(inventory, term);
    if (names.length === 0) unmatched.push(term);
    return names.map((n) => byName.get(n)!).filter(Boolean);
  };
  const result: Host[] = [];
  const seen = new Set<string>();
  // A pattern of only `&x` / `!x` terms starts from all hosts, as Ansible does.
  for (const t of plain.length ? plain : ['all']) {
    for (const h of match(t)) {
      if (!seen.has(h.name)) {
        seen.add(h.name);
        result.push(h);
      }
    }
  }
  let hosts = result;
  for (const t of and) {
    const keep = new Set(match(t).map((h) => h.name));
    hosts = hosts.filter((h) => keep.has(h.name));
  }
  for (const t of not) {
    const drop = new Set(match(t).map((h) => h.name));
    hosts = hosts.filter((h) => !drop.has(h.name));
  }
  return { hosts, unmatched };
}

function matchTerm(inventory: Inventory, term: string): string[] {
  const sub = /^(.+?)\[(?:(-?\d+)|(\d*):(\d*))\]$/.exec(term);
  // Regexes are never read for subscripts (as in Ansible): `~web[13]` is a character class.
  if (sub && !term.startsWith('~') && !inventory.groups[term] && !inventory.hosts.some((h) => h.name === term)) {
    const base = matchTerm(inventory, sub[1]!);
    if (sub[2] !== undefined) {
      const i = Number(sub[2]);
      const h = i < 0 ? base[base.length + i] : base[i];
      return h === undefined ? [] : [h];
    }
    const from = sub[3] === '' ? 0 : Number(sub[3]);
    const to = sub[4] === '' ? base.length - 1 : Number(sub[4]);
    return base.slice(from, to + 1);
  }
  if (term === 'all' || term === '*') return [...(inventory.groups.all?.hosts ?? [])];
  let test: (s: string) => boolean;
  if (term.startsWith('~')) {
    let re: RegExp;
    try {
      re = new RegExp(term.slice(1));
    } catch (error) {
      throw new UserError(`bad regular expression in host pattern ${JSON.stringify(term)}`, { cause: error });
    }
    test = (s) => re.exec(s)?.index === 0;
  } else if (/[*?[]/.test(term)) {
    const re = globToRegExp(term);
    test = (s) => re.test(s);
  } else {
    test = (s) => s === term;
  }
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (n: string) => {
    if (!seen.has(n)) {
      seen.add(n);
      out.push(n);
    }
  };
  const groups = Object.keys(inventory.groups).filter(test);
  for (const g of groups) for (const h of inventory.groups[g]!.hosts) add(h);
  const special = term.startsWith('~') || /[.?*[]/.test(term);
  if (groups.length === 0 || special) for (const h of inventory.hosts) if (test(h.name)) add(h.name);
  return out;
}

/** fnmatch: `*`, `?`, `[seq]`, `[!seq]`, whole-string match. */
function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        let body = glob.slice(i + 1, end);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}
