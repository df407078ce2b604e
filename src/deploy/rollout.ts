import { dockerRm, dockerRun, dockerStart, dockerStop, type RunSpec } from '../commands/docker.js';
import {
  installConfig,
  NGINX_RELOAD_FAILED,
  NGINX_TEST_FAILED,
  type NginxLayout,
  nginxLayout,
  parseAppConfigs,
  readAppConfigs,
  removeConfig,
  renderSite,
  renderUpstream,
  sitePath,
  upstreamPath,
  writeCandidate,
} from '../commands/nginx.js';
import { countConnections, dockerRename, NO_SS } from '../commands/replica.js';
import type { DeployInputs } from '../config/actions/deploy.js';
import type { Host } from '../config/inventory.js';
import type { Reporter } from '../github/reporter.js';
import type { AppConfig } from '../plan/desired.js';
import {
  describeRolloutStep,
  planRollback,
  type RollbackStep,
  type Rollout,
  type RolloutSettings,
  type RolloutStep,
  type SlotTarget,
} from '../plan/rollout.js';
import { type Executor, lastLines } from '../remote/executor.js';
import { errorMessage, UserError } from '../util/errors.js';
import {
  containerLogTail,
  type Dial,
  describeCheck,
  dialerFor,
  type GateResult,
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
  /** How a new container is started (default: `docker run` of the spec); returns its id. */
  runContainer?: (run: RunSpec) => Promise<string>;
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

/**
 * Pure: the rollout's settings and nginx configuration for one host, from the deploy inputs. The host's nginx is
 * found through the inventory variable `dyce_nginx_prefix` (a private nginx), else the system nginx (/etc/nginx).
 */
export function rolloutSetup(
  inputs: DeployInputs,
  host: Host,
  app: AppConfig,
  dockerConfig: string,
): { settings: RolloutSettings; config: RolloutConfig } {
  const firstPort = app.hostPort ?? app.port;
  if (firstPort === undefined) throw new UserError('input "port" is required with proxy: nginx');
  const prefix = host.vars.dyce_nginx_prefix;
  if (
    prefix !== undefined &&
    (typeof prefix !== 'string' || !/^\/[A-Za-z0-9._/@+-]*$/.test(prefix) || prefix.includes('..'))
  )
    throw new UserError(`${host.name}: dyce_nginx_prefix must be an absolute path, got ${JSON.stringify(prefix)}`);
  const nginx = nginxLayout(prefix as string | undefined);
  const address =
    app.hostIp === '0.0.0.0' || app.network === 'host' ? '127.0.0.1' : app.hostIp === '::' ? '::1' : app.hostIp;
  const names = inputs['nginx-server-name'] ?? [];
  const cert = inputs['nginx-tls-cert'];
  const key = inputs['nginx-tls-key'];
  const site = names.length
    ? renderSite({
        app: app.app,
        serverNames: names,
        httpListen: inputs['nginx-http-listen'],
        httpsListen: inputs['nginx-https-listen'],
        ...(cert && key ? { tls: { cert, key } } : {}),
        ...(inputs['nginx-static-dir'] ? { staticDir: inputs['nginx-static-dir'] } : {}),
      })
    : undefined;
  return {
    settings: {
      maxUnavailable: inputs['max-unavailable'],
      drainMs: inputs['drain-timeout'],
      firstPort,
      replicas: app.replicas,
      portBase: host.portBase ?? 0,
      portEnv: app.portEnv,
    },
    config: {
      app: app.app,
      dockerConfig,
      nginx,
      address,
      ...(site === undefined ? {} : { site }),
      health: {
        path: inputs['health-path'],
        timeoutMs: inputs['health-timeout'],
        intervalMs: inputs['health-interval'],
        deadlineMs: inputs['health-deadline'],
      },
    },
  };
}

export async function applyRollout(h: RolloutHost, cfg: RolloutConfig, rollout: Rollout): Promise<RolloutReport> {
  const report: RolloutReport = { started: new Map(), records: [], ports: rollout.initialPorts };
  const dial = cfg.dial ?? dialerFor(h.exec);
  const current = await readConfigs(h, cfg);
  let siteInstalled = cfg.site === undefined || current.site === cfg.site;
  // Nothing to replace: still make sure nginx routes to the replicas (e.g. the first run with proxy: nginx).
  if (rollout.steps.length === 0) {
    if (rollout.finalPorts.length && current.upstream !== upstreamText(cfg, rollout.finalPorts))
      await timed(h, report, `upstream -> ${rollout.finalPorts.join(', ')}`, () =>
        switchTo(h, cfg, rollout.finalPorts),
      );
    if (!siteInstalled && rollout.finalPorts.length)
      await timed(h, report, 'install the site config', () => install(h, cfg, sitePath(cfg.nginx, cfg.app), cfg.site!));
    report.ports = rollout.finalPorts;
    return report;
  }

  let k = 0;
  try {
    for (; k < rollout.steps.length; k++) {
      const step = rollout.steps[k]!;
      if (k < rollout.commitIndex && h.signal.aborted) throw cancelledError(h.signal);
      await timed(h, report, describeRolloutStep(step), () => runStep(step));
      if (step.kind === 'switch') {
        report.ports = step.ports;
        // The site names the upstream, so it goes in once the upstream exists.
        if (!siteInstalled) {
          await timed(h, report, 'install the site config', () =>
            install(h, cfg, sitePath(cfg.nginx, cfg.app), cfg.site!),
          );
          siteInstalled = true;
        }
      }
    }
    return report;
  } catch (error) {
    if (k >= rollout.commitIndex) {
      // Every new replica serves; only the old ones' stop failed. Nothing to roll back.
      throw new RolloutFailed(
        `${h.name}: the new replicas serve, but stopping the old ones failed: ${errorMessage(error)}`,
        { cause: error, rolledBack: false },
      );
    }
    const problems = await rollback(h, cfg, rollout, k, report);
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
        return check(h, dockerRename(step.name, step.to), `docker rename ${step.name} ${step.to}`);
      case 'start': {
        if (step.mode === 'start') {
          await check(h, dockerStart([step.name]), `docker start ${step.name}`);
          return;
        }
        const id = cfg.runContainer ? await cfg.runContainer(step.run) : await run(h, cfg, step.run);
        report.started.set(step.name, id);
        return;
      }
      case 'gate':
        return gate(step.targets);
      case 'switch':
        return switchTo(h, cfg, step.ports);
      case 'drain':
        if (!(await drain(h, step.ports, step.ms, h.signal))) throw cancelledError(h.signal);
        return;
      case 'stop-old':
        await check(h, dockerStop(step.names), `docker stop ${step.names.join(' ')}`);
        await check(h, dockerRm(step.names), `docker rm ${step.names.join(' ')}`);
        return;
    }
  }

  async function gate(targets: SlotTarget[]): Promise<void> {
    const results = await Promise.all(
      targets.map(async (t) => ({
        t,
        r: await waitHealthy(dial, t.port, { ...cfg.health, signal: h.signal }),
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
  return `${host}: ${t.name} did not become healthy within ${cfg.health.deadlineMs}ms (GET ${cfg.health.path} on port ${t.port}, ${r.checks} checks): the last check saw ${describeCheck(r.last)}`;
}

/** Undoes what the rollout did up to step `failedAt`; returns the problems met (none: fully restored). */
async function rollback(
  h: RolloutHost,
  cfg: RolloutConfig,
  rollout: Rollout,
  failedAt: number,
  report: RolloutReport,
): Promise<string[]> {
  const steps = planRollback(rollout, failedAt);
  const problems: string[] = [];
  const cancelled = h.signal.aborted;
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
          if (now.upstream !== upstreamText(cfg, step.ports)) await switchTo(h, cfg, step.ports);
        } else await removeUpstream(h, cfg);
        report.ports = step.ports;
        return;
      case 'drain':
        await drain(h, step.ports, cancelled ? Math.min(step.ms, cfg.cancelDrainMs ?? 1000) : step.ms);
        return;
      case 'remove-new': {
        // Missing containers are fine (a docker run that failed before creating one): rm -f removes the others.
        const r = await h.exec.run(dockerRm(step.names, { force: true }), {
          sudo: h.sudo,
          label: `docker rm -f ${step.names.join(' ')}`,
        });
        if (r.code !== 0 && !/No such container/i.test(r.stderr))
          throw new Error(`docker rm -f ${step.names.join(' ')} failed: ${lastLines(r.stderr, 3)}`);
        return;
      }
      case 'stop':
        return check(h, dockerStop(step.names), `docker stop ${step.names.join(' ')}`);
      case 'restore':
        for (const r of step.renames) await check(h, dockerRename(r.from, r.to), `docker rename ${r.from} ${r.to}`);
        return;
    }
  }
}

/**
 * Waits until no connection goes to PORTS any more (requests in flight on replicas that left the upstream have
 * finished), at most maxMs; at least a moment, for the reload to reach every nginx worker. Without `ss` on the
 * host it waits maxMs. Returns false when the signal fired.
 */
async function drain(h: RolloutHost, ports: readonly number[], maxMs: number, signal?: AbortSignal): Promise<boolean> {
  const started = Date.now();
  if (!(await sleep(Math.min(maxMs, DRAIN_SETTLE_MS), signal))) return false;
  if (ports.length === 0) return true;
  let open = -1;
  while (Date.now() - started < maxMs) {
    const r = await h.exec.run(countConnections(ports), {
      label: 'count connections to old replicas',
      timeoutMs: 10_000,
    });
    open = r.code === 0 ? Number(r.stdout.trim()) : Number.NaN;
    if (r.code === NO_SS || !Number.isInteger(open)) return sleep(Math.max(0, maxMs - (Date.now() - started)), signal);
    if (open === 0) return true;
    if (!(await sleep(Math.min(DRAIN_POLL_MS, maxMs - (Date.now() - started)), signal))) return false;
  }
  if (open > 0)
    h.reporter.warning(
      `${h.name}: ${open} connection(s) to port(s) ${ports.join(', ')} still open after the drain (${maxMs}ms); stopping anyway`,
    );
  return true;
}

const DRAIN_SETTLE_MS = 1000;
const DRAIN_POLL_MS = 250;

function upstreamText(cfg: RolloutConfig, ports: readonly number[]): string {
  return renderUpstream({ app: cfg.app, ports, address: cfg.address });
}

/** Rewrites the upstream to PORTS, tests the full config and reloads; a failing config is never loaded. */
async function switchTo(h: RolloutHost, cfg: RolloutConfig, ports: readonly number[]): Promise<void> {
  await install(h, cfg, upstreamPath(cfg.nginx, cfg.app), upstreamText(cfg, ports));
}

async function install(h: RolloutHost, cfg: RolloutConfig, target: string, content: string): Promise<void> {
  const w = await h.exec.run(writeCandidate(target), { stdin: content, sudo: h.sudo, label: `write ${target}` });
  if (w.code !== 0) throw new UserError(`${h.name}: cannot write ${target}: ${lastLines(w.stderr, 3)}`);
  const r = await h.exec.run(installConfig(cfg.nginx, target), {
    sudo: h.sudo,
    label: `nginx -t && nginx -s reload (${target})`,
  });
  if (r.code === 0) return;
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
