import { basename } from 'node:path';
import {
  dockerLogin,
  dockerPluginEnable,
  dockerPluginInstall,
  dockerPull,
  dockerPullMissing,
  dockerRm,
  dockerRun,
  dockerStop,
} from '../commands/docker.js';
import {
  bothInOneRoundTrip,
  DOCKER_UNREACHABLE,
  finishDeploy,
  LOGIN_FAILED,
  loginAndPull,
  type ObserveOptions,
  observeHost,
  PULL_FAILED,
  pullAndIdentify,
  splitFirstOutput,
  writeFileFromStdin,
} from '../commands/host-state.js';
import { parseAppConfigs, readAppConfigs } from '../commands/nginx.js';
import type { Host } from '../config/inventory.js';
import type { Reporter } from '../github/reporter.js';
import { appDir, auditLog, type DesiredState, desiredState, lockDir } from '../plan/desired.js';
import {
  describePrepStep,
  type HostPlan,
  hostPlanSteps,
  orderReplicaSteps,
  type PrepStep,
  planPrep,
} from '../plan/host-plan.js';
import { type ObservedContainer, parsePsLines } from '../plan/observed.js';
import { describePlan, describeStep, type Plan, planReplicas, type Step } from '../plan/plan.js';
import { planNginxRepairs, planRollout, type Rollout } from '../plan/rollout.js';
import { CommandFailed, type ExecOptions, type Executor, lastLines } from '../remote/executor.js';
import { formatDuration } from '../util/duration.js';
import { errorMessage, UserError } from '../util/errors.js';
import { type HostAccess, resolveAccess } from './access.js';
import type { DeployConfig, HostConfig } from './config.js';
import type { Connect } from './connect.js';
import { fanOut } from './fanout.js';
import { acquireLock, type HeldLock, newHolder } from './lock.js';
import { parsePulled } from './pull.js';
import { type RecordOptions, recordArgv, reportRecord } from './retention.js';
import { applyRollout, nginxWant, type RolloutConfig, RolloutFailed } from './rollout.js';

/** The alias the Loki plugin is installed under; `log-driver: loki` names it. */
export const LOKI_ALIAS = 'loki';

export interface ReplicaState {
  name: string;
  id: string;
  port?: number;
  state: string;
  version: string;
}

export interface StepRecord {
  description: string;
  kind: Step['kind'] | 'pull' | 'remove-batch' | 'rollout';
  ms: number;
}

/** How a host ended: `failed` and `rolled-back` did not converge; `skipped` was never started (untouched). */
export type HostState = 'ok' | 'changed' | 'failed' | 'rolled-back' | 'skipped';

export interface HostOutcome {
  host: string;
  state: HostState;
  /** Why a host was skipped. */
  skipReason?: string;
  plan?: Plan;
  /** The host's whole plan (preparation, strategy steps, nginx repairs): what `dyce plan` prints. */
  hostPlan?: HostPlan;
  steps: StepRecord[];
  replicas: ReplicaState[];
  changed: boolean;
  /** A failed rollout behind the proxy restored the previous replicas. */
  rolledBack?: boolean;
  error?: string;
  /** The error itself (not an output). */
  cause?: unknown;
  ms: number;
}

export interface DeployResult {
  version: string;
  app: string;
  dryRun: boolean;
  hosts: HostOutcome[];
  changed: boolean;
  /** Hosts that failed or were rolled back, in inventory order. */
  failedHosts: string[];
  ms: number;
  /** Why the step fails (a host failed, or the run was cancelled); undefined when every host converged. */
  error?: unknown;
}

/** Where the lock of a host lives, so the post step can remove it if (and only if) it is still this run's. */
export interface LockRecord {
  host: string;
  dir: string;
  holderId: string;
  sudo: boolean;
}

export interface DeployOptions {
  /** Aborted on SIGINT/SIGTERM: no new work starts, the host is left consistent, locks are released. */
  signal?: AbortSignal;
  connect?: Connect;
  /** Told about each lock taken (the action saves them for its post step). */
  onLock?: (lock: LockRecord) => void;
  /** How long an in-flight command may finish after cancellation before the lock is released anyway. */
  cancelGraceMs?: number;
  /** `dyce rollback`: the host's history marks the version left as rolled back (src/commands/history.ts). */
  rollback?: boolean;
}

/** A deploy stopped by SIGINT/SIGTERM or the overall timeout. */
export class DeployCancelled extends UserError {
  override readonly name = 'DeployCancelled';
}

/** Some hosts did not converge (or were never started); one line per host in the details. */
export class DeployFailed extends UserError {
  override readonly name = 'DeployFailed';
}

