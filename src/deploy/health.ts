import { request as httpRequest } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { dockerLogsTail } from '../commands/replica.js';
import type { Executor } from '../remote/executor.js';
import { formatDuration } from '../util/duration.js';
import { errorMessage } from '../util/errors.js';

/**
 * The health gate: a new replica takes traffic only once its health endpoint answers with an accepted status.
 *
 * Why an HTTP check from Dyce itself, tunnelled through the deploy's SSH connection (ssh2 `forwardOut` to the
 * replica's port on the host's loopback), rather than Docker's HEALTHCHECK:
 * - it needs nothing in the image or on the host: no curl or wget (the sample app has neither; distroless
 *   images have no shell at all), and no HEALTHCHECK the user must add to a Dockerfile they may not own;
 * - it checks the path traffic will take: the published host port (or host-network port) nginx will proxy to,
 *   not a port inside the container's network namespace; a wrong `-p` or a port-env the app ignores fails here;
 * - it is bounded and observed by Dyce: each check has its own timeout, the gate its own deadline, and the
 *   failure message can say exactly what the last check saw (status, body, error). Docker's status is
 *   "starting/unhealthy" with an interval fixed in the image, and polling it costs a round trip per check anyway;
 * - it opens no port: the tunnel rides the SSH connection Dyce already holds, so replicas stay bound to 127.0.0.1.
 */

/** Opens a TCP stream to a port on the host's loopback. */
export type Dial = (port: number) => Promise<Duplex>;

/** Through the SSH connection when the executor has one (forwardOut); this machine's loopback otherwise (a local host). */
export function dialerFor(exec: Executor): Dial {
  const tunnel = exec as Executor & { forwardOut?: (port: number) => Promise<Duplex> };
  if (typeof tunnel.forwardOut === 'function') return (port) => tunnel.forwardOut!(port);
  return (port) =>
    new Promise((resolve, reject) => {
      const s = netConnect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.off('error', reject);
        resolve(s);
      });
      s.once('error', reject);
    });
}

export interface HealthCheck {
  ok: boolean;
  /** The HTTP status, when an answer came. */
  status?: number;
  /** The first bytes of the body (at most 200 characters), when an answer came. */
  body?: string;
  /** Why there was no usable answer (refused, timed out, closed early, malformed). */
  error?: string;
  ms: number;
}

export interface GateOptions {
  /** e.g. /health. Must start with `/`; no blanks or control characters. */
  path: string;
  /** Bound of each check. */
  timeoutMs: number;
  /** Pause between checks. */
  intervalMs: number;
  /** Bound of the whole gate. */
  deadlineMs: number;
  /** Which statuses count as healthy (default 200-299). */
  accept?: (status: number) => boolean;
  signal?: AbortSignal;
  /** Told about every check (for logs). */
  onCheck?: (check: HealthCheck, n: number) => void;
}

export interface GateResult {
  healthy: boolean;
  /** How many checks ran. */
  checks: number;
  /** The last check: what the failure message shows. */
  last: HealthCheck | undefined;
  /** Until healthy, or until the gate gave up. */
  ms: number;
  /** The gate stopped because the signal fired. */
  cancelled: boolean;
}

const BODY_EXCERPT = 200;
const MIN_CHECK_MS = 250;

export function isValidHealthPath(path: string): boolean {
  // Bytes nginx or the app could read as the end of the request line (CR, LF, blanks) are a request-smuggling risk.
  return /^\/[\x21-\x7e]*$/.test(path);
}

const is2xx = (s: number) => s >= 200 && s <= 299;

/** One check: GET path over a fresh stream, bounded by timeoutMs (dial included). Never throws. */
export async function checkOnce(
  dial: Dial,
  port: number,
  path: string,
  timeoutMs: number,
  accept: (status: number) => boolean = is2xx,
): Promise<HealthCheck> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  if (!isValidHealthPath(path)) return { ok: false, error: `invalid health path ${JSON.stringify(path)}`, ms: 0 };
  let stream: Duplex | undefined;
  let expired = false;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      expired = true;
      reject(new Error(`no answer within ${formatDuration(timeoutMs)}`));
    }, timeoutMs);
  });
  try {
    const dialing = dial(port).then((s) => {
      // A stream that opens after the check gave up is closed at once rather than leaked.
      if (expired) s.destroy();
      return s;
    });
    dialing.catch(() => {});
    stream = await Promise.race([dialing, timeout]);
    const r = await Promise.race([exchange(stream, port, path), timeout]);
    return { ok: accept(r.status), status: r.status, body: r.body.slice(0, BODY_EXCERPT), ms: ms() };
  } catch (error) {
    return { ok: false, error: describeError(error), ms: ms() };
  } finally {
    clearTimeout(timer);
    stream?.destroy();
  }
}

