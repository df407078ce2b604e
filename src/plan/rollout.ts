import type { RunSpec } from '../commands/docker.js';
import { formatDuration } from '../util/duration.js';
import { LABEL } from './desired.js';
import type { Plan, Step } from './plan.js';

/**
 * The rolling replacement behind a proxy, as data. Pure: a plan (create / replace / start / remove / keep) and
 * the rollout settings in, an ordered list of rollout steps out, plus the steps that undo any prefix of it.
 *
 * Why this shape:
 * - A replacement cannot bind its predecessor's port, so slot i alternates between two ports
 *   (`host-port+i-1` and `host-port+replicas+i-1`, plus the host's port base). The old container is renamed out of
 *   the replica's name first (`<name>-old-<id>`), so the new one takes the name `<app><i>` and keeps it.
 * - Old replicas keep running (out of the upstream) until every batch has passed its gate and been switched in.
 *   Rolling back is then instant: point the upstream back and remove the new containers; the old ones never stopped.
 * - Every old replica is stopped by ONE `docker stop` at the end, after one drain: Docker stops them in
 *   parallel, so their stop timeouts never add up (Ansible's stop -> remove -> create per replica serialises them).
 */

export interface RolloutSettings {
  /** Replicas replaced (started, gated, switched) together: a batch. At least 1. */
  maxUnavailable: number;
  /** How long old replicas keep running after they left the upstream, for in-flight requests to finish. */
  drainMs: number;
  /** Host port of replica 1 before the host's port base (`host-port`, else `port`). */
  firstPort: number;
  replicas: number;
  /** dyce_port_base of the host. */
  portBase: number;
  /** With host networking, the env var that tells a replica its port. */
  portEnv: string;
}

/** A replica that will serve on `port` once its gate passes. */
export interface SlotTarget {
  slot: number;
  name: string;
  port: number;
}

export type RolloutStep =
  /** Renames the old container out of the replica's name, so the new one can take it. */
  | { kind: 'retire'; slot: number; name: string; to: string; version: string | undefined }
  /** `run`: a new container on `port`; `start`: an existing stopped container with the desired spec. */
  | { kind: 'start'; slot: number; mode: 'run' | 'start'; name: string; port: number; run: RunSpec; version: string }
  /** Waits until every target answers its health endpoint (in parallel). */
  | { kind: 'gate'; targets: SlotTarget[] }
  /** Rewrites the upstream to exactly these ports (in slot order), tests the config and reloads the proxy. */
  | { kind: 'switch'; ports: number[]; reason: string }
  /**
   * Waits for requests in flight on the replicas that left the upstream (their host ports): until none has an open
   * connection, at most `ms`.
   */
  | { kind: 'drain'; ms: number; ports: number[] }
  /** Stops (in one command, so in parallel) and removes the replicas that left the upstream. */
  | { kind: 'stop-old'; names: string[] };

export interface Rollout {
  app: string;
  steps: RolloutStep[];
  /** The upstream before the rollout. */
  initialPorts: number[];
  /** What a rollback points the upstream back to: the initial one without surplus replicas (a scale-down). */
  rollbackPorts: number[];
  /** The upstream after it. */
  finalPorts: number[];
  /** The drain applied after any switch that takes replicas out (the rollout's end, or a rollback). */
  drainMs: number;
  /** Index of the first step after which the rollout is committed (no rollback): the final `stop-old`, or steps.length. */
  commitIndex: number;
}

export type RollbackStep =
  | { kind: 'switch'; ports: number[]; reason: string }
  | { kind: 'drain'; ms: number; ports: number[] }
  /** Removes the new containers (`docker rm --force`: they no longer receive traffic). Missing ones are fine. */
  | { kind: 'remove-new'; names: string[] }
  /** Stops containers that were stopped before the rollout started them. */
  | { kind: 'stop'; names: string[] }
  /** Gives the old containers their names back. */
  | { kind: 'restore'; renames: { from: string; to: string }[] };

