import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { homeDir } from '../commands/docker.js';
import { type Host, type Inventory, selectHosts } from '../config/inventory.js';
import type { Reporter } from '../github/reporter.js';
import type { ExecOptions, Executor } from '../remote/executor.js';
import {
  ansibleBool,
  type Scope,
  Templar,
  TemplateError,
  toText,
  UndefinedVariableError,
} from '../template/templar.js';
import { InputError, UserError } from '../util/errors.js';
import { looksSecret } from './extra-vars.js';
import { type ModuleDef, type ModuleResult, moduleRegistry } from './modules/index.js';
import { ModuleFailure } from './modules/types.js';
import { emptyStats, type HostStats, type PlayEvents, type TaskStatus } from './output.js';
import { type Play, type Playbook, parseSequence, type SourcePos, type Task } from './parse.js';
import { parseLinedYaml } from './yaml-lines.js';

/**
 * The interpreter: Ansible's linear strategy (each task on every host of the batch, then the next task) over
 * the parsed model. Before any connection, `preparePlaybook` loads vars_files, selects hosts and checks that
 * every variable a task uses is defined (or guarded by `default`/`is defined`), so a typo touches no host.
 */

export const EXIT = { ok: 0, error: 1, failedHosts: 2, unreachable: 4, parse: 4, options: 5 } as const;

/** A refusal before any host is touched; `exitCode` follows Ansible's. */
export class PlaybookRefused extends InputError {
  constructor(
    issues: string[],
    context: string,
    readonly exitCode: number,
  ) {
    super(issues, context);
  }
}

export interface RunOptions {
  inventory: Inventory;
  extraVars: Record<string, unknown>;
  /** Variables above extra vars that are never rendered as templates (secret-extra-vars). */
  unsafeVars?: Record<string, unknown>;
  /** Opens an Executor for a host (called at most once per host, when the host is first needed). */
  connect: (host: Host) => Promise<Executor>;
  check?: boolean;
  tags?: string[];
  skipTags?: string[];
  limit?: string;
  forks?: number;
  reporter: Reporter;
  events: PlayEvents;
  /**
   * Stops the run before the next task. A task in flight gets `cancelGraceMs` (default 3 s) to finish; then the
   * connections are closed, which ends its remote commands, and the run returns as cancelled.
   */
  signal?: AbortSignal;
  cancelGraceMs?: number;
}

export interface RunResult {
  stats: Record<string, HostStats>;
  exitCode: number;
  /** Why the run stopped early (the signal's reason); the exit code is then EXIT.error. */
  cancelled?: string;
}

const OMIT = '__omit_place_holder__dyce';

const MAGIC = new Set([
  'inventory_hostname',
  'inventory_hostname_short',
  'hostvars',
  'groups',
  'group_names',
  'ansible_check_mode',
  'ansible_play_hosts',
  'ansible_play_batch',
  'ansible_play_hosts_all',
  'play_hosts',
  'playbook_dir',
  'inventory_dir',
  'ansible_version',
  'omit',
  'ansible_facts',
  'ansible_loop_var',
]);
const FACT_NAMES = new Set([
  'ansible_os_family',
  'ansible_distribution',
  'ansible_distribution_version',
  'ansible_distribution_major_version',
  'ansible_distribution_release',
  'ansible_architecture',
  'ansible_system',
  'ansible_hostname',
  'ansible_kernel',
]);

interface PreparedPlay {
  play: Play;
  name: string;
  hosts: Host[];
  varsFiles: Record<string, unknown>;
  gather: boolean;
}

