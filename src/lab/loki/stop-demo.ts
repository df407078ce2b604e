/**
 * The lab's demonstration of why Dyce's Loki defaults exist: with Loki hung, a container started with Melton's log
 * options (blocking mode, `loki-retries=5`, default timeout and backoff) takes a long time to `docker stop`, and one
 * started with Dyce's defaults stops quickly. Used by test/lab/loki.test.ts and bench/loki-stop.ts.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Executor, runChecked } from '../../remote/executor.js';
import { LocalExecutor } from '../../remote/local.js';
import { type DockerTarget, dockerArgv } from './plugin.js';

/** Melton's `log_options` (reference playbook), with the lab receiver's URL. */
export function meltonLogOpts(pushUrl: string): Record<string, string> {
  return {
    'loki-url': pushUrl,
    'loki-retries': '5',
    'loki-batch-size': '400',
    'loki-external-labels': 'tag=melton',
  };
}

export function logOptArgs(opts: Record<string, string>): string[] {
  return Object.entries(opts).flatMap(([k, v]) => ['--log-opt', `${k}=${v}`]);
}

/** A shell loop that logs a 150-byte line every 10 ms and exits at once on SIGTERM, like a well-behaved server. */
export const CHATTY_LOOP =
  'trap "exit 0" TERM; p=$(printf "%0150d" 0); i=0; while true; do i=$((i+1)); echo "line $i $p"; sleep 0.01; done';