/** The two ports slot i (1-based) alternates between. */
export function slotPorts(
  s: Pick<RolloutSettings, 'firstPort' | 'replicas' | 'portBase'>,
  slot: number,
): [number, number] {
  const a = s.portBase + s.firstPort + slot - 1;
  return [a, a + s.replicas];
}

/**
 * The port a new replica of the slot takes: the one its predecessor does not hold. An old container whose port
 * is unknown (adopted, or made before Dyce labelled ports) is assumed to hold the slot's first port.
 */
export function nextPort(
  s: Pick<RolloutSettings, 'firstPort' | 'replicas' | 'portBase'>,
  slot: number,
  oldPort: number | undefined,
): number {
  const [a, b] = slotPorts(s, slot);
  return oldPort === a || oldPort === undefined ? b : a;
}

/** The name an old container is given while its successor takes over: unique per container, so reruns never collide. */
export function retiredName(name: string, id: string): string {
  return `${name}-old-${id.slice(0, 12)}`;
}

/** Pure: the run spec of a replica moved to another host port (the published port, or port-env with host networking). */
export function withPort(run: RunSpec, port: number, portEnv: string): RunSpec {
  const moved: RunSpec = {
    ...run,
    labels: { ...run.labels, [LABEL.port]: String(port) },
    env: { ...run.env },
    volumes: [...run.volumes],
    logOptions: { ...run.logOptions },
    command: [...run.command],
  };
  // The spec-hash label stays the one computed for the slot's first port: a replica on the alternate port is
  // the same spec, so the next run keeps it instead of replacing it again.
  if (run.publish) moved.publish = { ...run.publish, hostPort: port };
  if (run.network === 'host') moved.env[portEnv] = String(port);
  return moved;
}

