import { dockerRun, dockerStart, dockerStop, type RunSpec } from '../commands/docker.js';
import {
  installFromStdin,
  NGINX_RELOAD_FAILED,
  NGINX_TEST_FAILED,
  type NginxLayout,
  parseAppConfigs,
  RELOAD_CONFIRMED,
  readAppConfigs,
  removeConfig,
  renderUpstream,
  sitePath,
  upstreamPath,
} from '../commands/nginx.js';
import {
  awaitNoConnections,
  NO_SS,
  RETIRE_FAILED,
  removeNewReplicas,
  restoreName,
  retireAndRun,
  STOP_FAILED,
  STOPPED,
  stopAndRemove,
} from '../commands/replica.js';
import type { Reporter } from '../github/reporter.js';
import {
  describeNginxRepair,
  describeRolloutStep,
  type NginxRepair,
  planNginxRepairs,
  planRollback,
  type RollbackStep,
  type Rollout,
  type RolloutStep,
  type SlotTarget,
} from '../plan/rollout.js';
import { type Executor, lastLines } from '../remote/executor.js';
import { formatDuration } from '../util/duration.js';
import { errorMessage, UserError } from '../util/errors.js';
import { everyFewSeconds, progressInterval } from '../util/progress.js';
import {
  containerLogTail,
  type Dial,
  describeCheck,
  dialerFor,
  type GateResult,
  type HealthCheck,
  sleep,
  waitHealthy,
} from './health.js';

/**
 * Applies a rollout (src/plan/rollout.ts) on one host: start, gate, switch nginx, drain, stop; and, when a gate
 * fails, a command fails or the deploy is cancelled before the rollout is committed, the rollback of exactly
 * what was done. The old replicas never stop before the end, so the previous version serves throughout.
 */

export interface RolloutHost {
  name: string;
  exec: Executor;
  sudo: boolean;
  reporter: Reporter;
  /** SIGINT/SIGTERM or the deploy's timeout: no new step starts, and what was done is rolled back. */
  signal: AbortSignal;
}

export interface RolloutConfig {
  app: string;
  /** Dyce's docker config dir on the host (registry login), for `docker run`. */
  dockerConfig: string;
  nginx: NginxLayout;
  /** Where the replicas are published (the upstream's server address). */
  address: string;
  /** A site config to keep installed next to the upstream (undefined: the user's own site includes the upstream). */
  site?: string;
  health: { path: string; timeoutMs: number; intervalMs: number; deadlineMs: number };
  dial?: Dial;
  /** The rollback's drain when the deploy was cancelled: bounded, so the lock is released within the grace period. */
  cancelDrainMs?: number;
}

export interface RolloutReport {
  /** Container ids of the replicas started, by name. */
  started: Map<string, string>;
  records: { description: string; ms: number }[];
  /** The nginx upstream ports at the end. */
  ports: number[];
  /** The nginx files rewritten beside the switches (planNginxRepairs). */
  repairs: NginxRepair[];
}

/** A rollout that failed: `rolledBack` tells whether the previous replicas were fully restored. */
export class RolloutFailed extends UserError {
  override readonly name = 'RolloutFailed';
  readonly rolledBack: boolean;
  constructor(message: string, options: { cause?: unknown; details?: string[]; rolledBack: boolean }) {
    super(message, options);
    this.rolledBack = options.rolledBack;
  }
}

/** A replica that did not pass its health gate: what the check saw and the container's last log lines. */
class GateFailed extends UserError {
  override readonly name = 'GateFailed';
}

class Cancelled extends UserError {
  override readonly name = 'RolloutCancelled';
}