/** Checks every intervalMs until a check passes, the deadline passes, or the signal fires. Never throws. */
export async function waitHealthy(dial: Dial, port: number, o: GateOptions): Promise<GateResult> {
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  let checks = 0;
  let last: HealthCheck | undefined;
  const result = (healthy: boolean, cancelled = false): GateResult => ({
    healthy,
    checks,
    last,
    ms: Math.round(elapsed()),
    cancelled,
  });
  while (true) {
    if (o.signal?.aborted) return result(false, true);
    const left = o.deadlineMs - elapsed();
    if (left <= 0) return result(false);
    // A check squeezed into the deadline's last milliseconds could only time out, and would hide what the
    // previous check saw (the failure message shows the last check).
    if (last && left < Math.min(o.timeoutMs, MIN_CHECK_MS)) return result(false);
    last = await checkOnce(dial, port, o.path, Math.max(1, Math.min(o.timeoutMs, left)), o.accept);
    checks++;
    o.onCheck?.(last, checks);
    if (last.ok) return result(true);
    const pause = Math.min(o.intervalMs, o.deadlineMs - elapsed());
    if (pause <= 0) return result(false);
    if (!(await sleep(pause, o.signal))) return result(false, true);
  }
}

/** What a check saw, in one line for a failure message. */
export function describeCheck(c: HealthCheck | undefined): string {
  if (!c) return 'no check ran';
  if (c.status !== undefined) {
    const body = c.body?.trim().replace(/\s+/g, ' ');
    return `HTTP ${c.status}${body ? `: ${JSON.stringify(body)}` : ' (empty body)'}`;
  }
  return c.error ?? 'no answer';
}

/** The last lines of a container's log (stdout and stderr), or a note saying why there are none. Never throws. */
export async function containerLogTail(
  exec: Executor,
  name: string,
  opts: { lines?: number; sudo?: boolean; timeoutMs?: number } = {},
): Promise<string> {
  try {
    const r = await exec.run(dockerLogsTail(name, opts.lines ?? 20), {
      label: `docker logs --tail ${opts.lines ?? 20} ${name}`,
      timeoutMs: opts.timeoutMs ?? 10_000,
      ...(opts.sudo === undefined ? {} : { sudo: opts.sudo }),
    });
    const text = r.stdout.replace(/\s+$/, '');
    if (r.code !== 0)
      return `(docker logs ${name} failed: ${text.split('\n').slice(-2).join(' ') || `exit ${r.code}`})`;
    return text || '(the log is empty)';
  } catch (error) {
    return `(cannot read the log of ${name}: ${errorMessage(error)})`;
  }
}

interface Answer {
  status: number;
  body: string;
}

/**
 * One GET over the already-open stream, through node:http (`Connection: close`): the status, and the body up to
 * an excerpt's worth (chunked or not: node decodes it). The response is not read further.
 */
function exchange(stream: Duplex, port: number, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      createConnection: () => stream as Socket,
      method: 'GET',
      path,
      headers: {
        Host: `127.0.0.1:${port}`,
        'User-Agent': 'dyce-health-gate',
        Accept: '*/*',
        Connection: 'close',
      },
    });
    req.once('error', (e) => reject(httpError(e)));
    req.once('response', (res) => {
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let size = 0;
      const done = () => {
        res.off('data', onData);
        resolve({ status, body: Buffer.concat(chunks).toString('utf8') });
      };
      const onData = (d: Buffer) => {
        chunks.push(d);
        size += d.length;
        if (size >= BODY_EXCERPT * 4) {
          done();
          res.destroy();
        }
      };
      res.on('data', onData);
      res.once('end', done);
      // A body cut short still shows what came (the status decides the check).
      res.once('aborted', done);
      res.once('error', done);
    });
    req.end();
  });
}

/** node:http's errors in the words of a health check. */
function httpError(e: Error & { code?: string; reason?: string }): Error {
  if (e.code === 'ECONNRESET' && e.message === 'socket hang up')
    return new Error('the connection closed without an answer (accepted, then closed: is the app listening yet?)');
  if (e.code?.startsWith('HPE_')) return new Error(`not an HTTP answer (${e.reason ?? e.message})`);
  return e;
}

function describeError(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (code === 'ECONNREFUSED') return 'connection refused (nothing listens on the port yet)';
  if (code === 'ECONNRESET') return 'connection reset';
  return errorMessage(error);
}

/** Waits `ms`; resolves false at once if `signal` aborts (shared by the health gate and the rollout). */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
