import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { homeDir } from '../commands/docker.js';
import { type Host, type Inventory, selectHosts } from '../config/inventory.js';
import { batchSizes, budgetExceeded, parseSerial } from '../deploy/fanout.js';
import type { Reporter } from '../github/reporter.js';
import type { ExecOptions, Executor } from '../remote/executor.js';
import {
  ansibleBool,
  isTemplate,
  type Scope,
  Templar,
  TemplateError,
  toText,
  UndefinedVariableError,
} from '../template/templar.js';
import { InputError, UserError } from '../util/errors.js';
import { looksSecret } from './extra-vars.js';
import { FACT_VARIABLES, gatherFacts } from './facts.js';
import { runLookup } from './lookups.js';
import { type ModuleDef, type ModuleResult, moduleRegistry } from './modules/index.js';
import { ModuleFailure } from './modules/types.js';
import { emptyStats, type HostStats, type PlayEvents, type TaskStatus } from './output.js';
import {
  type Include,
  type Node,
  type Play,
  type Playbook,
  PlaybookParser,
  parseSequence,
  type SourcePos,
  type Task,
} from './parse.js';
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
  /** --diff: print what changed (modules that report a diff). */
  diff?: boolean;
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
  'ansible_index_var',
  'ansible_failed_task',
  'ansible_failed_result',
  'role_name',
  'role_path',
  'ansible_parent_role_names',
  'ansible_run_tags',
  'ansible_skip_tags',
  'ansible_diff_mode',
  'ansible_limit',
  'ansible_play_name',
  'inventory_file',
]);
const FACT_NAMES = FACT_VARIABLES;

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
      if (doc.errors.length) {
        issues.push(`${full}:${doc.errors[0]!.line}: invalid YAML: ${doc.errors[0]!.message}`);
        continue;
      }
      if (doc.value === null || doc.value === undefined) continue;
      if (typeof doc.value !== 'object' || Array.isArray(doc.value)) {
        issues.push(`${full}:1: vars_files must hold a mapping of names to values`);
        continue;
      }
      Object.assign(varsFiles, doc.value);
    }
    const gather = play.gatherFacts && usesFacts(templar, play);
    // A play's connection and remote_user apply to its hosts (the inventory's own ansible_user wins).
    const hosts = selected.hosts.map((h) => ({
      ...h,
      ...(play.connection === 'local' ? { connection: 'local' as const } : {}),
      ...(play.remoteUser && !h.user ? { user: play.remoteUser } : {}),
    }));
    prepared.push({ play, name: play.name ?? pattern, hosts, varsFiles, gather });
    // Unsafe variables are defined, and never followed as templates.
    const extra = {
      ...opts.extraVars,
      ...Object.fromEntries(Object.keys(opts.unsafeVars ?? {}).map((k) => [k, null])),
    };
    for (const host of hosts) issues.push(...checkVariables(templar, play, host, varsFiles, extra, gather, pb.file));
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

/** A condition as a template: `x == 1` and `{{ x == 1 }}` alike. */
function conditionTemplate(text: string): string {
  return isTemplate(text) ? text : `{{ ${text} }}`;
}

function loopKeyword(t: Task): string {
  if (!t.loop) return 'loop';
  return t.loop.kind === 'sequence'
    ? 'with_sequence'
    : t.loop.kind === 'dict'
      ? 'with_dict'
      : (['loop', 'with_items', 'with_list'].find((k) => t.lines[k] !== undefined) ?? 'loop');
}

function taskTemplates(t: Task): { text: string; line: number }[] {
  const out: { text: string; line: number }[] = [];
  for (const [k, v] of Object.entries(t.args))
    for (const s of allStrings(v)) out.push({ text: s, line: t.argLines[k] ?? t.at.line });
  const kw = (key: string, v: unknown, condition = false) => {
    for (const s of allStrings(v))
      out.push({ text: condition ? conditionTemplate(s) : s, line: t.lines[key] ?? t.at.line });
  };
  kw('name', t.name);
  if (t.loop) kw(loopKeyword(t), t.loop.kind === 'sequence' ? t.loop.spec : t.loop.items);
  kw('when', t.when, true);
  kw('changed_when', t.changedWhen, true);
  kw('failed_when', t.failedWhen, true);
  kw('until', t.until, true);
  kw('environment', t.environment);
  kw('ignore_errors', t.ignoreErrors);
  kw('no_log', t.noLog);
  kw('retries', t.retries);
  kw('delay', t.delay);
  kw('delegate_to', t.delegateTo);
  return out.filter((o) => isTemplate(o.text));
}

/** Every task the play may run, handlers included. */
function playTasks(play: Play): Task[] {
  return [...play.tasks, ...play.handlers];
}

function hasDynamicIncludes(nodes: readonly Node[]): boolean {
  return nodes.some((n) =>
    n.kind === 'include'
      ? n.tasks === undefined || hasDynamicIncludes(n.tasks)
      : n.kind === 'block'
        ? hasDynamicIncludes(n.block) || hasDynamicIncludes(n.rescue) || hasDynamicIncludes(n.always)
        : false,
  );
}

function usesFacts(templar: Templar, play: Play): boolean {
  if (hasDynamicIncludes(play.sections.flat())) return true;
  const texts = [
    ...playTasks(play).flatMap((t) => [
      ...taskTemplates(t).map((x) => x.text),
      ...allStrings(t.vars),
      ...(t.role ? allStrings([t.role.vars, t.role.defaults, t.role.params]) : []),
    ]),
    ...allStrings(play.vars),
  ];
  for (const text of texts) {
    if (!isTemplate(text)) continue;
    try {
      if (templar.analyse(text).variables.some((v) => v === 'ansible_facts' || v === 'hostvars' || FACT_NAMES.has(v)))
        return true;
    } catch {
      // parse errors were reported by parsePlaybook
    }
  }
  return false;
}