/** A tiny image from a static busybox (`docker import`): sh, echo, printf, sleep; nothing downloaded. */
export async function ensureBusyboxImage(
  docker: DockerTarget,
  image: string,
  opts: { busybox?: string; exec?: Executor } = {},
): Promise<void> {
  const exec = opts.exec ?? new LocalExecutor();
  if ((await exec.run(dockerArgv(docker, 'image', 'inspect', image))).code === 0) return;
  const dir = mkdtempSync(join(tmpdir(), 'dyce-busybox-'));
  try {
    mkdirSync(join(dir, 'root', 'bin'), { recursive: true });
    copyFileSync(opts.busybox ?? '/usr/bin/busybox', join(dir, 'root', 'bin', 'busybox'));
    for (const applet of ['sh', 'echo', 'printf', 'sleep', 'cat', 'true'])
      symlinkSync('busybox', join(dir, 'root', 'bin', applet));
    await runChecked(exec, ['tar', '-C', join(dir, 'root'), '-cf', join(dir, 'rootfs.tar'), '.']);
    await runChecked(
      exec,
      dockerArgv(docker, 'import', '--change', 'ENTRYPOINT ["/bin/sh", "-c"]', join(dir, 'rootfs.tar'), image),
      {
        label: 'docker import',
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function control(baseUrl: string, method: 'GET' | 'POST', path: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, baseUrl), { method, agent: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>);
        } catch (error) {
          reject(error);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${path}: no answer`)));
    req.on('error', reject);
    req.end();
  });
}

export interface StopTimes {
  meltonMs: number;
  dyceMs: number;
  /** The stop was still running when the cap was reached: the time is a lower bound. */
  meltonCapped: boolean;
  dyceCapped: boolean;
}

export interface StopDemoOptions {
  docker: DockerTarget;
  /** The log-driver name on that daemon (`loki`, or a test alias). */
  driver: string;
  image: string;
  /** The lab receiver's base URL (it must offer /lab/hang, /lab/resume, /lab/status). */
  receiverUrl: string;
  /** Dyce's defaults (the deploy's LOKI_LOG_DEFAULTS). */
  dyceOpts: Readonly<Record<string, string>>;
  /** Seconds the hung receiver gets to back the pipes up before the stops (default 5). */
  settleSeconds?: number;
  /**
   * How long to wait for a stop before calling it "over the cap" (default 60 s). With Melton's options a backed-up
   * FIFO is drained two lines per minute, so the stop would otherwise last until Loki comes back.
   */
  capSeconds?: number;
  exec?: Executor;
  log?: (msg: string) => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Starts the two containers, lets them log to a live receiver, hangs the receiver, then stops both in parallel and
 * measures each `docker stop`. The receiver is resumed and the containers removed whatever happens.
 */
export async function measureStopTimes(opts: StopDemoOptions): Promise<StopTimes> {
  const exec = opts.exec ?? new LocalExecutor();
  const log = opts.log ?? (() => {});
  const pushUrl = new URL('/loki/api/v1/push', opts.receiverUrl).href;
  const suffix = Math.random().toString(16).slice(2, 8);
  const names = { melton: `dyce-stop-melton-${suffix}`, dyce: `dyce-stop-dyce-${suffix}` };
  const run = (name: string, logOpts: Record<string, string>) =>
    runChecked(
      exec,
      dockerArgv(
        opts.docker,
        'run',
        '-d',
        '--name',
        name,
        '--log-driver',
        opts.driver,
        ...logOptArgs(logOpts),
        opts.image,
        CHATTY_LOOP,
      ),
      { label: `docker run ${name}` },
    );
  const capMs = (opts.capSeconds ?? 60) * 1000;
  const pending: Promise<unknown>[] = [];
  const timedStop = async (name: string): Promise<{ ms: number; capped: boolean }> => {
    const t0 = performance.now();
    const stop = runChecked(exec, dockerArgv(opts.docker, 'stop', name), {
      label: `docker stop ${name}`,
      timeoutMs: 900_000,
    });
    pending.push(stop.catch(() => {}));
    let timer: NodeJS.Timeout | undefined;
    const capped = await Promise.race([
      stop.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), capMs);
      }),
    ]);
    clearTimeout(timer);
    return { ms: capped ? capMs : performance.now() - t0, capped };
  };
  try {
    await run(names.melton, meltonLogOpts(pushUrl));
    await run(names.dyce, { 'loki-url': pushUrl, ...opts.dyceOpts });
    const before = Number((await control(opts.receiverUrl, 'GET', '/lab/status')).pushes ?? 0);
    // Both drivers are delivering before Loki goes away.
    const deadline = Date.now() + 30_000;
    while (Number((await control(opts.receiverUrl, 'GET', '/lab/status')).pushes ?? 0) < before + 4) {
      if (Date.now() > deadline) throw new Error('the containers’ logs never reached the receiver');
      await sleep(200);
    }
    await control(opts.receiverUrl, 'POST', '/lab/hang');
    log('receiver hung; letting the pipes back up');
    await sleep((opts.settleSeconds ?? 5) * 1000);
    const [melton, dyce] = await Promise.all([timedStop(names.melton), timedStop(names.dyce)]);
    return { meltonMs: melton.ms, meltonCapped: melton.capped, dyceMs: dyce.ms, dyceCapped: dyce.capped };
  } finally {
    await control(opts.receiverUrl, 'POST', '/lab/resume').catch(() => {});
    // With Loki back, a stop still under way finishes (the FIFO drains).
    await Promise.all(pending);
    await exec.run(dockerArgv(opts.docker, 'rm', '-f', names.melton, names.dyce));
  }
}

export function formatStopTimes(t: StopTimes): string {
  const s = (ms: number, capped: boolean) => `${capped ? '> ' : ''}${(ms / 1000).toFixed(1)} s`;
  return [
    'docker stop, Loki hung                     time',
    `Melton's options (blocking, retries=5)   ${s(t.meltonMs, t.meltonCapped).padStart(9)}${t.meltonCapped ? '  (still stopping: gave up waiting)' : ''}`,
    `Dyce's defaults (non-blocking, 1s/800ms) ${s(t.dyceMs, t.dyceCapped).padStart(9)}`,
    `ratio Melton / Dyce                      ${`${t.meltonCapped ? '> ' : ''}${(t.meltonMs / t.dyceMs).toFixed(1)} x`.padStart(9)}`,
  ].join('\n');
}