/** Pure apart from reading vars_files: everything checked before any host is touched. */
export async function preparePlaybook(pb: Playbook, opts: RunOptions): Promise<PreparedPlay[]> {
  const issues: string[] = [];
  const templar = new Templar();
  const extraScope: Scope = {
    lookup: (n) =>
      opts.unsafeVars && Object.hasOwn(opts.unsafeVars, n)
        ? { value: opts.unsafeVars[n], unsafe: true }
        : Object.hasOwn(opts.extraVars, n)
          ? { value: opts.extraVars[n] }
          : undefined,
  };
  const prepared: PreparedPlay[] = [];
  for (const play of pb.plays) {
    let pattern = play.hosts;
    try {
      pattern = toText(templar.render(play.hosts, extraScope));
    } catch (error) {
      issues.push(`${play.at.file}:${play.at.line}: hosts: ${(error as Error).message}`);
      continue;
    }
    const selected = selectHosts(opts.inventory, pattern, opts.limit);
    const varsFiles: Record<string, unknown> = {};
    for (const f of play.varsFiles) {
      let path: string;
      try {
        path = toText(
          templar.render(f, {
            lookup: (n) => extraScope.lookup(n) ?? (Object.hasOwn(play.vars, n) ? { value: play.vars[n] } : undefined),
          }),
        );
      } catch (error) {
        issues.push(`${play.at.file}:${play.at.line}: vars_files ${f}: ${(error as Error).message}`);
        continue;
      }
      const full = isAbsolute(path) ? path : resolve(dirname(pb.file), path);
      let text: string;
      try {
        text = await readFile(full, 'utf8');
      } catch (error) {
        issues.push(
          `${play.at.file}:${play.at.line}: vars_files: cannot read ${full}: ${(error as NodeJS.ErrnoException).code}`,
        );
        continue;
      }
      const doc = parseLinedYaml(text);
      for (const e of doc.errors) issues.push(`${full}:${e.line}: invalid YAML: ${e.message}`);
      if (doc.errors.length) continue;
      if (doc.value === null || doc.value === undefined) continue;
      if (typeof doc.value !== 'object' || Array.isArray(doc.value)) {
        issues.push(`${full}:1: vars_files must hold a mapping of names to values`);
        continue;
      }
      Object.assign(varsFiles, doc.value);
    }
    const gather = play.gatherFacts && usesFacts(templar, play);
    prepared.push({ play, name: play.name ?? pattern, hosts: selected.hosts, varsFiles, gather });
    // Unsafe variables are defined, and never followed as templates.
    const extra = {
      ...opts.extraVars,
      ...Object.fromEntries(Object.keys(opts.unsafeVars ?? {}).map((k) => [k, null])),
    };
    for (const host of selected.hosts) issues.push(...checkVariables(templar, play, host, varsFiles, extra, gather));
  }
  if (issues.length > 0) {
    const unique = [...new Set(issues)];
    throw new PlaybookRefused(
      unique,
      `the playbook uses undefined variables or files; no host was touched`,
      EXIT.failedHosts,
    );
  }
  return prepared;
}

function allStrings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) allStrings(x, out);
  else if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) {
      out.push(k);
      allStrings(x, out);
    }
  return out;
}

function taskTemplates(t: Task): { text: string; line: number; condition?: boolean }[] {
  const out: { text: string; line: number; condition?: boolean }[] = [];
  for (const [k, v] of Object.entries(t.args))
    for (const s of allStrings(v)) out.push({ text: s, line: t.argLines[k] ?? t.at.line });
  const kw = (key: string, v: unknown, condition = false) => {
    for (const s of allStrings(v)) out.push({ text: s, line: t.lines[key] ?? t.at.line, condition });
  };
  kw('name', t.name);
  if (t.loop)
    kw(
      t.loop.kind === 'sequence' ? 'with_sequence' : t.lines.loop ? 'loop' : 'with_items',
      t.loop.kind === 'sequence' ? t.loop.spec : t.loop.items,
    );
  kw('when', t.when, true);
  kw('changed_when', t.changedWhen, true);
  kw('failed_when', t.failedWhen, true);
  kw('environment', t.environment);
  kw('ignore_errors', t.ignoreErrors);
  kw('no_log', t.noLog);
  return out;
}