/**
 * Deploys to every host of the config, fanned out by src/deploy/fanout.ts (`parallel`, `serial`,
 * `max-fail-percentage`); each host takes its own lock. Returns the result, failed or not (`error` says why the
 * step fails); it writes no output: src/github/deploy-report.ts does, for the action and the CLI alike.
 */
export async function deployFleet(
  config: DeployConfig,
  reporter: Reporter,
  opts: DeployOptions & { connect: Connect },
): Promise<DeployResult> {
  const started = Date.now();
  const { app } = config;
  const timeout = AbortSignal.timeout(config.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  const result: DeployResult = {
    version: app.version,
    app: app.app,
    dryRun: config.dryRun,
    hosts: [],
    changed: false,
    failedHosts: [],
    ms: 0,
  };
  try {
    const hosts = config.hosts;
    const budget = config.schedule.maxFailPercentage;
    const fan = await fanOut(
      hosts,
      {
        parallel: config.schedule.parallel,
        serial: config.schedule.serial,
        maxFailPercentage: budget,
        signal,
      },
      async (target) => {
        const outcome = await deployHost(target, config, reporter, { ...opts, signal });
        outcome.state = stateOf(outcome);
        reporter.info(
          `${target.host.name}: ${outcome.state}${outcome.error ? `: ${outcome.error.split('\n')[0]}` : ''}`,
        );
        return outcome;
      },
      (o) => o.error !== undefined,
    );
    result.hosts = fan.runs.map((r, k) =>
      r.status === 'done'
        ? r.value
        : r.status === 'error'
          ? crashed(hosts[k]!.host.name, r.error)
          : skipped(hosts[k]!.host.name, r.reason, budget, signal, config.timeoutMs),
    );
    result.failedHosts = result.hosts
      .filter((h) => h.state === 'failed' || h.state === 'rolled-back')
      .map((h) => h.host);
    // One host: its own error, as before there were many.
    const only = result.hosts.length === 1 ? result.hosts[0]! : undefined;
    if (only?.error) result.error = only.cause ?? new UserError(only.error);
    else if (result.failedHosts.length > 0) result.error = deployFailed(result, fan.stopped, budget);
    else if (fan.stopped === 'cancelled') result.error = cancelledError(signal, config.timeoutMs);
  } catch (error) {
    result.error = error;
  }
  result.ms = Date.now() - started;
  result.changed = result.hosts.some((h) => h.changed);
  return result;
}

function stateOf(o: HostOutcome): HostState {
  if (o.error) return o.rolledBack ? 'rolled-back' : 'failed';
  return o.changed ? 'changed' : 'ok';
}

/** Which hosts failed, how many were left untouched and whether the failure budget stopped the run. */
function deployFailed(result: DeployResult, stopped: 'budget' | 'cancelled' | undefined, budget: number): DeployFailed {
  const total = result.hosts.length;
  const skippedCount = result.hosts.filter((h) => h.state === 'skipped').length;
  const why =
    stopped === 'budget'
      ? budget === 0
        ? ''
        : ` (more than max-fail-percentage ${budget}% failed)`
      : stopped === 'cancelled'
        ? ' (cancelled)'
        : budget > 0
          ? ` (within max-fail-percentage ${budget}%, the other hosts were deployed)`
          : '';
  return new DeployFailed(
    `${result.failedHosts.length} of ${total} hosts failed: ${result.failedHosts.join(', ')}` +
      (skippedCount ? `; ${skippedCount} not started (left untouched)` : '') +
      why,
    {
      cause: result.hosts.find((h) => h.cause)?.cause,
      details: result.hosts
        .filter((h) => h.error || h.skipReason)
        .map((h) => `${h.host}: ${h.state}: ${(h.error ?? h.skipReason ?? '').split('\n')[0]}`),
    },
  );
}

/** A host whose deploy threw instead of returning its outcome (a bug in the engine, reported as a failure). */
function crashed(host: string, error: unknown): HostOutcome {
  return {
    host,
    state: 'failed',
    steps: [],
    replicas: [],
    changed: false,
    error: errorMessage(error),
    cause: error,
    ms: 0,
  };
}

/** A host never started: nothing was done to it, not even a connection. */
function skipped(
  host: string,
  reason: 'budget' | 'cancelled',
  budget: number,
  signal: AbortSignal,
  timeoutMs: number,
): HostOutcome {
  const why =
    reason === 'cancelled'
      ? `not started: ${cancelledError(signal, timeoutMs).message}`
      : budget === 0
        ? 'not started: an earlier host failed (max-fail-percentage 0)'
        : `not started: more than max-fail-percentage ${budget}% of the hosts failed`;
  return { host, state: 'skipped', skipReason: why, steps: [], replicas: [], changed: false, ms: 0 };
}

interface HostContext {
  host: Host;
  target: HostConfig;
  config: DeployConfig;
  exec: Executor;
  access: HostAccess;
  reporter: Reporter;
  signal: AbortSignal;
}

async function deployHost(
  target: HostConfig,
  config: DeployConfig,
  reporter: Reporter,
  opts: DeployOptions & { signal: AbortSignal; connect: Connect },
): Promise<HostOutcome> {
  const { host } = target;
  const { app } = config;
  const started = Date.now();
  const outcome: HostOutcome = { host: host.name, state: 'failed', steps: [], replicas: [], changed: false, ms: 0 };
  let exec: Executor | undefined;
  let lock: HeldLock | undefined;
  let access: HostAccess | undefined;
  let auditResult = 'failed';
  let prune: { dir: string; keep: string } | undefined;
  let record: RecordOptions | undefined;
  const lost = new AbortController();
  const signal = AbortSignal.any([opts.signal, lost.signal]);
  try {
    exec = await opts.connect(host);
    access = await resolveAccess(exec, host);
    const ctx: HostContext = { host, target, config, exec, access, reporter, signal };
    const observeOpts: ObserveOptions = {
      stateDir: access.stateDir,
      app: app.app,
      ...(app.logDriver === LOKI_ALIAS ? { pluginAlias: LOKI_ALIAS } : {}),
      readOnly: config.dryRun,
    };
    let observedText: { code: number; stdout: string; stderr: string };
    if (config.dryRun) {
      // A dry run takes no lock and creates nothing.
      observedText = await run(ctx, observeHost(observeOpts), { label: 'observe containers' });
    } else {
      // The lock and the observation in one round trip. Without secrets the spec hashes do not depend on the
      // host's HMAC key, so the host can tell by itself that nothing is to be done, audit and release at once.
      const noSecrets = Object.keys(app.secretEnv).length === 0 && Object.keys(app.secretFiles).length === 0;
      // With pull: always only the pull can tell whether the tag now names another build: no verdict before it.
      const expected =
        noSecrets && config.pull !== 'always'
          ? desiredState(app, { stateDir: access.stateDir, portBase: target.portBase, hmacKey: '0'.repeat(64) })
          : undefined;
      const holder = newHolder(app.app, app.version);
      lock = await acquireLock(exec, {
        dir: lockDir(access.stateDir, app.app),
        holder,
        waitMs: config.lock.waitMs,
        staleMs: config.lock.staleMs,
        sudo: access.sudo,
        host: host.name,
        reporter,
        signal,
        observe: observeOpts,
        ...(expected
          ? {
              noop: {
                expect: expected.replicas.map((r) => `${r.name}=${r.specHash}`),
                auditLog: auditLog(access.stateDir),
                // Behind nginx the files Dyce owns must be intact too, else the normal path rewrites them.
                ...(target.nginx ? { nginx: target.nginx.noop } : {}),
                auditLine: JSON.stringify({
                  time: holder.since,
                  who: holder.who,
                  app: app.app,
                  host: host.name,
                  from: [app.version],
                  to: app.version,
                  result: 'unchanged',
                  changed: false,
                  steps: [],
                }),
              },
            }
          : {}),
        onLost: () => lost.abort(new DeployCancelled(`${host.name}: the deploy lock was taken over by another deploy`)),
      });
      opts.onLock?.({ host: host.name, dir: lock.dir, holderId: lock.holderId, sudo: access.sudo });
      observedText = lock.observed;
      if (/^verdict noop$/m.test(observedText.stdout)) {
        // The host audited and released the lock itself: nothing of ours is left to clean up.
        await lock.stopRefresh();
        lock = undefined;
        auditResult = 'unchanged';
      }
    }
    const observed = parseObservation(ctx, observedText, config.dryRun);
    const desired = desiredState(app, {
      stateDir: access.stateDir,
      portBase: target.portBase,
      hmacKey: observed.key,
    });
    const imageId =
      config.pull === 'always' && !config.dryRun
        ? await withGrace(
            signal,
            opts.cancelGraceMs ?? 3000,
            pullFresh(ctx, desired.dockerConfig, observed.containers, outcome),
          )
        : undefined;
    if (config.pull === 'always' && config.dryRun)
      reporter.info(`${host.name}: dry run: ${app.image} was not pulled, so a rebuilt tag is not seen (pull: always)`);
    const plan = planReplicas(desired, observed.containers, {
      adopt: config.adopt,
      host: host.name,
      strategy: config.strategy,
      ...(imageId ? { imageId } : {}),
    });
    outcome.plan = plan;
    if (auditResult === 'unchanged' && plan.changed)
      throw new Error(
        `${host.name}: the host judged the deploy a no-op but the plan has steps (a bug: nothing was changed)`,
      );
    for (const line of describePlan(plan, host.name)) reporter.info(line);
    checkLogPlugin(ctx, observed.plugin);
    const hostPlan: HostPlan = {
      replicas: plan,
      prep: planPrep(plan, {
        image: app.image,
        pull: config.pull,
        ...(config.registry.login
          ? { login: { registry: config.registry.server, username: config.registry.login.username } }
          : {}),
        ...(app.logDriver === LOKI_ALIAS
          ? { plugin: { state: observed.plugin, ref: config.logPlugin.ref, alias: LOKI_ALIAS } }
          : {}),
        secretPaths: desired.secrets
          ? [
              ...(desired.secrets.envFile ? [desired.secrets.envFile.path] : []),
              ...desired.secrets.files.map((f) => f.path),
            ]
          : [],
      }),
      replicaSteps: orderReplicaSteps(plan),
      ...(target.nginx ? { rollout: planRollout(plan, target.nginx.settings) } : {}),
      repairs: [],
    };
    outcome.hostPlan = hostPlan;
    if (config.dryRun) {
      // Behind nginx the plan also shows which of Dyce's nginx files a run would rewrite (read, nothing changed).
      if (hostPlan.rollout) {
        const cfg = rolloutConfig(ctx, desired.dockerConfig);
        const read = await run(ctx, readAppConfigs(cfg.nginx, cfg.app), { label: 'read the nginx files' });
        hostPlan.repairs = planNginxRepairs(
          hostPlan.rollout,
          read.code === 0 ? parseAppConfigs(read.stdout) : {},
          nginxWant(cfg, hostPlan.rollout),
        );
      }
      const steps = hostPlanSteps(hostPlan);
      if (steps.length && (plan.changed || hostPlan.repairs.length))
        for (const s of steps) reporter.info(`${host.name}:   would ${s.description}`);
      reporter.info(`${host.name}: dry run: nothing was changed`);
      outcome.replicas = keptReplicas(plan, desired);
      auditResult = 'dry-run';
      return outcome;
    }
    if (auditResult === 'unchanged')
      // The host judged the deploy a no-op (containers and, behind nginx, its files intact), audited and released
      // the lock: nothing to apply, and nothing more to ask the host (no repair may run without the lock).
      outcome.replicas = plan.steps.flatMap((s) =>
        s.kind === 'keep'
          ? [
              {
                ...replicaState(s.replica, s.container.id, 'running'),
                ...(s.container.port ? { port: s.container.port } : {}),
              },
            ]
          : [],
      );
    else await applyPlan(ctx, hostPlan, desired, outcome, opts.cancelGraceMs ?? 3000);
    // Behind nginx a plan without steps may still have rewritten a missing or edited upstream or site file.
    auditResult = plan.changed || outcome.changed ? 'success' : 'unchanged';
    // Retention: the history of the app on the host, and its images beyond keep-versions removed (still locked:
    // in the same round trip as the audit and the lock's release). A deploy the host judged a no-op released the
    // lock itself and deployed nothing new: it records nothing, so it stays one round trip.
    if (lock)
      record = {
        stateDir: access.stateDir,
        app: app.app,
        image: app.image,
        version: app.version,
        keep: config.retention.keepVersions,
        rollback: opts.rollback === true,
      };
    // Secret files of earlier specs are no longer mounted by any replica: remove them.
    if (plan.changed)
      prune = {
        dir: `${appDir(access.stateDir, app.app)}/secrets`,
        keep: desired.secrets ? basename(desired.secrets.dir) : '',
      };
    return outcome;
  } catch (error) {
    if (error instanceof RolloutFailed && error.rolledBack) outcome.rolledBack = true;
    outcome.error = errorMessage(error);
    outcome.cause =
      signal.aborted && !(error instanceof DeployCancelled) ? cancelledError(signal, config.timeoutMs, error) : error;
    if (outcome.cause instanceof DeployCancelled) auditResult = 'cancelled';
    outcome.error = errorMessage(outcome.cause);
    return outcome;
  } finally {
    outcome.ms = Date.now() - started;
    if (exec && access && lock) {
      const entry = {
        time: new Date().toISOString(),
        who: newHolder(app.app, app.version).who,
        app: app.app,
        host: host.name,
        from: outcome.plan?.previousVersions ?? [],
        to: app.version,
        result: auditResult,
        changed: outcome.changed,
        steps: outcome.steps.map((s) => s.description),
        ...(outcome.error ? { error: outcome.error.split('\n')[0] } : {}),
        ms: outcome.ms,
      };
      await finish(exec, access, lock, entry, prune, reporter, record);
    }
    await exec?.close().catch(() => {});
  }
}

interface Observation {
  key: string;
  plugin: 'true' | 'false' | 'missing' | undefined;
  containers: ObservedContainer[];
}

/** Reads the observe script's answer: the HMAC key, the log plugin's state and every container of the app. */
function parseObservation(
  ctx: HostContext,
  r: { code: number; stdout: string; stderr: string },
  readOnly: boolean,
): Observation {
  if (r.code === DOCKER_UNREACHABLE)
    throw new UserError(`${ctx.host.name}: cannot reach the Docker daemon: ${lastLines(r.stderr, 3)}`);
  if (r.code !== 0) throw new CommandFailed(ctx.host.name, 'observe containers', r);
  const marker = r.stdout.indexOf('containers\n');
  if (marker < 0 || (marker > 0 && r.stdout[marker - 1] !== '\n'))
    throw new UserError(`${ctx.host.name}: unexpected answer from the host while observing containers`);
  const head = r.stdout.slice(0, marker).split('\n');
  let key =
    head
      .find((l) => l.startsWith('key '))
      ?.slice(4)
      .trim() ?? '';
  // A dry run on a host Dyce never touched: an ephemeral key (only secret-bearing specs depend on it, and there are none yet).
  if (!/^[0-9a-f]{64}$/.test(key)) {
    if (!readOnly)
      throw new UserError(`${ctx.host.name}: the HMAC key in ${ctx.access.stateDir} is unreadable or corrupt`);
    key = '0'.repeat(64);
  }
  const pluginLine = head
    .find((l) => l.startsWith('plugin '))
    ?.slice(7)
    .trim();
  const plugin = pluginLine === 'true' || pluginLine === 'false' || pluginLine === 'missing' ? pluginLine : undefined;
  return { key, plugin, containers: parsePsLines(r.stdout.slice(marker + 'containers\n'.length), ctx.host.name) };
}

/** Before any container is touched: a Loki log driver needs its plugin, installed only when the user allows it. */
function checkLogPlugin(ctx: HostContext, plugin: Observation['plugin']): void {
  const { app, logPlugin } = ctx.config;
  if (app.logDriver !== LOKI_ALIAS || plugin === 'true' || logPlugin.install) return;
  const ref = logPlugin.ref;
  if (plugin === 'false')
    throw new UserError(
      `${ctx.host.name}: the Docker plugin "${LOKI_ALIAS}" is installed but disabled; enable it (docker plugin enable ${LOKI_ALIAS}) or set install-log-plugin: true; nothing was changed`,
    );
  throw new UserError(
    `${ctx.host.name}: log-driver loki needs the Docker plugin "${LOKI_ALIAS}", which is not installed; nothing was changed. Set install-log-plugin: true to install ${ref}, or run on the host: docker plugin install ${ref} --alias ${LOKI_ALIAS} --grant-all-permissions`,
  );
}

async function applyPlan(
  ctx: HostContext,
  hostPlan: HostPlan,
  desired: DesiredState,
  outcome: HostOutcome,
  graceMs: number,
): Promise<void> {
  const { config } = ctx;
  const plan = hostPlan.replicas;
  const password = config.registry.login?.password.reveal() ?? '';
  // The preparation, as planned (src/plan/host-plan.ts): nothing here decides anything the plan did not show.
  for (const step of hostPlan.prep) {
    if (step.kind === 'login') await login(ctx, desired.dockerConfig, step.registry, step.username, password);
    else if (step.kind === 'plugin') await installPlugin(ctx, desired.dockerConfig, step);
    else if (step.kind === 'secrets') await writeSecrets(ctx, desired);
    // Login and pull in one round trip; the password on stdin.
    else
      await withGrace(
        ctx.signal,
        graceMs,
        timed(ctx, outcome, describePrepStep(step), 'pull', () =>
          step.login
            ? loginPull(
                ctx,
                desired.dockerConfig,
                config.registry.server,
                config.registry.login!.username,
                password,
                step.image,
                step.mode,
              )
            : pull(ctx, desired.dockerConfig, step.image, step.mode),
        ),
      );
  }

  // Behind nginx: the rolling replacement (it also takes surplus replicas out of the upstream before stopping them).
  if (hostPlan.rollout) return applyProxied(ctx, hostPlan, hostPlan.rollout, desired, outcome);

  // Removes are batched: one `docker stop` stops them in parallel, so stop timeouts never add up.
  const removes = plan.steps.filter((s): s is Extract<Step, { kind: 'remove' }> => s.kind === 'remove');
  if (removes.length) {
    throwIfCancelled(ctx.signal, config.timeoutMs);
    const names = removes.map((s) => s.container.name);
    await timed(ctx, outcome, removes.map(describeStep).join('; '), 'remove-batch', async () => {
      await check(ctx, dockerStop(names), `docker stop ${names.join(' ')}`);
      await check(ctx, dockerRm(names), `docker rm ${names.join(' ')}`);
    });
    outcome.changed = true;
  }
  const creations: Extract<Step, { kind: 'create' }>[] = [];
  for (const step of plan.steps) {
    if (step.kind === 'remove') continue;
    if (step.kind === 'keep') {
      outcome.replicas.push(replicaState(step.replica, step.container.id, 'running'));
      continue;
    }
    if (step.kind === 'create') {
      creations.push(step);
      continue;
    }
    throwIfCancelled(ctx.signal, config.timeoutMs);
    // A step in flight is allowed to finish (up to graceMs after cancellation) so the host stays consistent.
    const id = await withGrace(
      ctx.signal,
      graceMs,
      timed(ctx, outcome, describeStep(step), step.kind, () => applyStep(ctx, step, desired)),
    );
    outcome.changed = true;
    outcome.replicas.push(replicaState(step.replica, id, 'running'));
  }
  // New replicas are independent of each other: started concurrently, over the one connection.
  if (creations.length) {
    throwIfCancelled(ctx.signal, config.timeoutMs);
    const results = await withGrace(
      ctx.signal,
      graceMs,
      Promise.allSettled(
        creations.map((step) =>
          timed(ctx, outcome, describeStep(step), step.kind, () => applyStep(ctx, step, desired)),
        ),
      ),
    );
    results.forEach((r, k) => {
      if (r.status === 'fulfilled') {
        outcome.changed = true;
        outcome.replicas.push(replicaState(creations[k]!.replica, r.value, 'running'));
      }
    });
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
  outcome.replicas.sort((a, b) => replicaNumber(a.name) - replicaNumber(b.name));

  function replicaNumber(name: string): number {
    return Number(name.slice(config.app.app.length)) || 0;
  }
}

/** The rollout's view of this host (its nginx, the gate, the site) from the assembled config. */
function rolloutConfig(ctx: HostContext, dockerConfig: string): RolloutConfig {
  const nginx = ctx.target.nginx;
  const options = ctx.config.rollout;
  if (!nginx || !options) throw new Error(`${ctx.host.name}: a rolling deploy without its nginx settings (a bug)`);
  return {
    app: ctx.config.app.app,
    dockerConfig,
    nginx: nginx.layout,
    address: options.address,
    ...(options.site === undefined ? {} : { site: options.site }),
    health: options.health,
  };
}

/**
 * The rollout behind nginx (src/deploy/rollout.ts): new replicas on their slot's alternate port, health-gated,
 * switched in, old ones drained and stopped together; rolled back by itself on a failed gate, an error or a cancel.
 */
async function applyProxied(
  ctx: HostContext,
  hostPlan: HostPlan,
  rollout: Rollout,
  desired: DesiredState,
  outcome: HostOutcome,
): Promise<void> {
  const plan = hostPlan.replicas;
  const report = await applyRollout(
    { name: ctx.host.name, exec: ctx.exec, sudo: ctx.access.sudo, reporter: ctx.reporter, signal: ctx.signal },
    rolloutConfig(ctx, desired.dockerConfig),
    rollout,
  );
  hostPlan.repairs = report.repairs;
  for (const r of report.records) outcome.steps.push({ description: r.description, kind: 'rollout', ms: r.ms });
  // With no container steps, any record is a repaired nginx file (upstream or site): the host changed.
  outcome.changed = rollout.steps.length > 0 || report.records.length > 0;
  const moved = new Map(rollout.steps.flatMap((s) => (s.kind === 'start' ? [[s.name, s.port] as const] : [])));
  for (const s of plan.steps) {
    if (s.kind === 'remove') continue;
    const kept = s.kind === 'keep' || s.kind === 'start' ? s.container : undefined;
    const port = moved.get(s.replica.name) ?? kept?.port ?? s.replica.hostPort;
    outcome.replicas.push({
      name: s.replica.name,
      id: report.started.get(s.replica.name) ?? kept?.id ?? '',
      ...(port === undefined ? {} : { port }),
      state: 'running',
      version: s.replica.version,
    });
  }
}

async function applyStep(
  ctx: HostContext,
  step: Exclude<Step, { kind: 'remove' | 'keep' }>,
  desired: DesiredState,
): Promise<string> {
  if (step.kind === 'start') {
    await check(ctx, ['docker', 'start', step.container.name], `docker start ${step.container.name}`);
    return step.container.id;
  }
  if (step.kind === 'replace') {
    // Stop first (graceful, the container's stop timeout), then remove: frees the name and the port.
    await check(ctx, dockerStop([step.old.name]), `docker stop ${step.old.name}`);
    await check(ctx, dockerRm([step.old.name]), `docker rm ${step.old.name}`);
  }
  const r = await run(ctx, dockerRun(desired.dockerConfig, step.replica.run), {
    label: `docker run ${step.replica.name}`,
  });
  if (r.code !== 0)
    throw new UserError(`${ctx.host.name}: docker run ${step.replica.name} failed: ${lastLines(r.stderr, 5)}`);
  return r.stdout.trim().split('\n').pop() ?? '';
}

async function login(
  ctx: HostContext,
  config: string,
  registry: string,
  username: string,
  password: string,
): Promise<void> {
  const r = await run(ctx, dockerLogin(config, registry, username), {
    stdin: password,
    label: `docker login ${registry}`,
  });
  if (r.code !== 0)
    throw new UserError(
      `${ctx.host.name}: registry login to ${registry} as ${username} failed (check registry-username and registry-password): ${lastLines(r.stderr, 2)}; nothing was changed`,
    );
}

async function installPlugin(
  ctx: HostContext,
  config: string,
  step: Extract<PrepStep, { kind: 'plugin' }>,
): Promise<void> {
  if (step.action === 'enable') {
    ctx.reporter.info(`${ctx.host.name}: enabling the Docker plugin ${step.alias}`);
    await check(ctx, dockerPluginEnable(step.alias), `docker plugin enable ${step.alias}`);
    return;
  }
  ctx.reporter.info(`${ctx.host.name}: installing the Docker plugin ${step.ref} as ${step.alias}`);
  const r = await run(ctx, dockerPluginInstall(config, step.ref, step.alias), {
    label: `docker plugin install ${step.ref}`,
  });
  if (r.code !== 0)
    throw new UserError(
      `${ctx.host.name}: could not install the log plugin ${step.ref}: ${lastLines(r.stderr, 3)}; nothing was changed`,
    );
}

async function pull(ctx: HostContext, config: string, image: string, mode: 'missing' | 'always'): Promise<void> {
  const r = await run(ctx, mode === 'always' ? dockerPull(config, image) : dockerPullMissing(config, image), {
    label: `docker pull ${image}`,
  });
  if (r.code !== 0)
    throw new UserError(`${ctx.host.name}: cannot pull ${image}: ${lastLines(r.stderr, 3)}; nothing was changed`);
}

/**
 * `pull: always`, before planning, in one round trip (login included, the password on stdin): the image ID the
 * tag names now, and the image ID of each observed container (set on them) so the plan can tell a rebuilt tag.
 */
async function pullFresh(
  ctx: HostContext,
  config: string,
  containers: ObservedContainer[],
  outcome: HostOutcome,
): Promise<string> {
  const { app } = ctx.config;
  const registry = ctx.config.registry.server;
  const username = ctx.config.registry.login?.username;
  const password = ctx.config.registry.login?.password.reveal();
  const login = username && password ? { registry, username } : undefined;
  const r = await timed(ctx, outcome, `pull ${app.image}`, 'pull', () =>
    run(
      ctx,
      pullAndIdentify({
        config,
        image: app.image,
        containers: containers.map((c) => c.id),
        ...(login ? { login } : {}),
      }),
      {
        ...(login ? { stdin: password } : {}),
        label: `docker pull ${app.image}`,
      },
    ),
  );
  if (r.code === LOGIN_FAILED)
    throw new UserError(
      `${ctx.host.name}: registry login to ${registry} as ${username} failed (check registry-username and registry-password): ${lastLines(r.stderr, 2)}; nothing was changed`,
    );
  if (r.code === PULL_FAILED)
    throw new UserError(`${ctx.host.name}: cannot pull ${app.image}: ${lastLines(r.stderr, 3)}; nothing was changed`);
  if (r.code !== 0) throw new CommandFailed(ctx.host.name, `docker pull ${app.image}`, r);
  const pulled = parsePulled(r.stdout, ctx.host.name);
  for (const c of containers) {
    const id = pulled.containers.get(c.id);
    if (id) c.imageId = id;
  }
  return pulled.imageId;
}

/** Secrets reach the host only through stdin, into 0600 files. */
async function writeSecrets(ctx: HostContext, desired: DesiredState): Promise<void> {
  const s = desired.secrets;
  if (!s) return;
  const files = [...(s.envFile ? [s.envFile] : []), ...s.files];
  for (const f of files) {
    const r = await run(ctx, writeFileFromStdin(f.path), { stdin: f.content.reveal(), label: `write ${f.path}` });
    if (r.code !== 0) throw new CommandFailed(ctx.host.name, `write ${f.path}`, r);
  }
}

async function loginPull(
  ctx: HostContext,
  config: string,
  registry: string,
  username: string,
  password: string,
  image: string,
  mode: 'missing' | 'always',
): Promise<void> {
  const r = await run(ctx, loginAndPull({ config, registry, username, image, pull: mode }), {
    stdin: password,
    label: `docker login ${registry} && docker pull ${image}`,
  });
  if (r.code === LOGIN_FAILED)
    throw new UserError(
      `${ctx.host.name}: registry login to ${registry} as ${username} failed (check registry-username and registry-password): ${lastLines(r.stderr, 2)}; nothing was changed`,
    );
  if (r.code !== 0)
    throw new UserError(`${ctx.host.name}: cannot pull ${image}: ${lastLines(r.stderr, 3)}; nothing was changed`);
}

/** The audit line, the pruning of old secrets and the lock's release, in one round trip (falls back to a plain release). */
async function finish(
  exec: Executor,
  access: HostAccess,
  lock: HeldLock,
  entry: Record<string, unknown>,
  prune: { dir: string; keep: string } | undefined,
  reporter: Reporter,
  record?: RecordOptions,
): Promise<void> {
  try {
    await lock.stopRefresh();
    const end = finishDeploy({
      auditLog: auditLog(access.stateDir),
      lockDir: lock.dir,
      holderId: lock.holderId,
      ...(prune ? { prune } : {}),
    });
    const both = await exec.run(record ? bothInOneRoundTrip(recordArgv(record), end) : end, {
      stdin: `${JSON.stringify(entry)}\n`,
      sudo: access.sudo,
      label: record ? 'record the deploy, prune old images, audit and release the lock' : 'audit and release the lock',
      // Pruning removes images (bounded by Docker); the audit alone is quick.
      timeoutMs: record ? 120_000 : 5000,
    });
    let r = both;
    if (record) {
      const split = splitFirstOutput(both);
      reportRecord({ name: exec.host, reporter }, record, split.first);
      r = split.second;
    }
    if (r.code !== 0) reporter.warning(`${exec.host}: could not write the audit log: ${lastLines(r.stderr, 2)}`);
    // The script released the lock if it was still ours (and if it was not, there is nothing of ours to release).
    return;
  } catch (e) {
    reporter.warning(`${exec.host}: could not write the audit log: ${errorMessage(e)}`);
  }
  await lock
    .release()
    .catch((e) => reporter.warning(`${exec.host}: could not release the deploy lock: ${errorMessage(e)}`));
}

function run(ctx: HostContext, argv: string[], opts: ExecOptions) {
  return ctx.exec.run(argv, { ...opts, sudo: ctx.access.sudo });
}

async function check(ctx: HostContext, argv: string[], label: string): Promise<void> {
  const r = await run(ctx, argv, { label });
  if (r.code !== 0) throw new CommandFailed(ctx.host.name, label, r);
}

async function timed<T>(
  ctx: HostContext,
  outcome: HostOutcome,
  description: string,
  kind: StepRecord['kind'],
  fn: () => Promise<T>,
): Promise<T> {
  const t = Date.now();
  ctx.reporter.info(`${ctx.host.name}: ${description}`);
  const v = await fn();
  outcome.steps.push({ description, kind, ms: Date.now() - t });
  return v;
}

function replicaState(
  r: { name: string; hostPort?: number; version: string },
  id: string,
  state: string,
): ReplicaState {
  return { name: r.name, id, ...(r.hostPort === undefined ? {} : { port: r.hostPort }), state, version: r.version };
}

function keptReplicas(plan: Plan, _desired: DesiredState): ReplicaState[] {
  return plan.steps
    .filter((s): s is Extract<Step, { kind: 'keep' }> => s.kind === 'keep')
    .map((s) => replicaState(s.replica, s.container.id, 'running'));
}

function throwIfCancelled(signal: AbortSignal, timeoutMs: number): void {
  if (signal.aborted) throw cancelledError(signal, timeoutMs);
}

function cancelledError(signal: AbortSignal, timeoutMs: number, cause?: unknown): DeployCancelled {
  const reason = signal.reason as unknown;
  if (reason instanceof DeployCancelled) return reason;
  if (reason instanceof DOMException && reason.name === 'TimeoutError')
    return new DeployCancelled(
      `deploy timed out after ${formatDuration(timeoutMs)} (timeout); no new work was started`,
      { cause },
    );
  return new DeployCancelled(
    `deploy cancelled${typeof reason === 'string' ? ` (${reason})` : ''}; no new work was started`,
    {
      cause,
    },
  );
}

/** Resolves with the work, or rejects graceMs after the signal fires if the work is still running. */
function withGrace<T>(signal: AbortSignal, graceMs: number, work: Promise<T>): Promise<T> {
  if (signal.aborted) return work;
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      timer = setTimeout(
        () => reject(new DeployCancelled('deploy cancelled while a command was still running on the host')),
        graceMs,
      );
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => {
      signal.removeEventListener('abort', onAbort);
      if (timer) clearTimeout(timer);
    });
  });
}