/** Pure: the plan's steps -> the rolling sequence. Throws on settings no rollout can honour. */
export function planRollout(plan: Plan, settings: RolloutSettings): Rollout {
  if (!Number.isInteger(settings.maxUnavailable) || settings.maxUnavailable < 1)
    throw new RangeError(`max-unavailable must be a whole number >= 1, got ${settings.maxUnavailable}`);
  // Who is in the upstream, by container name: its port and its slot (the upstream lists them in slot order).
  const serving = new Map<string, { port: number; slot: number }>();
  const serve = (name: string, slot: number, port: number | undefined) => {
    if (port !== undefined) serving.set(name, { port, slot });
  };
  const surplus: string[] = [];
  type Move = Extract<Step, { kind: 'create' | 'replace' | 'start' }>;
  const moves: Move[] = [];
  for (const s of plan.steps) {
    if (s.kind === 'keep') serve(s.replica.name, s.replica.replica, s.container.port ?? s.replica.hostPort);
    else if (s.kind === 'remove') {
      if (s.container.running)
        serve(s.container.name, s.container.replica ?? Number.MAX_SAFE_INTEGER, s.container.port);
      surplus.push(s.container.name);
    } else {
      // The old replica serves (under its retired name, from the `retire` step on) until the switch.
      if (s.kind === 'replace' && s.old.running)
        serve(retiredName(s.old.name, s.old.id), s.replica.replica, s.old.port ?? s.replica.hostPort);
      moves.push(s);
    }
  }
  const initialPorts = portsOf(serving);
  const steps: RolloutStep[] = [];
  const olds: string[] = [];
  // Surplus replicas (a scale-down) leave first: out of the upstream, drained, stopped. Their ports may be the
  // alternate ports of the remaining slots (slot ports depend on the replica count), so they must be free first.
  if (surplus.length) {
    const ports = surplus.flatMap((n) => (serving.has(n) ? [serving.get(n)!.port] : []));
    for (const name of surplus) serving.delete(name);
    if (ports.length) {
      steps.push({ kind: 'switch', ports: portsOf(serving), reason: `${surplus.join(', ')} out` });
      steps.push({ kind: 'drain', ms: settings.drainMs, ports });
    }
    steps.push({ kind: 'stop-old', names: surplus });
  }
  const rollbackPorts = portsOf(serving);

  for (let b = 0; b < moves.length; b += settings.maxUnavailable) {
    const batch = moves.slice(b, b + settings.maxUnavailable);
    const targets: SlotTarget[] = [];
    for (const m of batch) {
      const slot = m.replica.replica;
      if (m.kind === 'start') {
        const port = m.container.port ?? m.replica.hostPort ?? slotPorts(settings, slot)[0];
        steps.push({
          kind: 'start',
          slot,
          mode: 'start',
          name: m.replica.name,
          port,
          run: m.replica.run,
          version: m.replica.version,
        });
        targets.push({ slot, name: m.replica.name, port });
        continue;
      }
      let port = slotPorts(settings, slot)[0];
      if (m.kind === 'replace') {
        const to = retiredName(m.old.name, m.old.id);
        steps.push({ kind: 'retire', slot, name: m.old.name, to, version: m.old.version });
        olds.push(to);
        port = nextPort(settings, slot, m.old.port);
      }
      steps.push({
        kind: 'start',
        slot,
        mode: 'run',
        name: m.replica.name,
        port,
        run: withPort(m.replica.run, port, settings.portEnv),
        version: m.replica.version,
      });
      targets.push({ slot, name: m.replica.name, port });
    }
    steps.push({ kind: 'gate', targets });
    for (const m of batch) {
      if (m.kind === 'replace') serving.delete(retiredName(m.old.name, m.old.id));
    }
    for (const t of targets) serve(t.name, t.slot, t.port);
    steps.push({
      kind: 'switch',
      ports: portsOf(serving),
      reason: `${targets.map((t) => `${t.name} on ${t.port}`).join(', ')} in`,
    });
  }
  const finalPorts = portsOf(serving);
  let commitIndex = steps.length;
  if (olds.length) {
    const kept = new Set(finalPorts);
    steps.push({ kind: 'drain', ms: settings.drainMs, ports: rollbackPorts.filter((p) => !kept.has(p)) });
    commitIndex = steps.length;
    steps.push({ kind: 'stop-old', names: olds });
  }
  return { app: plan.app, steps, initialPorts, rollbackPorts, finalPorts, drainMs: settings.drainMs, commitIndex };
}

/**
 * Pure: what undoes the rollout when step `failedAt` failed or was interrupted (steps before it completed; the
 * failed one may have half-happened, so it is undone too, with commands that tolerate what did not happen).
 * Once the final `stop-old` has begun, the rollout is committed: nothing to undo (returns []).
 * `notAttempted`: indices up to failedAt that never began (a batch's replicas start together, so a failure in one
 * slot may come with another slot's step not begun: e.g. a start whose rename failed, which must not be undone, as
 * the name it would remove is still the old replica's).
 */
export function planRollback(
  rollout: Rollout,
  failedAt: number,
  notAttempted: ReadonlySet<number> = new Set(),
): RollbackStep[] {
  if (failedAt >= rollout.commitIndex) return [];
  const touched = rollout.steps
    .slice(0, Math.min(failedAt + 1, rollout.steps.length))
    .filter((_, k) => !notAttempted.has(k));
  const out: RollbackStep[] = [];
  if (touched.some((s) => s.kind === 'switch')) {
    out.push({ kind: 'switch', ports: rollout.rollbackPorts, reason: 'rollback: the previous replicas back in' });
    // The new replicas served requests after the switch: let those finish before removing them.
    const back = new Set(rollout.rollbackPorts);
    const ports = touched.flatMap((s) => (s.kind === 'start' && !back.has(s.port) ? [s.port] : []));
    out.push({ kind: 'drain', ms: rollout.drainMs, ports });
  }
  const started = touched.filter((s): s is Extract<RolloutStep, { kind: 'start' }> => s.kind === 'start');
  const created = started.filter((s) => s.mode === 'run').map((s) => s.name);
  const restarted = started.filter((s) => s.mode === 'start').map((s) => s.name);
  if (created.length) out.push({ kind: 'remove-new', names: created });
  if (restarted.length) out.push({ kind: 'stop', names: restarted });
  const retired = touched.filter((s): s is Extract<RolloutStep, { kind: 'retire' }> => s.kind === 'retire');
  if (retired.length) out.push({ kind: 'restore', renames: retired.map((s) => ({ from: s.to, to: s.name })) });
  return out;
}

