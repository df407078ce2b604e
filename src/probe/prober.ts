import { performance } from 'node:perf_hooks';
import type { Reporter } from '../github/reporter.js';
import { formatDuration } from '../util/duration.js';
import { errorMessage } from '../util/errors.js';
import type { ConditionResult } from './conditions.js';
import type { AuthSpec, ProbeConfig } from './config.js';
import { type Exchange, exchange, type PhaseTimings } from './http.js';
import { judge } from './judge.js';
import type { TokenSource } from './oauth.js';

export interface AttemptRecord {
  attempt: number;
  ok: boolean;
  failures: string[];
  status?: number;
  httpVersion?: string;
  durationMs: number;
  timings: PhaseTimings;
  tls: boolean;
  /** Earliest expiry in the certificate chain, ISO 8601. */
  certExpiry?: string;
  redirects: number;
  finalUrl: string;
  ip?: string;
  conditions: ConditionResult[];
}

export interface UrlResult {
  url: string;
  success: boolean;
  attempts: number;
  failedAttempts: number;
  last: AttemptRecord;
  /** Why the URL failed (the last attempt's reasons, or the deadline). */
  reason?: string;
}

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

export interface ProbeContext {
  config: ProbeConfig;
  /** Extra trusted CAs, read from tls-ca. */
  ca?: string[];
  tokens?: TokenSource;
  reporter: Reporter;
  clock: Clock;
  /** Epoch ms after which no attempt starts. */
  deadlineAt?: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
/** Headers that carry credentials: never sent to an origin other than the probed one. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie']);

type Followed = Exchange & { finalUrl: URL; redirects: number };

async function authorization(auth: AuthSpec, ctx: ProbeContext): Promise<string | undefined> {
  switch (auth.kind) {
    case 'none':
      return undefined;
    case 'basic': {
      const value = Buffer.from(`${auth.username}:${auth.password.reveal()}`).toString('base64');
      ctx.reporter.secret(value);
      return `Basic ${value}`;
    }
    case 'bearer':
      return `Bearer ${auth.token.reveal()}`;
    case 'oauth2':
      return `Bearer ${await ctx.tokens!.token()}`;
  }
}

/** One attempt: the request and, when asked, its redirects, within one time limit. */
async function attemptOnce(target: URL, ctx: ProbeContext, timeoutMs: number, why: string): Promise<Followed> {
  const { request } = ctx.config;
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort({ code: 'ETIMEDOUT', message: `${why} after ${formatDuration(timeoutMs)}` }),
    timeoutMs,
  );
  const start = performance.now();
  const sum: PhaseTimings = { dns: 0, connect: 0, tls: 0, processing: 0, transfer: 0 };
  let url = target;
  let method = request.method;
  let body = request.body;
  let sendCredentials = true;
  let redirects = 0;
  const base: Record<string, string> = { 'user-agent': 'dyce-probe' };
  for (const [k, v] of request.headers) base[k.toLowerCase()] = v;
  try {
    let auth: string | undefined;
    try {
      auth = await authorization(ctx.config.auth, ctx);
    } catch (e) {
      return {
        connected: false,
        bodyBytes: 0,
        tls: false,
        timings: sum,
        totalMs: performance.now() - start,
        error: { code: 'EAUTH', message: errorMessage(e) },
        finalUrl: url,
        redirects,
      };
    }
    for (;;) {
      const headers = { ...base };
      if (auth) headers.authorization = auth;
      // Credentials stay with the origin they were meant for: once a redirect leaves it, they are dropped for
      // the rest of the chain (as curl and browsers do), whatever the user put in `headers`.
      if (!sendCredentials) for (const h of CREDENTIAL_HEADERS) delete headers[h];
      const sameHost = url.host === target.host;
      const x = await exchange(url, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        tls: {
          ...(ctx.ca ? { ca: ctx.ca } : {}),
          insecureSkipVerify: request.insecureSkipVerify,
          ...(request.serverName && sameHost ? { serverName: request.serverName } : {}),
        },
        ipProtocol: request.ipProtocol,
        signal: controller.signal,
      });
      for (const k of Object.keys(sum) as Array<keyof PhaseTimings>) sum[k] += x.timings[k];
      const location = x.headers?.location;
      if (!x.error && request.followRedirects && REDIRECTS.has(x.status ?? 0) && location) {
        const fail = (message: string): Followed => ({
          ...x,
          timings: sum,
          totalMs: performance.now() - start,
          error: { code: 'EREDIRECT', message },
          finalUrl: url,
          redirects,
        });
        if (redirects >= MAX_REDIRECTS) return fail(`more than ${MAX_REDIRECTS} redirects`);
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          return fail(`redirect to an invalid location ${JSON.stringify(location)}`);
        }
        if (next.protocol !== 'http:' && next.protocol !== 'https:')
          return fail(`redirect to a non-HTTP location ${next.protocol}`);
        if (next.origin !== target.origin) sendCredentials = false;
        if (x.status === 303 ? method !== 'HEAD' : (x.status === 301 || x.status === 302) && method === 'POST') {
          method = 'GET';
          body = undefined;
        }
        url = next;
        redirects++;
        continue;
      }
      if (x.status === 401 && ctx.config.auth.kind === 'oauth2') ctx.tokens?.invalidate();
      return { ...x, timings: sum, totalMs: performance.now() - start, finalUrl: url, redirects };
    }
  } finally {
    clearTimeout(timer);
  }
}

