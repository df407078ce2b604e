import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import {
  LOCK_HELD,
  lockRefresh,
  lockRelease,
  lockTake,
  lockTakeOver,
  type NoopCheck,
  type ObserveOptions,
} from '../commands/host-state.js';
import type { Reporter } from '../github/reporter.js';
import { CommandFailed, type Executor } from '../remote/executor.js';
import { formatDuration } from '../util/duration.js';
import { UserError } from '../util/errors.js';

/** Who holds a deploy lock: written as JSON inside the lock directory. */
export interface LockHolder {
  id: string;
  who: string;
  app: string;
  version: string;
  run?: string;
  from: string;
  pid: number;
  since: string;
}

export function newHolder(app: string, version: string, env: NodeJS.ProcessEnv = process.env): LockHolder {
  const run =
    env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY && env.GITHUB_RUN_ID
      ? `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`
      : undefined;
  return {
    id: randomUUID(),
    who: env.GITHUB_ACTOR ? `${env.GITHUB_ACTOR} (GitHub Actions)` : `${safeUser()}@${hostname()}`,
    app,
    version,
    ...(run ? { run } : {}),
    from: hostname(),
    pid: process.pid,
    since: new Date().toISOString(),
  };
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

export function describeHolder(h: Partial<LockHolder> | undefined): string {
  if (!h?.who) return 'an unknown holder (no details in the lock)';
  return `${h.who} deploying ${h.version ?? '?'}${h.run ? ` (${h.run})` : ''} since ${h.since ?? '?'}`;
}

export interface LockOptions {
  dir: string;
  holder: LockHolder;
  waitMs: number;
  staleMs: number;
  sudo: boolean;
  host: string;
  reporter: Reporter;
  signal?: AbortSignal;
  /** Called when a refresh finds the lock is no longer ours (taken over as stale). */
  onLost?: () => void;
  sleep?: (ms: number) => Promise<void>;
  /** Observe the host in the same round trip, once the lock is ours (its output is `HeldLock.observed`). */
  observe?: ObserveOptions;
  /** With observe: let the host decide that nothing is to be done, and then audit and release at once. */
  noop?: NoopCheck & { auditLine: string };
}

/** A deploy lock this run holds: refreshed in the background until released. */
export interface HeldLock {
  dir: string;
  holderId: string;
  /** What the take's round trip printed after taking the lock (the observation, when asked for). */
  observed: { code: number; stdout: string; stderr: string };
  /** Stops refreshing (before a final command releases the lock some other way). */
  stopRefresh(): Promise<void>;
  release(): Promise<boolean>;
}

/**
 * Takes the per-app lock on a host: `mkdir` is atomic, so exactly one deploy wins. Others wait up to
 * `waitMs`, naming the holder; a lock whose holder file was not refreshed for `staleMs` (by the host's clock)
 * is reported and taken over. The holder refreshes it every min(10 s, staleMs/3).
 */
export async function acquireLock(exec: Executor, o: LockOptions): Promise<HeldLock> {
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const deadline = Date.now() + o.waitMs;
  let announced = '';
  let taken: { code: number; stdout: string; stderr: string };
  for (;;) {
    if (o.signal?.aborted) throw new UserError(`${o.host}: cancelled while waiting for the deploy lock`);
    const r = await exec.run(lockTake(o.dir, o.observe, o.noop), {
      stdin: `${JSON.stringify(o.holder)}\n${o.noop ? `${o.noop.auditLine}\n` : ''}`,
      sudo: o.sudo,
      label: 'take the deploy lock',
    });
    // Exit 1: the lock could not be created. Any other code after the take (an observation that failed) means the
    // lock is ours and must be released by the caller.
    if (r.code === 0 || (o.observe && r.code !== LOCK_HELD && r.code !== 1)) {
      taken = r;
      break;
    }
    if (r.code !== LOCK_HELD) throw new CommandFailed(o.host, 'take the deploy lock', r);
    const [line = '', ageText = '0'] = r.stdout.split('\n');
    const holder = parseHolder(line);
    const ageMs = Number(ageText) * 1000;
    if (ageMs >= o.staleMs) {
      o.reporter.warning(
        `${o.host}: the deploy lock of ${o.holder.app} held by ${describeHolder(holder)} was not refreshed for ${formatDuration(ageMs)} (lock-stale ${formatDuration(o.staleMs)}): taking it over`,
      );
      await exec.run(lockTakeOver(o.dir, holder?.id ?? ''), { sudo: o.sudo, label: 'take over a stale lock' });
      continue;
    }
    if (Date.now() >= deadline)
      throw new UserError(
        `${o.host}: another deploy of ${o.holder.app} holds the lock: ${describeHolder(holder)}; gave up after waiting ${formatDuration(o.waitMs)} (lock-wait)`,
      );
    if (announced !== holder?.id) {
      announced = holder?.id ?? '';
      o.reporter.info(`${o.host}: waiting for the deploy lock held by ${describeHolder(holder)}`);
    }
    await sleep(Math.min(1000, Math.max(50, deadline - Date.now())));
  }

  const every = Math.min(10_000, Math.floor(o.staleMs / 3));
  let refreshing: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    if (refreshing) return;
    refreshing = exec
      .run(lockRefresh(o.dir, o.holder.id), { sudo: o.sudo, label: 'refresh the deploy lock' })
      .then((r) => {
        if (r.code !== 0) {
          o.reporter.warning(`${o.host}: the deploy lock is no longer ours (taken over as stale?)`);
          o.onLost?.();
        }
      })
      .catch(() => {})
      .finally(() => {
        refreshing = undefined;
      });
  }, every);
  timer.unref();
  let released = false;
  return {
    dir: o.dir,
    holderId: o.holder.id,
    observed: taken,
    async stopRefresh() {
      clearInterval(timer);
      await refreshing;
    },
    async release() {
      clearInterval(timer);
      if (released) return false;
      released = true;
      await refreshing;
      const r = await exec.run(lockRelease(o.dir, o.holder.id), {
        sudo: o.sudo,
        label: 'release the deploy lock',
        timeoutMs: 5000,
      });
      return r.code === 0 && r.stdout.includes('released');
    },
  };
}

function parseHolder(line: string): Partial<LockHolder> | undefined {
  try {
    const v = JSON.parse(line) as unknown;
    return v && typeof v === 'object' ? (v as Partial<LockHolder>) : undefined;
  } catch {
    return undefined;
  }
}