export async function applyRollout(h: RolloutHost, cfg: RolloutConfig, rollout: Rollout): Promise<RolloutReport> {
  const report: RolloutReport = { started: new Map(), records: [], ports: rollout.initialPorts, repairs: [] };
  const dial = cfg.dial ?? dialerFor(h.exec);
  // Read while the first batch starts: only the switch needs it (the site goes in after the first one).
  const reading = readConfigs(h, cfg);
  reading.catch(() => {});
  // Nothing to replace: still make sure nginx routes to the replicas (e.g. the first run with proxy: nginx).
  if (rollout.steps.length === 0) {
    const repairs = planNginxRepairs(rollout, await reading, nginxWant(cfg, rollout));
    for (const repair of repairs) {
      report.repairs.push(repair);
      await timed(h, report, describeNginxRepair(repair), async () => {
        if (repair.kind === 'write-upstream') await switchTo(h, cfg, repair.ports);
        else await install(h, cfg, sitePath(cfg.nginx, cfg.app), cfg.site!);
      });
    }
    report.ports = rollout.finalPorts;
    return report;
  }

  let siteInstalled: boolean | undefined;
  const steps = rollout.steps;
  const isStart = (i: number) => steps[i]?.kind === 'retire' || steps[i]?.kind === 'start';
  /** The last index of the batch of retire and start steps that begins at FROM. */
  const batchEnd = (from: number) => {
    let end = from;
    while (isStart(end + 1)) end++;
    return end;
  };
  let k = 0;
  // Steps up to k that never began (see planRollback), and whether the last reload was seen to take effect.
  const notAttempted = new Set<number>();
  let reloaded = false;
  // The next batch, started while the current one is gated and switched in (see below).
  let next: { from: number; to: number; done: Promise<void> } | undefined;
  try {
    while (k < steps.length) {
      const step = steps[k]!;
      if (k < rollout.commitIndex && h.signal.aborted) throw cancelledError(h.signal);
      if (isStart(k)) {
        // A batch's replicas start together, each (rename and run) in one round trip; a failure is seen once
        // every one of them has ended, so that the rollback knows exactly what was started.
        const from = k;
        k = batchEnd(from);
        if (next?.from === from) await next.done;
        else await startBatch(from, k);
        next = undefined;
        k++;
        continue;
      }
      if (step.kind === 'gate' && steps[k + 1]?.kind === 'switch' && isStart(k + 2)) {
        // Pipelined: the next batch starts now, while this one is gated and switched in. It takes no traffic
        // before its own gate and switch, and the old replicas serve until the end either way, so this costs
        // only the memory of one more batch for a moment, and hides its start-up behind this batch's gate and
        // reload.
        const from = k + 2;
        const to = batchEnd(from);
        next = { from, to, done: startBatch(from, to) };
        next.done.catch(() => {});
      }
      if (step.kind === 'drain' && steps[k + 1]?.kind === 'stop-old' && k + 1 === rollout.commitIndex) {
        // The drain and the stop in one round trip when the drain ends in time (the host stops them at once).
        const stop = steps[k + 1] as Extract<RolloutStep, { kind: 'stop-old' }>;
        let stopped = false;
        await timed(h, report, describeRolloutStep(step), async () => {
          const d = await drain(h, step.ports, step.ms, reloaded, h.signal, stop.names, () => {
            k = rollout.commitIndex;
          });
          if (d === 'cancelled') throw cancelledError(h.signal);
          stopped = d === 'stopped';
        });
        if (stopped) {
          h.reporter.info(`${h.name}: ${describeRolloutStep(stop)}: done with the drain`);
          k += 2;
          continue;
        }
        k++;
        continue;
      }
      await timed(h, report, describeRolloutStep(step), () => runStep(step));
      if (step.kind === 'switch') {
        report.ports = step.ports;
        // The site names the upstream, so it goes in once the upstream exists.
        siteInstalled ??= !planNginxRepairs(rollout, await reading, nginxWant(cfg, rollout)).some(
          (r) => r.kind === 'install-site',
        );
        if (!siteInstalled) {
          report.repairs.push({ kind: 'install-site' });
          await timed(h, report, describeNginxRepair({ kind: 'install-site' }), async () => {
            reloaded = await install(h, cfg, sitePath(cfg.nginx, cfg.app), cfg.site!);
          });
          siteInstalled = true;
        }
      }
      k++;
    }
    return report;
  } catch (error) {
    if (next) {
      // The next batch was starting: wait for it, so that the rollback knows what it did. Between this step and
      // that batch, nothing began (e.g. the switch after a failed gate).
      await next.done.catch(() => {});
      for (let i = k + 1; i < next.from; i++) notAttempted.add(i);
      k = Math.max(k, next.to);
    }
    if (k >= rollout.commitIndex) {
      // Every new replica serves; only the old ones' stop failed. Nothing to roll back.
      throw new RolloutFailed(
        `${h.name}: the new replicas serve, but stopping the old ones failed: ${errorMessage(error)}`,
        { cause: error, rolledBack: false },
      );
    }
    const problems = await rollback(h, cfg, rollout, k, notAttempted, report);
    const what = error instanceof UserError ? error.message : `${h.name}: ${errorMessage(error)}`;
    const details = error instanceof UserError ? [...error.details] : [];
    if (problems.length) {
      throw new RolloutFailed(`${what}; the rollback did not complete: ${problems.join('; ')}`, {
        cause: error,
        details,
        rolledBack: false,
      });
    }
    const restored = rollout.initialPorts.length
      ? `rolled back: the previous replicas serve (ports ${rollout.initialPorts.join(', ')})`
      : 'rolled back: the new replicas were removed';
    throw new RolloutFailed(`${what}; ${restored}`, { cause: error, details, rolledBack: true });
  }

  async function runStep(step: RolloutStep): Promise<void> {
    switch (step.kind) {
      case 'retire':
      case 'start':
        throw new Error('retire and start steps run as a batch (startBatch)');
      case 'gate':
        return gate(step.targets);
      case 'switch':
        // Only a drain needs to know that the reload took effect (see RELOAD_CONFIRMED).
        reloaded = await switchTo(h, cfg, step.ports);
        return;
      case 'drain':
        if ((await drain(h, step.ports, step.ms, reloaded, h.signal)) === 'cancelled') throw cancelledError(h.signal);
        return;
      case 'stop-old':
        return check(h, stopAndRemove(step.names), `docker stop ${step.names.join(' ')} && docker rm`);
    }
  }

  /** Steps FROM..TO (retire and start steps of one batch): each slot's replica started concurrently. */
  async function startBatch(from: number, to: number): Promise<void> {
    const group = steps.slice(from, to + 1).map((step, i) => ({ step, at: from + i }));
    for (const { step } of group) h.reporter.info(`${h.name}: ${describeRolloutStep(step)}`);
    const starts = group.flatMap(({ step, at }) => (step.kind === 'start' ? [{ step, at }] : []));
    const results = await Promise.allSettled(
      starts.map(async ({ step, at }) => {
        const t = Date.now();
        const retiring = group.find((g) => g.step.kind === 'retire' && g.step.slot === step.slot);
        const retire = retiring?.step.kind === 'retire' ? retiring.step : undefined;
        if (step.mode === 'start') await check(h, dockerStart([step.name]), `docker start ${step.name}`);
        else if (retire) {
          const label = `docker rename ${retire.name} ${retire.to} && docker run ${step.name}`;
          const r = await h.exec.run(retireAndRun(retire.name, retire.to, dockerRun(cfg.dockerConfig, step.run)), {
            sudo: h.sudo,
            label,
          });
          if (r.code === RETIRE_FAILED) {
            // Nothing happened in this slot: its old replica still has the name, which the rollback must not touch.
            notAttempted.add(retiring!.at);
            notAttempted.add(at);
            throw new UserError(
              `${h.name}: docker rename ${retire.name} ${retire.to} failed: ${lastLines(r.stderr, 3)}`,
            );
          }
          if (r.code !== 0) throw new UserError(`${h.name}: docker run ${step.name} failed: ${lastLines(r.stderr, 5)}`);
          report.started.set(step.name, r.stdout.trim().split('\n').pop() ?? '');
        } else report.started.set(step.name, await run(h, cfg, step.run));
        const also = retire ? ` (the old one renamed ${retire.to}, serving until the switch)` : '';
        report.records.push({ description: `${describeRolloutStep(step)}${also}`, ms: Date.now() - t });
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  async function gate(targets: SlotTarget[]): Promise<void> {
    const results = await Promise.all(
      targets.map(async (t) => ({
        t,
        r: await waitHealthy(dial, t.port, {
          ...cfg.health,
          signal: h.signal,
          // Long waits are not silent: the state every few seconds (check, what it saw, time left).
          onCheck: everyFewSeconds(progressInterval(cfg.health.deadlineMs), (ms, c: HealthCheck, n: number) => {
            if (!c.ok)
              h.reporter.info(
                `${h.name}: ${t.name}: waiting for health: check ${n} saw ${describeCheck(c)}, ${formatDuration(Math.max(0, cfg.health.deadlineMs - ms))} left`,
              );
          }),
        }),
      })),
    );
    if (results.some((x) => x.r.cancelled)) throw cancelledError(h.signal);
    const failed = results.find((x) => !x.r.healthy);
    if (!failed) return;
    const tail = await containerLogTail(h.exec, failed.t.name, { lines: 20, sudo: h.sudo });
    throw new GateFailed(gateMessage(h.name, cfg, failed.t, failed.r), {
      details: [`last lines of ${failed.t.name}'s log:`, ...tail.split('\n').map((l) => `  ${l}`)],
    });
  }
}

function gateMessage(host: string, cfg: RolloutConfig, t: SlotTarget, r: GateResult): string {
  return `${host}: ${t.name} did not become healthy within ${formatDuration(cfg.health.deadlineMs)} (GET ${cfg.health.path} on port ${t.port}, ${r.checks} checks): the last check saw ${describeCheck(r.last)}`;
}

/** Undoes what the rollout did up to step `failedAt`; returns the problems met (none: fully restored). */
async function rollback(
  h: RolloutHost,
  cfg: RolloutConfig,
  rollout: Rollout,
  failedAt: number,
  notAttempted: ReadonlySet<number>,
  report: RolloutReport,
): Promise<string[]> {
  const steps = planRollback(rollout, failedAt, notAttempted);
  const problems: string[] = [];
  const cancelled = h.signal.aborted;
  let reloaded = false;
  for (const step of steps) {
    h.reporter.info(`${h.name}: rollback: ${describeRolloutStep(step)}`);
    try {
      await rollbackStep(step);
    } catch (error) {
      problems.push(errorMessage(error));
      // The new replicas may still be in the upstream: never remove them, and leave names as they are.
      if (step.kind === 'switch') {
        problems.push('the new replicas were left running, as nginx may still route to them');
        break;
      }
    }
  }
  return problems;

  async function rollbackStep(step: RollbackStep): Promise<void> {
    switch (step.kind) {
      case 'switch':
        if (step.ports.length) {
          // A switch refused by `nginx -t` restored the file, and nginx still runs the config it was loaded from:
          // when the upstream already lists the previous ports, there is nothing to test or reload (and testing
          // again would fail for the same reason, leaving the rollback half done).
          const now = await readConfigs(h, cfg);
          if (now.upstream !== upstreamText(cfg, step.ports)) reloaded = await switchTo(h, cfg, step.ports);
        } else await removeUpstream(h, cfg);
        report.ports = step.ports;
        return;
      case 'drain':
        await drain(h, step.ports, cancelled ? Math.min(step.ms, cfg.cancelDrainMs ?? 1000) : step.ms, reloaded);
        return;
      case 'remove-new': {
        // Missing containers are fine (a docker run that failed before creating one): rm -f removes the others.
        // A replica whose predecessor was never renamed (a round trip whose outcome is unknown) is that
        // predecessor: never removed.
        const retired = new Map(rollout.steps.flatMap((s) => (s.kind === 'retire' ? [[s.name, s.to] as const] : [])));
        const r = await h.exec.run(
          removeNewReplicas(step.names.map((name) => ({ name, retired: retired.get(name) }))),
          {
            sudo: h.sudo,
            label: `docker rm -f ${step.names.join(' ')}`,
          },
        );
        if (r.code !== 0) throw new Error(`docker rm -f ${step.names.join(' ')} failed: ${lastLines(r.stderr, 3)}`);
        return;
      }
      case 'stop':
        return check(h, dockerStop(step.names), `docker stop ${step.names.join(' ')}`);
      case 'restore':
        for (const r of step.renames) await check(h, restoreName(r.from, r.to), `docker rename ${r.from} ${r.to}`);
        return;
    }
  }
}

/**
 * Waits until no connection goes to PORTS any more (requests in flight on replicas that left the upstream have
 * finished), at most maxMs. When the last reload was not seen to take effect (RELOADED false), first a moment for
 * it to reach every nginx worker. The host polls by itself (one round trip per DRAIN_CHUNK_MS at most, so that a
 * cancellation is seen within it). Without `ss` on the host it waits maxMs. With STOP, the host stops and removes
 * those containers as soon as the ports are drained, in the same round trip ('stopped'); when the drain runs out
 * of time, they are left to the caller ('done'). ONCOMMITTED is called before a throw when the old replicas may have
 * been stopped (the stop failed, or the round trip's outcome is unknown): then nothing may route back to them.
 */
async function drain(
  h: RolloutHost,
  ports: readonly number[],
  maxMs: number,
  reloaded: boolean,
  signal?: AbortSignal,
  stop: readonly string[] = [],
  onCommitted?: () => void,
): Promise<'cancelled' | 'done' | 'stopped'> {
  const started = Date.now();
  const left = () => maxMs - (Date.now() - started);
  if (!reloaded && !(await sleep(Math.min(maxMs, DRAIN_SETTLE_MS), signal))) return 'cancelled';
  if (ports.length === 0) return 'done';
  let open = -1;
  while (left() > 0) {
    if (signal?.aborted) return 'cancelled';
    const chunk = Math.min(left(), DRAIN_CHUNK_MS);
    const r = await h.exec
      .run(awaitNoConnections(ports, chunk, stop), {
        sudo: h.sudo,
        label: `wait until no connection goes to the old replicas${stop.length ? ', then stop them' : ''}`,
        // The stop is bounded by the containers' own stop timeouts (as a plain `docker stop`), the poll by itself.
        ...(stop.length ? {} : { timeoutMs: chunk + 10_000 }),
      })
      .catch((error: unknown) => {
        // The outcome is unknown: the old replicas may be stopping. Never route back to them.
        if (stop.length) onCommitted?.();
        throw error;
      });
    if (r.code === STOP_FAILED) onCommitted?.();
    if (r.code === STOP_FAILED)
      throw new UserError(
        `${h.name}: \`docker stop ${stop.join(' ')} && docker rm\` failed: ${lastLines(r.stderr, 3)}`,
      );
    const lines = r.stdout.trim().split('\n');
    open = r.code === 0 && /^[0-9]+$/.test(lines[0] ?? '') ? Number(lines[0]) : Number.NaN;
    if (r.code === NO_SS || Number.isNaN(open))
      return (await sleep(Math.max(0, left()), signal)) ? 'done' : 'cancelled';
    if (open === 0) return lines.includes(STOPPED) ? 'stopped' : 'done';
  }
  if (signal?.aborted) return 'cancelled';
  if (open > 0)
    h.reporter.warning(
      `${h.name}: ${open} connection(s) to port(s) ${ports.join(', ')} still open after the drain (${formatDuration(maxMs)}); stopping anyway`,
    );
  return 'done';
}

const DRAIN_SETTLE_MS = 1000;
const DRAIN_CHUNK_MS = 1000;

/** What the host's nginx files should hold after ROLLOUT (for planNginxRepairs). */
export function nginxWant(
  cfg: RolloutConfig,
  rollout: Pick<Rollout, 'finalPorts'>,
): { upstream: string | undefined; site?: string } {
  return {
    upstream: rollout.finalPorts.length ? upstreamText(cfg, rollout.finalPorts) : undefined,
    ...(cfg.site === undefined ? {} : { site: cfg.site }),
  };
}

function upstreamText(cfg: RolloutConfig, ports: readonly number[]): string {
  return renderUpstream({ app: cfg.app, ports, address: cfg.address });
}

/**
 * Rewrites the upstream to PORTS, tests the full config and reloads; a failing config is never loaded. Waits
 * until the reload took effect (no old worker takes new requests any more) and resolves true when that was seen.
 */
function switchTo(h: RolloutHost, cfg: RolloutConfig, ports: readonly number[]): Promise<boolean> {
  return install(h, cfg, upstreamPath(cfg.nginx, cfg.app), upstreamText(cfg, ports));
}

/** Writes TARGET, tests the full config and reloads nginx, in one round trip (see installFromStdin). */
async function install(h: RolloutHost, cfg: RolloutConfig, target: string, content: string): Promise<boolean> {
  // Every reload is confirmed, not only the one before a drain: a deploy that has returned must have its
  // configuration live, or the first requests after it can still reach an old worker (a new site answered 404).
  // With one session per host nothing else delays the end of the run, so this race showed in the lab.
  const r = await h.exec.run(installFromStdin(cfg.nginx, target), {
    stdin: content,
    sudo: h.sudo,
    label: `write ${target}, nginx -t && nginx -s reload`,
  });
  if (r.code === 0) return r.stdout.split('\n').includes(RELOAD_CONFIRMED);
  if (r.code === NGINX_TEST_FAILED)
    throw new UserError(
      `${h.name}: nginx -t refused the configuration with ${target}, so it was not loaded (the file was restored): ${lastLines(r.stderr, 5)}`,
    );
  if (r.code === NGINX_RELOAD_FAILED)
    throw new UserError(`${h.name}: nginx -s reload failed (is nginx running?): ${lastLines(r.stderr, 3)}`);
  throw new UserError(`${h.name}: installing ${target} failed (exit ${r.code}): ${lastLines(r.stderr, 3)}`);
}

async function removeUpstream(h: RolloutHost, cfg: RolloutConfig): Promise<void> {
  // A site that names the upstream would fail nginx -t without it: the site goes first (when Dyce wrote one).
  for (const target of [sitePath(cfg.nginx, cfg.app), upstreamPath(cfg.nginx, cfg.app)]) {
    const r = await h.exec.run(removeConfig(cfg.nginx, target), { sudo: h.sudo, label: `remove ${target}` });
    if (r.code !== 0) throw new UserError(`${h.name}: removing ${target} failed: ${lastLines(r.stderr, 5)}`);
  }
}

async function readConfigs(h: RolloutHost, cfg: RolloutConfig): Promise<{ upstream?: string; site?: string }> {
  const r = await h.exec.run(readAppConfigs(cfg.nginx, cfg.app), { sudo: h.sudo, label: 'read the nginx upstream' });
  return r.code === 0 ? parseAppConfigs(r.stdout) : {};
}

async function run(h: RolloutHost, cfg: RolloutConfig, spec: RunSpec): Promise<string> {
  const r = await h.exec.run(dockerRun(cfg.dockerConfig, spec), { sudo: h.sudo, label: `docker run ${spec.name}` });
  if (r.code !== 0) throw new UserError(`${h.name}: docker run ${spec.name} failed: ${lastLines(r.stderr, 5)}`);
  return r.stdout.trim().split('\n').pop() ?? '';
}

async function check(h: RolloutHost, argv: string[], label: string): Promise<void> {
  const r = await h.exec.run(argv, { sudo: h.sudo, label });
  if (r.code !== 0) throw new UserError(`${h.name}: \`${label}\` exited ${r.code}: ${lastLines(r.stderr, 3)}`);
}

async function timed(
  h: RolloutHost,
  report: RolloutReport,
  description: string,
  fn: () => Promise<void>,
): Promise<void> {
  const t = Date.now();
  h.reporter.info(`${h.name}: ${description}`);
  await fn();
  report.records.push({ description, ms: Date.now() - t });
}

function cancelledError(signal: AbortSignal): Cancelled {
  const reason = signal.reason as unknown;
  const why =
    reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : 'the deploy was cancelled';
  return new Cancelled(`rollout interrupted (${why})`, { cause: reason });
}