function usesFacts(templar: Templar, play: Play): boolean {
  for (const t of play.tasks)
    for (const { text, condition } of taskTemplates(t)) {
      const src = condition ? `{{ ${text} }}` : text;
      if (!condition && !/\{\{|\{%/.test(text)) continue;
      try {
        if (templar.analyse(src).variables.some((v) => v === 'ansible_facts' || FACT_NAMES.has(v))) return true;
      } catch {
        // parse errors were reported by parsePlaybook
      }
    }
  return false;
}

/**
 * The static undefined-variable check for one host. Variables set by earlier tasks (register, set_fact) count
 * as defined from the next task on; a variable whose value is a template is followed to what it uses.
 */
function checkVariables(
  templar: Templar,
  play: Play,
  host: Host,
  varsFiles: Record<string, unknown>,
  extra: Record<string, unknown>,
  gather: boolean,
): string[] {
  const issues: string[] = [];
  const later = new Set<string>();
  const layers: Record<string, unknown>[] = [extra, varsFiles, play.vars, host.vars];
  const definedValue = (n: string, taskVars: Record<string, unknown>): { value: unknown } | undefined => {
    for (const l of [extra, taskVars, ...layers.slice(1)]) if (Object.hasOwn(l, n)) return { value: l[n] };
    return undefined;
  };
  const isKnown = (n: string, taskVars: Record<string, unknown>, loopVar: string | undefined) =>
    MAGIC.has(n) ||
    later.has(n) ||
    n === loopVar ||
    (gather && FACT_NAMES.has(n)) ||
    definedValue(n, taskVars) !== undefined;

  const follow = (
    text: string,
    taskVars: Record<string, unknown>,
    loopVar: string | undefined,
    chain: string[],
    report: (name: string, chain: string[]) => void,
  ): void => {
    let a: ReturnType<Templar['analyse']>;
    try {
      a = templar.analyse(text);
    } catch {
      return;
    }
    if (a.guarded) return;
    for (const v of a.variables) {
      if (chain.includes(v)) continue;
      if (!isKnown(v, taskVars, loopVar)) {
        report(v, chain);
        continue;
      }
      const found = definedValue(v, taskVars);
      if (found && !later.has(v))
        for (const s of allStrings(found.value))
          if (/\{\{|\{%/.test(s)) follow(s, taskVars, loopVar, [...chain, v], report);
    }
  };

  for (const t of play.tasks) {
    const loopVar = t.loop ? t.loopVar : undefined;
    for (const { text, line, condition } of taskTemplates(t)) {
      if (!condition && !/\{\{|\{%/.test(text)) continue;
      follow(condition ? `{{ ${text} }}` : text, t.vars, loopVar, [], (name, chain) => {
        const via = chain.length
          ? ` (used by ${[...chain]
              .reverse()
              .map((c) => `'${c}'`)
              .join(' <- ')})`
          : '';
        issues.push(`${t.at.file}:${line}: task "${t.name ?? t.module}" on ${host.name}: '${name}' is undefined${via}`);
      });
    }
    if (t.register) later.add(t.register);
    if (t.module === 'set_fact') for (const k of Object.keys(t.args)) later.add(k);
  }
  return issues;
}

// ---------------------------------------------------------------------------------------------------------------

interface HostState {
  host: Host;
  exec?: Executor;
  home?: string;
  facts: Record<string, unknown>;
  /** set_fact and register results: above task vars, below extra vars. */
  setFacts: Record<string, unknown>;
  failed: boolean;
  unreachable: boolean;
  /** The current play's `become`. */
  playBecome: boolean;
}

interface Outcome {
  status: TaskStatus;
  result: ModuleResult;
  ignored?: boolean;
}

/** Runs a parsed playbook. Returns the stats and Ansible's exit code. */
export async function runPlaybook(pb: Playbook, opts: RunOptions): Promise<RunResult> {
  const prepared = await preparePlaybook(pb, opts);
  const modules = moduleRegistry();
  const templar = new Templar();
  const events = opts.events;
  const stats: Record<string, HostStats> = {};
  const states = new Map<string, HostState>();
  const state = (h: Host): HostState => {
    let s = states.get(h.name);
    if (!s) {
      s = { host: h, facts: {}, setFacts: {}, failed: false, unreachable: false, playBecome: false };
      states.set(h.name, s);
      stats[h.name] = emptyStats();
    }
    return s;
  };
  const forks = Math.max(1, opts.forks ?? 5);
  let stop = false;
  let cancelled: string | undefined;
  const isCancelled = (): boolean => {
    if (opts.signal?.aborted) cancelled ??= String(opts.signal.reason ?? 'cancelled');
    return cancelled !== undefined;
  };
  // The hard stop: a cancelled run does not wait for a hung command longer than the grace period.
  let hardStop = (): void => {};
  const stopped = new Promise<true>((resolve) => {
    hardStop = () => resolve(true);
  });
  let graceTimer: NodeJS.Timeout | undefined;
  let stoppedHard = false;
  const onAbort = () => {
    graceTimer = setTimeout(() => {
      stoppedHard = true;
      for (const s of states.values()) s.exec?.close().catch(() => {});
      hardStop();
    }, opts.cancelGraceMs ?? 3000);
  };
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener('abort', onAbort, { once: true });
  /** Runs a task on the hosts; false when the hard stop came first (the abandoned work's end is moot). */
  const finished = (work: Promise<void>): Promise<boolean> =>
    Promise.race([work.then(() => true), stopped.then(() => false)]);

  try {
    for (const pp of prepared) {
      if (stop) break;
      events.play(
        pp.name,
        pp.hosts.map((h) => h.name),
      );
      if (pp.hosts.length === 0) {
        events.noHosts(pp.play.hosts);
        continue;
      }
      for (const h of pp.hosts) state(h).playBecome = pp.play.become;
      for (const batch of batches(pp, templar, opts.extraVars)) {
        let active = batch.filter((h) => !state(h).failed && !state(h).unreachable);
        if (pp.gather && active.length > 0) {
          events.task('Gathering Facts', 'gather_facts');
          const done = await finished(
            pool(active, forks, async (h) => {
              const s = state(h);
              const out = await guardConnection(s, opts, async () => {
                s.facts = await gatherFacts(s.exec!);
                return { status: 'ok' as TaskStatus, result: { changed: false } };
              });
              if (!stoppedHard) record(s, out, undefined, stats, events);
            }),
          );
          if (!done) {
            isCancelled();
            stop = true;
            break;
          }
          active = active.filter((h) => !state(h).unreachable);
        }
        for (const task of pp.play.tasks) {
          if (active.length === 0) break;
          if (isCancelled()) {
            stop = true;
            break;
          }
          if (!tagsSelected(task, pp.play, opts)) continue;
          const def = modules.get(task.module)!;
          events.task(taskTitle(task, templar, opts.extraVars, pp), task.module);
          const done = await finished(
            pool(active, forks, async (h) => {
              const s = state(h);
              const out = await runTaskOnHost(task, def, s, pp, batch, opts, templar, events);
              if (!stoppedHard) record(s, out, task, stats, events);
            }),
          );
          if (!done) {
            isCancelled();
            stop = true;
            break;
          }
          active = active.filter((h) => !state(h).failed && !state(h).unreachable);
          if (active.length === 0) {
            events.noMoreHosts();
            stop = true;
            break;
          }
        }
        if (stop) break;
      }
    }
  } finally {
    clearTimeout(graceTimer);
    opts.signal?.removeEventListener('abort', onAbort);
    await Promise.all([...states.values()].map((s) => s.exec?.close().catch(() => {})));
  }
  events.recap(stats);
  if (cancelled !== undefined) return { stats, exitCode: EXIT.error, cancelled };
  const all = Object.values(stats);
  const exitCode = all.some((s) => s.unreachable > 0)
    ? EXIT.unreachable
    : all.some((s) => s.failed > 0)
      ? EXIT.failedHosts
      : EXIT.ok;
  return { stats, exitCode };
}

function record(
  s: HostState,
  out: Outcome,
  task: Task | undefined,
  stats: Record<string, HostStats>,
  events: PlayEvents,
) {
  const st = stats[s.host.name]!;
  if (out.status === 'unreachable') {
    st.unreachable++;
    s.unreachable = true;
  } else if (out.status === 'failed' && !out.ignored) {
    st.failed++;
    s.failed = true;
  } else if (out.status === 'skipped') st.skipped++;
  else {
    st.ok++;
    if (out.status === 'changed') st.changed++;
    if (out.ignored) st.ignored++;
  }
  const hide = task && isTrue(task.noLog);
  const detail = hide ? { ...censored(), ...(task?.module === 'debug' ? { __debug: true } : {}) } : out.result;
  events.result(
    {
      host: s.host.name,
      status: out.status === 'failed' && out.ignored ? 'failed' : out.status,
      ...(out.status !== 'skipped' &&
      (out.status === 'failed' || task?.module === 'debug' || out.status === 'unreachable')
        ? { detail: withDebug(detail, task) }
        : { detail: summaryDetail(detail) }),
      ...(out.ignored ? { ignored: true } : {}),
    },
    true,
  );
}

function summaryDetail(d: Record<string, unknown>): Record<string, unknown> {
  return d;
}

function withDebug(d: Record<string, unknown>, task: Task | undefined): Record<string, unknown> {
  if (task?.module !== 'debug') return d;
  const { changed: _c, failed: _f, ...rest } = d;
  return { ...rest, __debug: true, ...(d.failed ? { failed: true } : {}) };
}

function censored(): Record<string, unknown> {
  return { censored: "the output has been hidden due to the fact that 'no_log: true' was specified for this result" };
}

function isTrue(v: unknown): boolean {
  return v === true || (typeof v === 'string' && ansibleBool(v));
}

function tagsSelected(task: Task, play: Play, opts: RunOptions): boolean {
  const tags = new Set([...play.tags, ...task.tags]);
  if (tags.has('always') && !(opts.skipTags ?? []).includes('always')) return true;
  if ((opts.skipTags ?? []).some((t) => tags.has(t))) return false;
  if (tags.has('never') && !(opts.tags ?? []).some((t) => tags.has(t))) return false;
  if (!opts.tags || opts.tags.length === 0 || opts.tags.includes('all')) return true;
  if (opts.tags.includes('tagged') && tags.size > 0) return true;
  if (opts.tags.includes('untagged') && tags.size === 0) return true;
  return opts.tags.some((t) => tags.has(t));
}

function taskTitle(task: Task, templar: Templar, extra: Record<string, unknown>, pp: PreparedPlay): string {
  if (task.name === undefined) return task.module;
  try {
    // Task names are templated with play-level variables only (host and loop variables are not known yet).
    const layers = [extra, pp.varsFiles, pp.play.vars];
    return toText(
      templar.render(task.name, {
        lookup: (n) => {
          for (const l of layers) if (Object.hasOwn(l, n)) return { value: l[n] };
          return undefined;
        },
      }),
    );
  } catch {
    return task.name;
  }
}

function* batches(pp: PreparedPlay, templar: Templar, extra: Record<string, unknown>): Generator<Host[]> {
  let size = pp.hosts.length;
  if (pp.play.serial !== undefined) {
    const raw = toText(
      templar.render(String(pp.play.serial), {
        lookup: (n) => (Object.hasOwn(extra, n) ? { value: extra[n] } : undefined),
      }),
    ).trim();
    const pct = /^(\d+(?:\.\d+)?)%$/.exec(raw);
    const n = pct ? Math.max(1, Math.floor((pp.hosts.length * Number(pct[1])) / 100)) : Number(raw);
    if (!Number.isInteger(n) || n < 1)
      throw new UserError(`${pp.play.at.file}:${pp.play.at.line}: serial must be a number or a percentage, got ${raw}`);
    size = n;
  }
  for (let i = 0; i < pp.hosts.length; i += size) yield pp.hosts.slice(i, i + size);
}

async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!);
    }
  });
  await Promise.all(workers);
}

async function guardConnection(s: HostState, opts: RunOptions, fn: () => Promise<Outcome>): Promise<Outcome> {
  if (!s.exec) {
    try {
      s.exec = await opts.connect(s.host);
    } catch (error) {
      return { status: 'unreachable', result: { unreachable: true, msg: (error as Error).message } };
    }
  }
  return fn();
}

/** A small fact set in one round trip: os family, distribution, version, architecture. */
export async function gatherFacts(exec: Executor): Promise<Record<string, unknown>> {
  const r = await exec.run(
    [
      'sh',
      '-c',
      '. /etc/os-release 2>/dev/null; printf "%s\\n%s\\n%s\\n%s\\n%s\\n%s\\n%s\\n" "$ID" "$VERSION_ID" "$(uname -m)" "$ID_LIKE" "$VERSION_CODENAME" "$(uname -s)" "$(uname -n)"',
    ],
    { label: 'gather facts' },
  );
  const [id = '', version = '', arch = '', like = '', codename = '', system = '', hostname = ''] = r.stdout.split('\n');
  const names: Record<string, string> = {
    debian: 'Debian',
    ubuntu: 'Ubuntu',
    centos: 'CentOS',
    rhel: 'RedHat',
    fedora: 'Fedora',
    alpine: 'Alpine',
    rocky: 'Rocky',
    almalinux: 'AlmaLinux',
    arch: 'Archlinux',
  };
  const family =
    ['debian', 'ubuntu'].includes(id) || like.includes('debian')
      ? 'Debian'
      : ['rhel', 'centos', 'fedora', 'rocky', 'almalinux'].includes(id) || /rhel|fedora/.test(like)
        ? 'RedHat'
        : id === 'alpine'
          ? 'Alpine'
          : (names[id] ?? id);
  const facts = {
    os_family: family,
    distribution: names[id] ?? id,
    distribution_version: version,
    distribution_major_version: version.split('.')[0] ?? '',
    distribution_release: codename,
    architecture: arch,
    system,
    hostname: hostname.split('.')[0] ?? hostname,
  };
  return { ansible_facts: facts, ...Object.fromEntries(Object.entries(facts).map(([k, v]) => [`ansible_${k}`, v])) };
}

function hostScope(
  s: HostState,
  task: Task,
  pp: PreparedPlay,
  batch: Host[],
  opts: RunOptions,
  states: { loopVar?: string; item?: unknown; result?: { name: string; value: unknown } },
): Scope {
  const magic: Record<string, unknown> = {
    inventory_hostname: s.host.name,
    inventory_hostname_short: s.host.name.split('.')[0],
    group_names: s.host.groups.filter((g) => g !== 'all' && g !== 'ungrouped'),
    groups: Object.fromEntries(Object.entries(opts.inventory.groups).map(([g, v]) => [g, v.hosts])),
    hostvars: Object.fromEntries(opts.inventory.hosts.map((h) => [h.name, h.vars])),
    ansible_check_mode: opts.check === true,
    ansible_play_hosts: batch.map((h) => h.name),
    ansible_play_batch: batch.map((h) => h.name),
    ansible_play_hosts_all: pp.hosts.map((h) => h.name),
    play_hosts: batch.map((h) => h.name),
    playbook_dir: dirname(resolve(pp.play.at.file)),
    ansible_version: { full: '2.14.0', major: 2, minor: 14, string: '2.14.0 (dyce)' },
    omit: OMIT,
  };
  // Data from hosts (facts, registered results, set_fact, loop items) and secrets are unsafe: never rendered.
  const layers: [Record<string, unknown>, boolean][] = [
    [opts.unsafeVars ?? {}, true],
    [opts.extraVars, false],
    [s.setFacts, true],
    [task.vars, false],
    [pp.varsFiles, false],
    [pp.play.vars, false],
    [s.facts, true],
    [s.host.vars, false],
  ];
  return {
    lookup(n) {
      if (states.loopVar !== undefined && n === states.loopVar) return { value: states.item, unsafe: true };
      if (n === 'ansible_loop_var' && states.loopVar !== undefined) return { value: states.loopVar };
      if (states.result && n === states.result.name) return { value: states.result.value, unsafe: true };
      if (Object.hasOwn(magic, n) && n !== 'omit') return { value: magic[n] };
      for (const [l, unsafe] of layers) if (Object.hasOwn(l, n)) return { value: l[n], unsafe };
      if (n === 'omit') return { value: OMIT };
      return undefined;
    },
  };
}

function where(task: Task, key?: string): string {
  const line = (key && (task.argLines[key] ?? task.lines[key])) || task.at.line;
  return `${task.at.file}:${line}`;
}

function describe(error: unknown, task: Task, key?: string): string {
  if (error instanceof UndefinedVariableError || error instanceof TemplateError)
    return `${where(task, key)}: task "${task.name ?? task.module}": ${error.message}`;
  return (error as Error).message;
}

async function runTaskOnHost(
  task: Task,
  def: ModuleDef,
  s: HostState,
  pp: PreparedPlay,
  batch: Host[],
  opts: RunOptions,
  templar: Templar,
  events: PlayEvents,
): Promise<Outcome> {
  const base = hostScope(s, task, pp, batch, opts, {});
  // Items first: a loop over an empty list skips without connecting.
  let items: unknown[] | undefined;
  if (task.loop) {
    try {
      if (task.loop.kind === 'sequence') {
        const seq = parseSequence(toText(templar.render(task.loop.spec, base)));
        if ('error' in seq) throw new TemplateError(seq.error);
        items = seq.items;
      } else {
        const v = templar.renderDeep(task.loop.items, base);
        if (!Array.isArray(v)) throw new TemplateError(`the loop value must be a list, got ${JSON.stringify(v)}`);
        items = v;
      }
    } catch (error) {
      const key = task.loop.kind === 'sequence' ? 'with_sequence' : task.lines.loop ? 'loop' : 'with_items';
      return { status: 'failed', result: { failed: true, msg: describe(error, task, key) } };
    }
  }
  const runOne = async (scopeState: { loopVar?: string; item?: unknown }): Promise<Outcome> => {
    const scope = hostScope(s, task, pp, batch, opts, scopeState);
    try {
      for (const cond of task.when)
        if (!templar.evaluate(cond, scope))
          return {
            status: 'skipped',
            result: {
              changed: false,
              skipped: true,
              skip_reason: 'Conditional result was False',
              false_condition: cond,
            },
          };
    } catch (error) {
      return { status: 'failed', result: { failed: true, msg: describe(error, task, 'when') } };
    }
    return guardConnection(s, opts, () => invoke(task, def, s, scope, opts, templar, events));
  };

  let out: Outcome;
  if (items === undefined) out = await runOne({});
  else {
    const results: Record<string, unknown>[] = [];
    let anyChanged = false;
    let anyFailed = false;
    let allSkipped = items.length > 0;
    for (const item of items) {
      const r = await runOne({ loopVar: task.loopVar, item });
      if (r.status === 'unreachable') return r;
      const label = itemLabel(
        task,
        item,
        templar,
        hostScope(s, task, pp, batch, opts, { loopVar: task.loopVar, item }),
      );
      results.push({
        ...r.result,
        [task.loopVar]: item,
        ansible_loop_var: task.loopVar,
        ...(r.status === 'changed' ? { changed: true } : {}),
      });
      if (r.status !== 'skipped') allSkipped = false;
      if (r.status === 'changed') anyChanged = true;
      if (r.status === 'failed' && !r.ignored) anyFailed = true;
      const hide = isTrue(task.noLog);
      events.result(
        {
          host: s.host.name,
          status: r.status,
          item: hide ? 'None' : label,
          ...(r.status === 'failed' || task.module === 'debug'
            ? { detail: hide ? censored() : withDebug(r.result, task) }
            : {}),
        },
        false,
      );
    }
    if (items.length === 0) {
      out = {
        status: 'skipped',
        result: { changed: false, skipped: true, skipped_reason: 'No items in the list', results: [] },
      };
    } else {
      const result: ModuleResult = {
        changed: anyChanged,
        results,
        msg: anyFailed ? 'One or more items failed' : 'All items completed',
        ...(anyFailed ? { failed: true } : {}),
        ...(allSkipped ? { skipped: true } : {}),
      };
      const ignored = anyFailed && isIgnored(task, templar, base);
      out = {
        status: anyFailed ? 'failed' : allSkipped ? 'skipped' : anyChanged ? 'changed' : 'ok',
        result,
        ...(ignored ? { ignored } : {}),
      };
    }
  }
  if (task.register)
    s.setFacts[task.register] = {
      ...out.result,
      changed: out.status === 'changed',
      ...(out.status === 'failed' ? { failed: true } : {}),
    };
  return out;
}

function itemLabel(task: Task, item: unknown, templar: Templar, scope: Scope): string {
  try {
    if (task.loopLabel) return toText(templar.render(task.loopLabel, scope));
  } catch {
    // fall through to the item itself
  }
  return typeof item === 'string' ? item : JSON.stringify(item);
}

function isIgnored(task: Task, templar: Templar, scope: Scope): boolean {
  const v = task.ignoreErrors;
  if (typeof v === 'boolean') return v;
  try {
    return ansibleBool(typeof v === 'string' ? toText(templar.render(v, scope)) : v);
  } catch {
    return false;
  }
}

/** Templates the arguments, validates them with the module's schema, runs the module, applies changed_when/failed_when. */
async function invoke(
  task: Task,
  def: ModuleDef,
  s: HostState,
  scope: Scope,
  opts: RunOptions,
  templar: Templar,
  events: PlayEvents,
): Promise<Outcome> {
  let args: Record<string, unknown>;
  let env: Record<string, string> = {};
  try {
    args = templar.renderDeep(task.args, scope) as Record<string, unknown>;
    for (const [k, v] of Object.entries(args)) if (v === OMIT) delete args[k];
    if (task.environment) {
      const e = templar.renderDeep(task.environment, scope) as Record<string, unknown>;
      env = Object.fromEntries(
        Object.entries(e)
          .filter(([, v]) => v !== OMIT)
          .map(([k, v]) => [k, toText(v)]),
      );
      // `environment` reaches the host as `env K=V` words, as Ansible sends it: visible in the host's process list.
      const secretLooking = Object.keys(env).filter(looksSecret);
      if (secretLooking.length)
        events.warning(
          `${where(task, 'environment')}: environment ${secretLooking.join(', ')} looks secret; environment values are visible in the host's process list (pass secrets in files, e.g. docker_container env_file)`,
        );
    }
  } catch (error) {
    const key = error instanceof UndefinedVariableError ? findArgWith(task, error.variable) : undefined;
    return fail(task, templar, scope, describe(error, task, key));
  }
  const noLog = isTrue(task.noLog);
  if (noLog) for (const v of allStrings(args)) if (v.length >= 4) opts.reporter.secret(v);
  for (const [alias, main] of Object.entries(def.aliases ?? {}))
    if (alias in args) {
      if (!(main in args)) args[main] = args[alias];
      delete args[alias];
    }
  const parsed = def.schema.safeParse(args);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${i.path.join('.') || 'arguments'}: ${i.message}`).join('; ');
    return fail(
      task,
      templar,
      scope,
      `${where(task, String(parsed.error.issues[0]?.path[0] ?? ''))}: ${def.name}: ${msg}`,
    );
  }
  const exec = s.exec!;
  const become = task.become ?? (s.playBecome || s.host.become);
  const ctx = {
    host: s.host,
    exec,
    check: opts.check === true,
    run: (argv: readonly string[], o: ExecOptions = {}) =>
      exec.run(Object.keys(env).length ? ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv] : argv, {
        ...o,
        sudo: become,
      }),
    secret: (v: string) => opts.reporter.secret(v),
    warn: (m: string) => events.warning(m),
    evaluate: (e: unknown) => templar.evaluate(e, scope),
    lookup: (n: string) => templar.render(`{{ ${n} }}`, scope),
    home: async () => {
      if (s.home === undefined) {
        const r = await exec.run(homeDir(), { sudo: become, label: 'home directory' });
        s.home = r.stdout.trim() || '/root';
      }
      return s.home;
    },
    knowHome: (home: string) => {
      s.home = home;
    },
  };
  let result: ModuleResult;
  try {
    result = await def.run(parsed.data, ctx);
  } catch (error) {
    if (error instanceof ModuleFailure) result = { failed: true, changed: false, msg: error.message, ...error.extra };
    else if (error instanceof UndefinedVariableError || error instanceof TemplateError)
      result = { failed: true, changed: false, msg: describe(error, task) };
    else if (error instanceof UserError)
      return { status: 'unreachable', result: { unreachable: true, msg: error.message } };
    else throw error;
  }
  if (result.ansible_facts && !result.failed) Object.assign(s.setFacts, result.ansible_facts);
  let changed = result.changed === true;
  let failed = result.failed === true;
  const withResult = task.register ? hostScopeWith(scope, task.register, { ...result, changed, failed }) : scope;
  try {
    if (task.changedWhen) changed = task.changedWhen.every((c) => templar.evaluate(c, withResult));
    if (task.failedWhen) failed = task.failedWhen.some((c) => templar.evaluate(c, withResult));
  } catch (error) {
    return fail(task, templar, scope, describe(error, task, task.failedWhen ? 'failed_when' : 'changed_when'));
  }
  result = { ...result, changed, ...(failed ? { failed: true } : { failed: false }) };
  if (failed) {
    const ignored = isIgnored(task, templar, scope);
    return { status: 'failed', result, ...(ignored ? { ignored } : {}) };
  }
  return { status: changed ? 'changed' : 'ok', result };
}

function hostScopeWith(scope: Scope, name: string, value: unknown): Scope {
  return { lookup: (n) => (n === name ? { value, unsafe: true } : scope.lookup(n)) };
}

function findArgWith(task: Task, variable: string): string | undefined {
  const root = variable.split('.')[0]!;
  for (const [k, v] of Object.entries(task.args)) if (allStrings(v).some((s) => s.includes(root))) return k;
  return undefined;
}

function fail(task: Task, templar: Templar, scope: Scope, msg: string): Outcome {
  const ignored = isIgnored(task, templar, scope);
  return { status: 'failed', result: { failed: true, changed: false, msg }, ...(ignored ? { ignored } : {}) };
}

export type { SourcePos };
