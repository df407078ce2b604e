import * as http from 'node:http';
import * as https from 'node:https';
import { performance } from 'node:perf_hooks';

/**
 * A bounded load generator for the zero-downtime test and the rollout bench. Loopback only, bounded in rate,
 * count and time. Every request goes on a NEW connection (`agent: false`), the worst case for a proxy switching
 * upstreams: each request is routed afresh. The mix: 10% `POST /echo` (a non-idempotent request nginx must not
 * retry; its body must come back unchanged), 10% `GET /sleep?ms=1500` (in flight across a switch and a drain),
 * the rest `GET /version` (whose answers show which version served, in order).
 */
export interface LoadOptions {
  /** Loopback only: 127.0.0.1, ::1 or localhost. */
  host?: string;
  port: number;
  /** The Host header (nginx picks the server block by it). */
  hostHeader?: string;
  /** HTTPS without verification (a lab's self-signed certificate), with this SNI name. */
  tls?: { servername?: string };
  /** Requests per second (default 200, at most 1000). */
  rate?: number;
  /** How long to send (at most 10 minutes); `stop()` may end it sooner. */
  durationMs: number;
  /** Per request (default 15 s). */
  timeoutMs?: number;
  /** The sleep endpoint's duration (default 1500 ms). */
  sleepMs?: number;
}

export type RequestKind = 'version' | 'echo' | 'sleep';

export interface LoadFailure {
  kind: RequestKind;
  /** `status 502`, `ECONNRESET`, `timeout`, `echo mismatch`, ... */
  reason: string;
  /** Milliseconds since the start. */
  at: number;
}

export interface LoadResult {
  sent: number;
  ok: number;
  failed: number;
  /** Failures counted by reason. */
  failures: Record<string, number>;
  /** The first 20 failures in detail. */
  firstFailures: LoadFailure[];
  /** Requests sent per kind. */
  byKind: Record<RequestKind, number>;
  /** The versions /version answered, in the order the answers arrived, as runs: [{version, count}, ...]. */
  versionRuns: { version: string; count: number }[];
  /** Distinct versions seen, in order of first appearance. */
  versions: string[];
  ms: number;
}

export interface RunningLoad {
  /** Stops sending, waits for the requests in flight, and returns the result. */
  stop(): Promise<LoadResult>;
  /** Resolves when the duration is over and every request has finished. */
  done: Promise<LoadResult>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export function startLoad(o: LoadOptions): RunningLoad {
  const host = o.host ?? '127.0.0.1';
  if (!LOOPBACK.has(host)) throw new Error(`the load generator only targets the loopback, not ${host}`);
  const rate = Math.min(o.rate ?? 200, 1000);
  const durationMs = Math.min(o.durationMs, 10 * 60_000);
  const maxRequests = Math.ceil((rate * durationMs) / 1000);
  const timeoutMs = o.timeoutMs ?? 15_000;
  const sleepMs = o.sleepMs ?? 1500;
  const started = performance.now();
  const now = () => Math.round(performance.now() - started);
  const result: LoadResult = {
    sent: 0,
    ok: 0,
    failed: 0,
    failures: {},
    firstFailures: [],
    byKind: { version: 0, echo: 0, sleep: 0 },
    versionRuns: [],
    versions: [],
    ms: 0,
  };
  const inFlight = new Set<Promise<void>>();
  let stopped = false;

  const fail = (kind: RequestKind, reason: string) => {
    result.failed++;
    result.failures[reason] = (result.failures[reason] ?? 0) + 1;
    if (result.firstFailures.length < 20) result.firstFailures.push({ kind, reason, at: now() });
  };
  const sawVersion = (v: string) => {
    const last = result.versionRuns.at(-1);
    if (last?.version === v) last.count++;
    else result.versionRuns.push({ version: v, count: 1 });
    if (!result.versions.includes(v)) result.versions.push(v);
  };

  const send = (n: number) => {
    const kind: RequestKind = n % 10 === 0 ? 'echo' : n % 10 === 5 ? 'sleep' : 'version';
    result.sent++;
    result.byKind[kind]++;
    const body = kind === 'echo' ? `echo-${n}-${'x'.repeat(n % 50)}` : undefined;
    const path = kind === 'echo' ? '/echo' : kind === 'sleep' ? `/sleep?ms=${sleepMs}` : '/version';
    const p = request({ host, port: o.port, path, body, hostHeader: o.hostHeader, tls: o.tls, timeoutMs })
      .then((r) => {
        if (r.status !== 200) return fail(kind, `status ${r.status}`);
        if (kind === 'echo' && r.body !== body) return fail(kind, 'echo mismatch');
        if (kind === 'version') {
          if (!r.body.trim()) return fail(kind, 'empty version');
          sawVersion(r.body.trim());
        }
        result.ok++;
      })
      .catch((e: NodeJS.ErrnoException) => fail(kind, e.code ?? e.message))
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };

  let finish: () => void = () => {};
  const sending = new Promise<void>((resolve) => {
    finish = resolve;
  });
  // Sends on a 5 ms tick, catching up to rate × elapsed: the rate holds even when a tick is late.
  const tick = setInterval(() => {
    const elapsed = performance.now() - started;
    if (stopped || elapsed >= durationMs || result.sent >= maxRequests) {
      clearInterval(tick);
      stopped = true;
      finish();
      return;
    }
    const due = Math.min(maxRequests, Math.floor((elapsed * rate) / 1000));
    while (result.sent < due) send(result.sent);
  }, 5);

  const done = sending.then(async () => {
    while (inFlight.size) await Promise.allSettled([...inFlight]);
    result.ms = now();
    return result;
  });
  return {
    done,
    stop: () => {
      stopped = true;
      return done;
    },
  };
}

/** Runs the load for its whole duration. */
export function runLoad(o: LoadOptions): Promise<LoadResult> {
  return startLoad(o).done;
}

/** One line for a test failure message or the bench: counts, reasons and the version runs. */
export function describeLoad(r: LoadResult): string {
  const reasons = Object.entries(r.failures)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');
  const runs = r.versionRuns.map((x) => `${x.version}×${x.count}`).join(' ');
  return `${r.sent} requests in ${r.ms}ms, ${r.failed} failed${reasons ? ` (${reasons})` : ''}; versions: ${runs || '(none)'}`;
}

interface Answer {
  status: number;
  body: string;
}

function request(o: {
  host: string;
  port: number;
  path: string;
  body: string | undefined;
  hostHeader: string | undefined;
  tls: { servername?: string } | undefined;
  timeoutMs: number;
}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { connection: 'close' };
    if (o.hostHeader) headers.host = o.hostHeader;
    if (o.body !== undefined) {
      headers['content-type'] = 'text/plain';
      headers['content-length'] = String(Buffer.byteLength(o.body));
    }
    const opts: https.RequestOptions = {
      host: o.host,
      port: o.port,
      path: o.path,
      method: o.body === undefined ? 'GET' : 'POST',
      headers,
      agent: false,
      timeout: o.timeoutMs,
    };
    const req = o.tls
      ? https.request({
          ...opts,
          rejectUnauthorized: false,
          ...(o.tls.servername ? { servername: o.tls.servername } : {}),
        })
      : http.request(opts);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
    req.on('error', reject);
    req.end(o.body);
  });
}