/**
 * The static undefined-variable check for one host. Variables set by earlier tasks (register, set_fact,
 * include_vars) count as defined from the next task on; a variable whose value is a template is followed to what
 * it uses. After an include whose tasks are known only at run time, nothing more can be said.
 */
function checkVariables(
  templar: Templar,
  play: Play,
  host: Host,
  varsFiles: Record<string, unknown>,
  extra: Record<string, unknown>,
  gather: boolean,
  playbookFile: string,
): string[] {
  const issues: string[] = [];
  const later = new Set<string>();
  const layersOf = (t: Task): Record<string, unknown>[] => [
    extra,
    t.role?.params ?? {},
    t.vars,
    t.role?.vars ?? {},
    varsFiles,
    play.vars,
    host.vars,
    t.role?.defaults ?? {},
  ];
  const definedValue = (n: string, t: Task): { value: unknown } | undefined => {
    for (const l of layersOf(t)) if (Object.hasOwn(l, n)) return { value: l[n] };
    return undefined;
  };
  const isKnown = (n: string, t: Task) =>
    MAGIC.has(n) ||
    later.has(n) ||
    n === t.register ||
    (t.loop && (n === t.loopVar || n === t.indexVar)) ||
    t.loopVars.includes(n) ||
    (gather && FACT_NAMES.has(n)) ||
    definedValue(n, t) !== undefined;

  const follow = (text: string, t: Task, chain: string[], report: (name: string, chain: string[]) => void): void => {
    let a: ReturnType<Templar['analyse']>;
    try {
      a = templar.analyse(text);
    } catch {
      return;
    }
    if (a.guarded) return;
    for (const v of a.variables) {
      if (chain.includes(v)) continue;
      if (!isKnown(v, t)) {
        report(v, chain);
        continue;
      }
      const found = definedValue(v, t);
      if (found && !later.has(v))
        for (const s of allStrings(found.value)) if (isTemplate(s)) follow(s, t, [...chain, v], report);
    }
  };

  // Tasks in tree order; after a dynamic include, later tasks may use what it set.
  const dynamicFrom = firstDynamicKey(play.sections.flat());
  for (const t of playTasks(play)) {
    if (dynamicFrom && compareKeys(t.key, dynamicFrom) > 0 && !play.handlers.includes(t)) break;
    for (const { text, line } of taskTemplates(t)) {
      follow(text, t, [], (name, chain) => {
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
    if (t.module === 'include_vars') {
      const file = t.args.file ?? t.args.free_form;
      if (typeof t.args.name === 'string') later.add(t.args.name);
      else if (typeof file === 'string' && !isTemplate(file)) {
        const vars = readVarsFile(resolveVarsFile(file, t, playbookFile));
        if (vars) for (const k of Object.keys(vars)) later.add(k);
        else break;
      } else break;
    }
  }
  return issues;
}

function firstDynamicKey(nodes: readonly Node[]): number[] | undefined {
  for (const n of nodes) {
    if (n.kind === 'include') {
      if (n.tasks === undefined) return n.key;
      const k = firstDynamicKey(n.tasks);
      if (k) return k;
    } else if (n.kind === 'block') {
      const k = firstDynamicKey([...n.block, ...n.rescue, ...n.always]);
      if (k) return k;
    }
  }
  return undefined;
}

/** Orders tree positions: the task to run next is the one with the smallest key. */
export function compareKeys(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function resolveVarsFile(file: string, t: Task, playbookFile: string): string {
  if (isAbsolute(file)) return file;
  const dir = dirname(resolve(playbookFile));
  const candidates = [
    ...(t.role ? [join(t.role.dir, 'vars', file), join(t.role.dir, file)] : []),
    resolve(dirname(t.at.file), file),
    join(dir, 'vars', file),
    join(dir, file),
  ];
  return candidates.find((c) => readVarsFile(c) !== undefined) ?? candidates[0]!;
}

function readVarsFile(path: string): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const doc = parseLinedYaml(text);
  if (doc.errors.length > 0)
    throw new UserError(`${path}:${doc.errors[0]!.line}: invalid YAML: ${doc.errors[0]!.message}`);
  if (doc.value === null || doc.value === undefined) return {};
  if (typeof doc.value !== 'object' || Array.isArray(doc.value))
    throw new UserError(`${path}:1: a vars file must hold a mapping of names to values`);
  return doc.value as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------------------------

interface HostState {
  host: Host;
  exec?: Executor;
  home?: string;
  facts: Record<string, unknown>;
  /** set_fact and register results: above task vars, below extra vars. */
  setFacts: Record<string, unknown>;
  /** include_vars: read from the playbook's own files, so rendered like play vars. */
  includedVars: Record<string, unknown>;
  failed: boolean;
  unreachable: boolean;
  /** end_host / end_play: the host stops without failing. */
  ended: boolean;
  /** Handler names and listen topics notified and not yet run. */
  notified: Set<string>;
  /** The current play's `become`. */
  playBecome: boolean;
}

function newHostState(host: Host): HostState {
  return {
    host,
    facts: {},
    setFacts: {},
    includedVars: {},
    failed: false,
    unreachable: false,
    ended: false,
    notified: new Set(),
    playBecome: false,
  };
}

interface Outcome {
  status: TaskStatus;
  result: ModuleResult;
  ignored?: boolean;
}

/** What a host's walk through the tree adds to the variables of the tasks below an include or in a rescue. */
interface WalkEnv {
  /** include_tasks/include_role `vars:` and loop items, innermost last. */
  params: Record<string, unknown>[];
  failed?: { task: Record<string, unknown>; result: unknown };
}

type Step =
  | { kind: 'task'; task: Task; key: number[]; env: WalkEnv }
  | { kind: 'include'; node: Include; key: number[]; env: WalkEnv }
  | { kind: 'flush'; key: number[]; env: WalkEnv };

/** What the scheduler answers a step with: a task's outcome, or the tasks an include brought in. */
type Answer = { outcome: Outcome } | { expansions: { nodes: Node[]; params: Record<string, unknown> }[] };

type WalkEnd = 'ok' | 'failed' | 'stopped';

const SECTION_END = 1e9;

/** Runs a parsed playbook. Returns the stats and Ansible's exit code. */
export async function runPlaybook(pb: Playbook, opts: RunOptions): Promise<RunResult> {
  const prepared = await preparePlaybook(pb, opts);
  const modules = moduleRegistry();
  const templar = new Templar();
  const parser = new PlaybookParser(pb.file);
  const events = opts.events;
  const stats: Record<string, HostStats> = {};
  const states = new Map<string, HostState>();
  const state = (h: Host): HostState => {
    let s = states.get(h.name);
    if (!s) {
      s = newHostState(h);
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
  const ctx: RunContext = { opts, templar, events, states, state, parser, modules, stats, delegates: new Map() };

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
      for (const h of pp.hosts) {
        const s = state(h);
        s.playBecome = pp.play.become;
        s.ended = false;
        s.notified.clear();
      }
      let playEnded = false;
      for (const batch of batches(pp, templar, opts.extraVars)) {
        if (playEnded) break;
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
        // One walk per host through the play's tree; hosts at the same task run it together (linear strategy).
        const walkers = new Map<
          string,
          { host: Host; gen: Generator<Step, WalkEnd, Answer | undefined>; step?: Step }
        >();
        for (const h of active) {
          const gen = walkPlay(pp, state(h), ctx);
          const first = gen.next(undefined);
          walkers.set(h.name, { host: h, gen, ...(first.done ? {} : { step: first.value }) });
        }
        const batchSize = batch.length;
        while (!stop) {
          const live = [...walkers.values()].filter((w) => w.step !== undefined);
          if (live.length === 0) break;
          if (isCancelled()) {
            stop = true;
            break;
          }
          let pick = live[0]!;
          for (const w of live) if (compareKeys(w.step!.key, pick.step!.key) < 0) pick = w;
          const same = (w: (typeof live)[number]) =>
            compareKeys(w.step!.key, pick.step!.key) === 0 &&
            (w.step!.kind !== 'task' || pick.step!.kind !== 'task' || w.step!.task === pick.step!.task);
          const group = live.filter(same);
          const answers = new Map<string, Answer | undefined>();
          const step = pick.step!;
          let work: Promise<void>;
          if (step.kind === 'task')
            work = runStep(ctx, pp, batch, step.task, group, answers, stats, forks, () => stoppedHard);
          else if (step.kind === 'include')
            work = Promise.resolve(includeStep(ctx, pp, batch, step.node, group, answers, stats));
          else
            work = flushHandlers(
              ctx,
              pp,
              batch,
              group.map((w) => w.host),
              answers,
              stats,
              forks,
              () => stoppedHard,
            );
          const done = await finished(work);
          if (!done) {
            isCancelled();
            stop = true;
            break;
          }
          // end_play reaches every host of the play.
          if (
            step.kind === 'task' &&
            step.task.module === 'meta' &&
            [...answers.values()].some((a) => a && 'outcome' in a && a.outcome.result.end_play === true)
          ) {
            playEnded = true;
            for (const w of walkers.values()) {
              w.gen.return('stopped');
              w.step = undefined;
            }
            break;
          }
          for (const w of group) {
            const next = w.gen.next(answers.get(w.host.name));
            w.step = next.done ? undefined : next.value;
          }
          // any_errors_fatal and max_fail_percentage end the play for every host of it.
          const failedNow = group.filter((w) => state(w.host).failed || state(w.host).unreachable);
          const fatal =
            step.kind === 'task' && (step.task.anyErrorsFatal ?? pp.play.anyErrorsFatal) && failedNow.length > 0;
          const failedInBatch = batch.filter((h) => state(h).failed || state(h).unreachable).length;
          const overBudget =
            pp.play.maxFailPercentage !== undefined &&
            budgetExceeded(failedInBatch, batchSize, pp.play.maxFailPercentage);
          if (fatal || overBudget) {
            for (const h of pp.hosts) state(h).failed = state(h).failed || !state(h).unreachable;
            for (const w of walkers.values()) w.step = undefined;
            events.noMoreHosts();
            stop = true;
            break;
          }
          if (active.every((h) => state(h).failed || state(h).unreachable)) {
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
    await Promise.all([...states.values(), ...ctx.delegates.values()].map((s) => s.exec?.close().catch(() => {})));
  }
  events.recap(stats);
  if (cancelled !== undefined) return { stats, exitCode: EXIT.error, cancelled };
  const all = Object.values(stats);
  const exitCode = all.some((s) => s.unreachable > 0)
    ? EXIT.unreachable
    : all.some((s) => s.failed > 0) || [...states.values()].some((s) => s.failed)
      ? EXIT.failedHosts
      : EXIT.ok;
  return { stats, exitCode };
}

interface RunContext {
  opts: RunOptions;
  templar: Templar;
  events: PlayEvents;
  states: Map<string, HostState>;
  state: (h: Host) => HostState;
  parser: PlaybookParser;
  modules: Map<string, ModuleDef>;
  stats: Record<string, HostStats>;
  /** Hosts tasks are delegated to that are not in the play (localhost). */
  delegates: Map<string, HostState>;
}

/** One host's way through a play: sections, blocks (rescue, always), includes, with a handler flush after each section. */
function* walkPlay(pp: PreparedPlay, s: HostState, ctx: RunContext): Generator<Step, WalkEnd, Answer | undefined> {
  const env: WalkEnv = { params: [] };
  for (const [i, section] of pp.play.sections.entries()) {
    const end = yield* walkNodes(section, s, env, pp, ctx);
    if (end === 'stopped') return end;
    if (end === 'failed' && !pp.play.forceHandlers) return end;
    if (pp.play.handlers.length > 0 && s.notified.size > 0) {
      const a = yield { kind: 'flush', key: [i, SECTION_END], env };
      if (a && 'outcome' in a && a.outcome.status === 'failed') return 'failed';
    }
    if (end === 'failed') return end;
  }
  return 'ok';
}

function* walkNodes(
  nodes: readonly Node[],
  s: HostState,
  env: WalkEnv,
  pp: PreparedPlay,
  ctx: RunContext,
): Generator<Step, WalkEnd, Answer | undefined> {
  for (const node of nodes) {
    if (s.ended || s.unreachable) return 'stopped';
    if (node.kind === 'task') {
      if (!tagsSelected(node.tags, pp.play, ctx.opts)) continue;
      const a = yield { kind: 'task', task: node, key: node.key, env };
      const out = a && 'outcome' in a ? a.outcome : undefined;
      if (s.ended) return 'stopped';
      if (out?.status === 'unreachable' || s.unreachable) return 'stopped';
      if (out?.status === 'failed' && !out.ignored) {
        env.failed = {
          task: { name: node.name ?? '', action: node.module, ...(node.role ? { role: node.role.name } : {}) },
          result: out.result,
        };
        return 'failed';
      }
    } else if (node.kind === 'block') {
      const inner: WalkEnv = { params: env.params };
      let end = yield* walkNodes(node.block, s, inner, pp, ctx);
      if (end === 'failed' && node.rescue.length > 0) {
        // Rescued: the failure no longer counts against the host (Ansible's recap: failed=0 rescued=1).
        rescue(s, ctx);
        const rescueEnv: WalkEnv = { params: env.params, ...(inner.failed ? { failed: inner.failed } : {}) };
        end = yield* walkNodes(node.rescue, s, rescueEnv, pp, ctx);
        if (end === 'failed') env.failed = rescueEnv.failed;
      } else if (end === 'failed') env.failed = inner.failed;
      if (node.always.length > 0 && end !== 'stopped') {
        const wasFailed = s.failed;
        // always runs even for a failed host; its failure state is restored after.
        s.failed = false;
        const endAlways = yield* walkNodes(
          node.always,
          s,
          { params: env.params, ...(inner.failed ? { failed: inner.failed } : {}) },
          pp,
          ctx,
        );
        s.failed = s.failed || wasFailed;
        if (endAlways !== 'ok') end = endAlways;
      }
      if (end !== 'ok') return end;
    } else {
      if (!tagsSelected(node.tags, pp.play, ctx.opts)) continue;
      const a = yield { kind: 'include', node, key: node.key, env };
      if (!a) continue;
      if ('outcome' in a) {
        if (a.outcome.status === 'failed') return 'failed';
        continue;
      }
      for (const ex of a.expansions) {
        const end = yield* walkNodes(ex.nodes, s, { ...env, params: [...env.params, ex.params] }, pp, ctx);
        if (end !== 'ok') return end;
      }
    }
  }
  return 'ok';
}

function rescue(s: HostState, ctx: RunContext): void {
  const st = ctx.stats[s.host.name];
  if (st && st.failed > 0) {
    st.failed--;
    st.rescued++;
  }
  s.failed = false;
}

/** Runs one task on a group of hosts (or on the first one, for run_once) and records the outcomes. */
async function runStep(
  ctx: RunContext,
  pp: PreparedPlay,
  batch: Host[],
  task: Task,
  group: { host: Host; step?: Step }[],
  answers: Map<string, Answer | undefined>,
  stats: Record<string, HostStats>,
  forks: number,
  hard: () => boolean,
): Promise<void> {
  const { templar, events, opts, state } = ctx;
  const def = ctx.modules.get(task.module)!;
  if (task.module === 'meta') {
    metaStep(ctx, pp, task, group, answers);
    if (task.args.free_form === 'flush_handlers')
      await flushHandlers(
        ctx,
        pp,
        batch,
        group.map((w) => w.host),
        answers,
        stats,
        forks,
        hard,
      );
    return;
  }
  events.task(taskTitle(task, templar, opts.extraVars, pp), task.module);
  const firstEnv = group[0]?.step?.env ?? { params: [] };
  const runOnce =
    task.runOnce !== undefined &&
    isTrueWith(task.runOnce, templar, hostScope(ctx, state(group[0]!.host), task, pp, batch, {}, firstEnv));
  const hosts = runOnce ? group.slice(0, 1) : group;
  await pool(hosts, forks, async (w) => {
    const s = state(w.host);
    const env = w.step?.env ?? { params: [] };
    const out = await runTaskOnHost(task, def, s, pp, batch, ctx, env);
    if (hard()) return;
    record(s, out, task, stats, events);
    notify(s, task, out);
    answers.set(w.host.name, { outcome: out });
  });
  if (runOnce) {
    // run_once: the one result stands for every host of the batch (registered and notified on each).
    const first = answers.get(group[0]!.host.name);
    for (const w of group.slice(1)) {
      const s = state(w.host);
      if (first && 'outcome' in first) {
        if (task.register) s.setFacts[task.register] = state(group[0]!.host).setFacts[task.register];
        if (first.outcome.result.ansible_facts && task.module === 'set_fact')
          Object.assign(s.setFacts, first.outcome.result.ansible_facts);
        notify(s, task, first.outcome);
      }
      answers.set(w.host.name, first);
    }
  }
}

function notify(s: HostState, task: Task, out: Outcome): void {
  if (out.status !== 'changed') return;
  for (const n of task.notify) s.notified.add(n);
}

function metaStep(
  ctx: RunContext,
  pp: PreparedPlay,
  task: Task,
  group: { host: Host; step?: Step }[],
  answers: Map<string, Answer | undefined>,
): void {
  const action = String(task.args.free_form);
  for (const w of group) {
    const s = ctx.state(w.host);
    const scope = hostScope(ctx, s, task, pp, [], {}, w.step?.env ?? { params: [] });
    let applies = true;
    if (action !== 'flush_handlers')
      try {
        applies = task.when.every((c) => ctx.templar.evaluate(c, scope));
      } catch {
        applies = false;
      }
    const result: ModuleResult = { changed: false };
    if (applies) {
      if (action === 'end_host') s.ended = true;
      if (action === 'end_play' || action === 'end_batch') result.end_play = true;
      if (action === 'clear_facts') s.facts = {};
      if (action === 'clear_host_errors') s.failed = false;
    }
    answers.set(w.host.name, { outcome: { status: 'ok', result } });
  }
}

/** include_tasks / include_role on each host: its condition, its loop, its tasks (parsed now when the name is a template). */
function includeStep(
  ctx: RunContext,
  pp: PreparedPlay,
  batch: Host[],
  node: Include,
  group: { host: Host; step?: Step }[],
  answers: Map<string, Answer | undefined>,
  stats: Record<string, HostStats>,
): void {
  const { templar, events, state } = ctx;
  events.task(
    node.name ?? (node.what === 'role' ? `include_role : ${node.target}` : 'include_tasks'),
    `include_${node.what}`,
  );
  for (const w of group) {
    const s = state(w.host);
    const env = w.step?.env ?? { params: [] };
    const pseudo = includeAsTask(node);
    const scope = hostScope(ctx, s, pseudo, pp, batch, {}, env);
    const st = stats[s.host.name]!;
    try {
      if (!node.when.every((c) => templar.evaluate(c, scope))) {
        st.skipped++;
        events.result({ host: s.host.name, status: 'skipped' }, true);
        answers.set(w.host.name, { expansions: [] });
        continue;
      }
      let items: unknown[] | undefined;
      if (node.loop) items = loopItems(pseudo, templar, scope);
      const params = (templar.renderDeep(node.vars, scope) ?? {}) as Record<string, unknown>;
      const expansions: { nodes: Node[]; params: Record<string, unknown> }[] = [];
      for (const item of items ?? [undefined]) {
        const itemParams = items ? { ...params, [node.loopVar]: item } : params;
        const target = toText(templar.render(node.target, hostScopeWith(scope, node.loopVar, item)));
        const nodes = node.tasks ?? loadInclude(ctx, node, target);
        expansions.push({ nodes, params: itemParams });
        // Ansible counts each included tasks file as ok on the host (an included role: nothing).
        if (node.what === 'tasks') {
          st.ok++;
          events.result(
            { host: s.host.name, status: 'ok', item: items ? `${target}: ${toText(item)}` : target },
            false,
          );
        }
      }
      answers.set(w.host.name, { expansions });
    } catch (error) {
      const out: Outcome = { status: 'failed', result: { failed: true, msg: describe(error, pseudo) } };
      record(s, out, pseudo, stats, events);
      answers.set(w.host.name, { outcome: out });
    }
  }
}

function loadInclude(ctx: RunContext, node: Include, target: string): Node[] {
  const p = ctx.parser;
  const nodes =
    node.what === 'role'
      ? (p.role(
          { file: node.at.file, doc: { value: null, errors: [], lineOf: () => node.at.line }, at: () => node.at },
          target,
          [],
          node.inherited,
          {},
          node.key,
          node.roleOptions ?? {},
        ) ?? [])
      : p.taskFile(p.resolveFile(target, node.at, node.inherited, 'tasks'), node.inherited, node.key, node.at);
  const issues = p.issues.list;
  if (issues.length > 0) throw new InputError(issues, `cannot include ${target}`);
  return nodes;
}

function includeAsTask(node: Include): Task {
  return {
    kind: 'task',
    key: node.key,
    ...(node.name ? { name: node.name } : {}),
    module: `include_${node.what}`,
    args: {},
    at: node.at,
    ...(node.loop ? { loop: node.loop } : {}),
    loopVar: node.loopVar,
    when: node.when,
    ignoreErrors: false,
    noLog: false,
    tags: node.tags,
    vars: node.vars,
    notify: [],
    listen: [],
    loopVars: node.inherited.loopVars,
    ...(node.inherited.role ? { role: node.inherited.role } : {}),
    lines: node.lines,
    argLines: {},
  };
}

/** Runs the notified handlers, in the order they are defined, on the hosts that notified them. */
async function flushHandlers(
  ctx: RunContext,
  pp: PreparedPlay,
  batch: Host[],
  hosts: Host[],
  answers: Map<string, Answer | undefined>,
  stats: Record<string, HostStats>,
  forks: number,
  hard: () => boolean,
): Promise<void> {
  const { state, events, templar, opts } = ctx;
  for (const h of pp.play.handlers) {
    const names = [
      ...(h.name !== undefined ? [h.name, ...(h.role ? [`${h.role.name} : ${h.name}`] : [])] : []),
      ...h.listen,
    ];
    const targets = hosts.filter((host) => {
      const s = state(host);
      return (!s.failed || pp.play.forceHandlers) && !s.unreachable && names.some((n) => s.notified.has(n));
    });
    if (targets.length === 0) continue;
    for (const host of targets) for (const n of names) state(host).notified.delete(n);
    if (!tagsSelected(h.tags, pp.play, opts) && h.tags.length > 0) continue;
    events.task(taskTitle(h, templar, opts.extraVars, pp), h.module, true);
    const def = ctx.modules.get(h.module)!;
    await pool(targets, forks, async (host) => {
      const s = state(host);
      const out = await runTaskOnHost(h, def, s, pp, batch, ctx, { params: [] });
      if (hard()) return;
      record(s, out, h, stats, events);
      notify(s, h, out);
      if (out.status === 'failed' && !out.ignored) answers.set(host.name, { outcome: out });
    });
  }
  for (const host of hosts)
    if (!answers.has(host.name)) answers.set(host.name, { outcome: { status: 'ok', result: {} } });
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
        : { detail }),
      ...(out.ignored ? { ignored: true } : {}),
    },
    true,
  );
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

function isTrueWith(v: unknown, templar: Templar, scope: Scope): boolean {
  if (typeof v === 'boolean') return v;
  try {
    return ansibleBool(typeof v === 'string' ? toText(templar.render(v, scope)) : v);
  } catch {
    return false;
  }
}

function tagsSelected(taskTags: readonly string[], play: Play, opts: RunOptions): boolean {
  const tags = new Set([...play.tags, ...taskTags]);
  if (tags.has('always') && !(opts.skipTags ?? []).includes('always')) return true;
  if ((opts.skipTags ?? []).some((t) => tags.has(t))) return false;
  if (tags.has('never') && !(opts.tags ?? []).some((t) => tags.has(t))) return false;
  if (!opts.tags || opts.tags.length === 0 || opts.tags.includes('all')) return true;
  if (opts.tags.includes('tagged') && tags.size > 0) return true;
  if (opts.tags.includes('untagged') && tags.size === 0) return true;
  return opts.tags.some((t) => tags.has(t));
}

function taskTitle(task: Task, templar: Templar, extra: Record<string, unknown>, pp: PreparedPlay): string {
  const prefix = task.role ? `${task.role.name} : ` : '';
  if (task.name === undefined) return `${prefix}${task.module}`;
  try {
    // Task names are templated with play-level variables only (host and loop variables are not known yet).
    const layers = [extra, pp.varsFiles, pp.play.vars];
    return (
      prefix +
      toText(
        templar.render(task.name, {
          lookup: (n) => {
            for (const l of layers) if (Object.hasOwn(l, n)) return { value: l[n] };
            return undefined;
          },
        }),
      )
    );
  } catch {
    return prefix + task.name;
  }
}

/** The play's batches: `serial` as a number, a percentage or a list of those (the one batch scheduler's rules). */
function* batches(pp: PreparedPlay, templar: Templar, extra: Record<string, unknown>): Generator<Host[]> {
  let sizes = [pp.hosts.length];
  if (pp.play.serial !== undefined) {
    const scope: Scope = { lookup: (n) => (Object.hasOwn(extra, n) ? { value: extra[n] } : undefined) };
    const raw = [pp.play.serial]
      .flat()
      .map((v) => toText(templar.render(String(v), scope)).trim())
      .join(',');
    const parsed = parseSerial(raw);
    if ('error' in parsed) throw new UserError(`${pp.play.at.file}:${pp.play.at.line}: serial ${parsed.error}`);
    sizes = batchSizes(parsed, pp.hosts.length);
  }
  let i = 0;
  for (const size of sizes) {
    yield pp.hosts.slice(i, i + size);
    i += size;
  }
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

function hostScope(
  ctx: RunContext,
  s: HostState,
  task: Task,
  pp: PreparedPlay,
  batch: Host[],
  states: { loopVar?: string; item?: unknown; index?: number },
  env: WalkEnv,
): Scope {
  const { opts } = ctx;
  const hostvars: Record<string, unknown> = {};
  for (const h of opts.inventory.hosts) {
    const hs = ctx.states.get(h.name);
    hostvars[h.name] = {
      ...h.vars,
      ...(hs ? { ...hs.facts, ...hs.includedVars, ...hs.setFacts } : {}),
      inventory_hostname: h.name,
    };
  }
  const magic: Record<string, unknown> = {
    inventory_hostname: s.host.name,
    inventory_hostname_short: s.host.name.split('.')[0],
    group_names: s.host.groups.filter((g) => g !== 'all' && g !== 'ungrouped'),
    groups: Object.fromEntries(Object.entries(opts.inventory.groups).map(([g, v]) => [g, v.hosts])),
    ansible_check_mode: opts.check === true,
    ansible_diff_mode: opts.diff === true,
    ansible_play_hosts: batch.map((h) => h.name).filter((h) => !ctx.states.get(h)?.failed),
    ansible_play_batch: batch.map((h) => h.name),
    ansible_play_hosts_all: pp.hosts.map((h) => h.name),
    ansible_play_name: pp.name,
    play_hosts: batch.map((h) => h.name),
    playbook_dir: dirname(resolve(pp.play.at.file)),
    ansible_version: { full: '2.14.0', major: 2, minor: 14, revision: 0, string: '2.14.0 (dyce)' },
    ansible_run_tags: opts.tags?.length ? opts.tags : ['all'],
    ansible_skip_tags: opts.skipTags ?? [],
    ...(task.role ? { role_name: task.role.name, role_path: task.role.dir } : {}),
    omit: OMIT,
  };
  const unsafeMagic: Record<string, unknown> = {
    hostvars,
    ...(env.failed ? { ansible_failed_task: env.failed.task, ansible_failed_result: env.failed.result } : {}),
  };
  // Data from hosts (facts, registered results, set_fact, loop items) and secrets are unsafe: never rendered.
  const layers: [Record<string, unknown>, boolean][] = [
    [opts.unsafeVars ?? {}, true],
    [opts.extraVars, false],
    ...[...env.params].reverse().map((p): [Record<string, unknown>, boolean] => [p, true]),
    [task.role?.params ?? {}, false],
    [s.setFacts, true],
    [s.includedVars, false],
    [task.vars, false],
    [task.role?.vars ?? {}, false],
    [pp.varsFiles, false],
    [pp.play.vars, false],
    [s.facts, true],
    [s.host.vars, false],
    [task.role?.defaults ?? {}, false],
  ];
  const scope: Scope = {
    lookup(n) {
      if (states.loopVar !== undefined && n === states.loopVar) return { value: states.item, unsafe: true };
      if (n === 'ansible_loop_var' && states.loopVar !== undefined) return { value: states.loopVar };
      if (task.indexVar && n === task.indexVar && states.index !== undefined) return { value: states.index };
      if (Object.hasOwn(unsafeMagic, n)) return { value: unsafeMagic[n], unsafe: true };
      if (Object.hasOwn(magic, n) && n !== 'omit') return { value: magic[n] };
      for (const [l, unsafe] of layers) if (Object.hasOwn(l, n)) return { value: l[n], unsafe };
      if (n === 'omit') return { value: OMIT };
      return undefined;
    },
    plugin: (name, terms, options) =>
      runLookup(
        {
          templar: ctx.templar,
          scope: () => scope,
          playbookDir: dirname(resolve(pp.play.at.file)),
          ...(task.role ? { roleDir: task.role.dir } : {}),
        },
        name,
        terms,
        options,
      ),
  };
  return scope;
}

function where(task: Task, key?: string): string {
  const line = (key && (task.argLines[key] ?? task.lines[key])) || task.at.line;
  return `${task.at.file}:${line}`;
}

function describe(error: unknown, task: Task, key?: string): string {
  if (error instanceof UndefinedVariableError || error instanceof TemplateError)
    return `${where(task, key)}: task "${task.name ?? task.module}": ${error.message}`;
  if (error instanceof InputError) return error.issues.join('; ');
  return (error as Error).message;
}

/** The items of a task's loop (loop/with_items/with_list, with_sequence, with_dict), rendered for this host. */
function loopItems(task: Task, templar: Templar, scope: Scope): unknown[] {
  const loop = task.loop!;
  try {
    if (loop.kind === 'sequence') {
      const seq = parseSequence(toText(templar.render(loop.spec, scope)));
      if ('error' in seq) throw new TemplateError(seq.error);
      return seq.items;
    }
    const v = templar.renderDeep(loop.items, scope);
    if (loop.kind === 'dict') {
      if (!v || typeof v !== 'object' || Array.isArray(v))
        throw new TemplateError(`with_dict needs a mapping, got ${JSON.stringify(v)}`);
      return Object.entries(v).map(([key, value]) => ({ key, value }));
    }
    if (!Array.isArray(v)) throw new TemplateError(`the loop value must be a list, got ${JSON.stringify(v)}`);
    return v;
  } catch (error) {
    throw new TemplateError(describe(error, task, loopKeyword(task)));
  }
}

async function runTaskOnHost(
  task: Task,
  def: ModuleDef,
  s: HostState,
  pp: PreparedPlay,
  batch: Host[],
  ctx: RunContext,
  env: WalkEnv,
): Promise<Outcome> {
  const { templar, events } = ctx;
  const base = hostScope(ctx, s, task, pp, batch, {}, env);
  // Items first: a loop over an empty list skips without connecting.
  let items: unknown[] | undefined;
  if (task.loop) {
    try {
      items = loopItems(task, templar, base);
    } catch (error) {
      return { status: 'failed', result: { failed: true, msg: (error as Error).message } };
    }
  }
  const runOne = async (scopeState: { loopVar?: string; item?: unknown; index?: number }): Promise<Outcome> => {
    const scope = hostScope(ctx, s, task, pp, batch, scopeState, env);
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
    if (task.module === 'include_vars') return includeVars(task, s, scope, ctx, pp);
    let target = s;
    if (task.delegateTo !== undefined) {
      try {
        target = delegateState(ctx, toText(templar.render(task.delegateTo, scope)));
      } catch (error) {
        return { status: 'failed', result: { failed: true, msg: describe(error, task, 'delegate_to') } };
      }
    }
    return guardConnection(target, ctx.opts, () => invokeWithRetries(task, def, s, target, scope, ctx));
  };

  let out: Outcome;
  if (items === undefined) out = await runOne({});
  else {
    const results: Record<string, unknown>[] = [];
    let anyChanged = false;
    let anyFailed = false;
    let allSkipped = items.length > 0;
    for (const [index, item] of items.entries()) {
      const r = await runOne({ loopVar: task.loopVar, item, index });
      if (r.status === 'unreachable') return r;
      const label = itemLabel(
        task,
        item,
        templar,
        hostScope(ctx, s, task, pp, batch, { loopVar: task.loopVar, item, index }, env),
      );
      results.push({
        ...r.result,
        [task.loopVar]: item,
        ansible_loop_var: task.loopVar,
        ...(task.indexVar ? { [task.indexVar]: index, ansible_index_var: task.indexVar } : {}),
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

/** The host a task is delegated to: `localhost` is this machine, any other name a host of the inventory. */
function delegateState(ctx: RunContext, name: string): HostState {
  const inv = ctx.opts.inventory.hosts.find((h) => h.name === name);
  if (inv) return ctx.state(inv);
  if (name === 'localhost' || name === '127.0.0.1') {
    // This machine is not a host of the play: it has no stats of its own.
    let local = ctx.delegates.get(name);
    if (!local) {
      local = newHostState({
        name: 'localhost',
        address: '127.0.0.1',
        port: 22,
        become: false,
        becomeUser: 'root',
        connection: 'local',
        groups: ['all', 'ungrouped'],
        vars: {},
        source: { file: '(implicit localhost)', line: 1 },
      });
      ctx.delegates.set(name, local);
    }
    return local;
  }
  throw new TemplateError(`delegate_to: no host "${name}" in the inventory`);
}

/** include_vars: a YAML file of the playbook (or role) read on the runner; its variables are trusted like play vars. */
function includeVars(task: Task, s: HostState, scope: Scope, ctx: RunContext, pp: PreparedPlay): Outcome {
  try {
    const args = ctx.templar.renderDeep(task.args, scope) as Record<string, unknown>;
    const file = toText(args.file ?? args.free_form);
    const path = resolveVarsFile(file, task, pp.play.at.file);
    const vars = readVarsFile(path);
    if (vars === undefined) throw new UserError(`${where(task, 'file')}: include_vars: cannot read ${path}`);
    if (typeof args.name === 'string') s.includedVars[args.name] = vars;
    else Object.assign(s.includedVars, vars);
    return { status: 'ok', result: { changed: false, ansible_included_var_files: [path], ansible_facts: vars } };
  } catch (error) {
    return fail(task, ctx.templar, scope, describe(error, task, 'file'));
  }
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
  return isTrueWith(task.ignoreErrors, templar, scope);
}

function numberWith(v: unknown, dflt: number, templar: Templar, scope: Scope): number {
  if (v === undefined) return dflt;
  const n = Number(typeof v === 'string' ? toText(templar.render(v, scope)) : v);
  return Number.isFinite(n) ? n : dflt;
}

/** until/retries/delay around one run of the module, as Ansible's task executor. */
async function invokeWithRetries(
  task: Task,
  def: ModuleDef,
  s: HostState,
  target: HostState,
  scope: Scope,
  ctx: RunContext,
): Promise<Outcome> {
  if (!task.until) return invoke(task, def, s, target, scope, ctx);
  const { templar } = ctx;
  let retries = task.retries === undefined ? 3 : numberWith(task.retries, 3, templar, scope);
  retries = task.retries === undefined ? retries : retries <= 0 ? 1 : retries + 1;
  const delay = numberWith(task.delay, 5, templar, scope);
  let out: Outcome | undefined;
  for (let attempt = 1; attempt <= retries; attempt++) {
    out = await invoke(task, def, s, target, scope, ctx, attempt);
    if (out.status === 'unreachable') return out;
    const withResult = task.register ? hostScopeWith(scope, task.register, out.result) : scope;
    let done = false;
    try {
      done = task.until.every((c) => templar.evaluate(c, withResult));
    } catch (error) {
      return fail(task, templar, scope, describe(error, task, 'until'));
    }
    if (done) return out;
    if (attempt < retries) {
      ctx.events.warning(
        `FAILED - RETRYING: [${s.host.name}]: ${task.name ?? task.module} (${retries - attempt} retries left).`,
      );
      if (delay > 0) await new Promise((r) => setTimeout(r, delay * 1000));
    }
  }
  const result = { ...out!.result, attempts: retries - 1, failed: true };
  const ignored = isIgnored(task, templar, scope);
  return { status: 'failed', result, ...(ignored ? { ignored } : {}) };
}

/** Templates the arguments, validates them with the module's schema, runs the module, applies changed_when/failed_when. */
async function invoke(
  task: Task,
  def: ModuleDef,
  s: HostState,
  target: HostState,
  scope: Scope,
  ctx: RunContext,
  attempt?: number,
): Promise<Outcome> {
  const { templar, events, opts } = ctx;
  let args: Record<string, unknown>;
  let env: Record<string, string> = {};
  let check = opts.check === true;
  try {
    if (task.checkMode !== undefined) check = isTrueWith(task.checkMode, templar, scope);
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
  const written = { ...args };
  for (const [alias, main] of Object.entries(def.aliases ?? {}))
    if (alias in args) {
      if (!(main in args)) args[main] = args[alias];
      delete args[alias];
    }
  const parsed = def.schema.safeParse(args);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const canonical = String(issue.path[0] ?? '');
    // Name the parameter as the playbook wrote it (an alias), at the line of its key.
    const asWritten =
      Object.keys(written).find((k) => k === canonical) ??
      Object.entries(def.aliases ?? {}).find(([a, m]) => m === canonical && a in written)?.[0] ??
      canonical;
    const msg = parsed.error.issues
      .map((i) => {
        const p = [asWritten, ...i.path.slice(1)].filter((x) => x !== '').join('.');
        return `${p || 'arguments'}: ${i.message}`;
      })
      .join('; ');
    return fail(task, templar, scope, `${where(task, asWritten)}: ${def.name}: ${msg}`);
  }
  const exec = target.exec!;
  const become = task.become ?? (s.playBecome || target.host.become);
  const mctx = {
    host: target.host,
    exec,
    check,
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
      if (target.home === undefined) {
        const r = await exec.run(homeDir(), { sudo: become, label: 'home directory' });
        target.home = r.stdout.trim() || '/root';
      }
      return target.home;
    },
    knowHome: (home: string) => {
      target.home = home;
    },
  };
  let result: ModuleResult;
  try {
    result = await def.run(parsed.data, mctx);
  } catch (error) {
    if (error instanceof ModuleFailure) result = { failed: true, changed: false, msg: error.message, ...error.extra };
    else if (error instanceof UndefinedVariableError || error instanceof TemplateError)
      result = { failed: true, changed: false, msg: describe(error, task) };
    else if (error instanceof UserError)
      return { status: 'unreachable', result: { unreachable: true, msg: error.message } };
    else throw error;
  }
  if (attempt !== undefined) result = { ...result, attempts: attempt };
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
  return { ...scope, lookup: (n) => (n === name ? { value, unsafe: true } : scope.lookup(n)) };
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