/** One line per rollout step, for logs, dry runs and the summary. */
export function describeRolloutStep(s: RolloutStep | RollbackStep): string {
  switch (s.kind) {
    case 'retire':
      return `${s.name}: renamed ${s.to} (${s.version ?? 'unknown version'}, keeps serving until the switch)`;
    case 'start':
      return s.mode === 'run'
        ? `${s.name}: start ${s.version} on port ${s.port}`
        : `${s.name}: start the stopped container (port ${s.port})`;
    case 'gate':
      return `health gate: ${s.targets.map((t) => `${t.name} (${t.port})`).join(', ')}`;
    case 'switch':
      return `upstream -> ${s.ports.join(', ') || '(none)'} (${s.reason})`;
    case 'drain':
      return `drain ${s.ports.length ? `port${s.ports.length > 1 ? 's' : ''} ${s.ports.join(', ')}` : ''} (until no request is in flight, at most ${formatDuration(s.ms)})`;
    case 'stop-old':
      return `stop and remove ${s.names.join(', ')} (one docker stop: in parallel)`;
    case 'remove-new':
      return `remove ${s.names.join(', ')}`;
    case 'stop':
      return `stop ${s.names.join(', ')}`;
    case 'restore':
      return `rename ${s.renames.map((r) => `${r.from} -> ${r.to}`).join(', ')}`;
  }
}

/** The containers a rollout leaves as replicas that are not in the plan's observed state (for reports). */
export function rolloutTargets(rollout: Rollout): SlotTarget[] {
  return rollout.steps.flatMap((s) => (s.kind === 'gate' ? s.targets : []));
}

function portsOf(serving: Map<string, { port: number; slot: number }>): number[] {
  return [...serving.entries()]
    .sort(([a, x], [b, y]) => x.slot - y.slot || (a < b ? -1 : a > b ? 1 : 0))
    .map(([, v]) => v.port);
}

/** A file of Dyce's that nginx needs and that is missing or was edited: rewritten (then nginx -t and reload). */
export type NginxRepair = { kind: 'write-upstream'; ports: number[] } | { kind: 'install-site' };

/**
 * Pure: the nginx files a run rewrites beside the rollout's own switches. `current` is what the host holds,
 * `want` the upstream text for the final ports and the site Dyce renders (none: the user's own site). Without
 * container steps the upstream is rewritten only when it differs; with them, the switches write it anyway. The
 * site goes in once the upstream exists (it names it), so only when there are replicas to route to.
 */
export function planNginxRepairs(
  rollout: Pick<Rollout, 'steps' | 'finalPorts'>,
  current: { upstream?: string; site?: string },
  want: { upstream: string | undefined; site?: string },
): NginxRepair[] {
  const repairs: NginxRepair[] = [];
  if (rollout.finalPorts.length === 0) return repairs;
  if (rollout.steps.length === 0 && current.upstream !== want.upstream)
    repairs.push({ kind: 'write-upstream', ports: rollout.finalPorts });
  if (want.site !== undefined && current.site !== want.site) repairs.push({ kind: 'install-site' });
  return repairs;
}

export function describeNginxRepair(r: NginxRepair): string {
  return r.kind === 'write-upstream' ? `upstream -> ${r.ports.join(', ')}` : 'install the site config';
}