function record(n: number, x: Followed, ok: boolean, failures: string[], conditions: ConditionResult[]): AttemptRecord {
  const r: AttemptRecord = {
    attempt: n,
    ok,
    failures,
    durationMs: Math.round(x.totalMs * 1000) / 1000,
    timings: x.timings,
    tls: x.finalUrl.protocol === 'https:',
    redirects: x.redirects,
    finalUrl: x.finalUrl.href,
    conditions,
  };
  if (x.status !== undefined) r.status = x.status;
  if (x.httpVersion) r.httpVersion = x.httpVersion;
  if (x.cert?.earliestExpiry) r.certExpiry = x.cert.earliestExpiry.toISOString();
  if (x.ip) r.ip = x.ip;
  return r;
}

/**
 * Probes one URL until it passes `success-threshold` attempts in a row, runs out of attempts, or reaches the
 * deadline. Connection refused, timeouts and bad answers all count as failed attempts. Prints a line per attempt.
 */
export async function probeTarget(target: URL, ctx: ProbeContext): Promise<UrlResult> {
  const { retry, request } = ctx.config;
  const label = target.href;
  let consecutive = 0;
  let failedAttempts = 0;
  let failStreak = 0;
  let last: AttemptRecord | undefined;
  let reason: string | undefined;
  for (let n = 1; n <= retry.attempts; n++) {
    let timeoutMs = request.timeoutMs;
    let why = 'timed out';
    if (ctx.deadlineAt !== undefined) {
      const left = ctx.deadlineAt - ctx.clock.now();
      if (left <= 0) {
        reason = `the deadline was reached after ${n - 1} attempt${n === 2 ? '' : 's'}`;
        break;
      }
      if (left < timeoutMs) {
        timeoutMs = left;
        why = 'the deadline was reached';
      }
    }
    const x = await attemptOnce(target, ctx, timeoutMs, why);
    const verdict = judge(x, ctx.config.checks, new Date(ctx.clock.now()));
    last = record(n, x, verdict.ok, verdict.failures, verdict.conditions);
    const of = `${n}/${retry.attempts}`;
    const ms = `${Math.round(x.totalMs)}ms`;
    if (verdict.ok) {
      consecutive++;
      failStreak = 0;
      const streak = retry.successThreshold > 1 ? ` (${consecutive}/${retry.successThreshold} in a row)` : '';
      ctx.reporter.info(`${label}: attempt ${of} ok: ${x.status} in ${ms}${streak}`);
      if (consecutive >= retry.successThreshold) {
        return { url: label, success: true, attempts: n, failedAttempts, last };
      }
    } else {
      consecutive = 0;
      failedAttempts++;
      failStreak++;
      ctx.reporter.info(`${label}: attempt ${of} failed after ${ms}: ${verdict.failures.join('; ')}`);
    }
    if (n === retry.attempts) break;
    const wait = verdict.ok
      ? retry.intervalMs
      : Math.round(retry.intervalMs * retry.backoff ** Math.max(0, failStreak - 1));
    if (ctx.deadlineAt !== undefined && ctx.clock.now() + wait >= ctx.deadlineAt) {
      reason = `the deadline is reached before attempt ${n + 1}`;
      break;
    }
    if (wait > 0) {
      ctx.reporter.info(`${label}: next attempt in ${formatDuration(wait)}`);
      await ctx.clock.sleep(wait);
    }
  }
  const lastFailures = last && !last.ok ? last.failures.join('; ') : undefined;
  const because =
    reason && lastFailures
      ? `${reason}; last attempt: ${lastFailures}`
      : (reason ?? lastFailures ?? `only ${consecutive} of ${retry.successThreshold} consecutive successful attempts`);
  return {
    url: label,
    success: false,
    attempts: last?.attempt ?? 0,
    failedAttempts,
    last: last ?? emptyRecord(label),
    reason: because,
  };
}

function emptyRecord(url: string): AttemptRecord {
  return {
    attempt: 0,
    ok: false,
    failures: [],
    durationMs: 0,
    timings: { dns: 0, connect: 0, tls: 0, processing: 0, transfer: 0 },
    tls: url.startsWith('https:'),
    redirects: 0,
    finalUrl: url,
    conditions: [],
  };
}
