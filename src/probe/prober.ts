import { performance } from 'node:perf_hooks';
import { CookieJar } from 'tough-cookie';
import type { Reporter } from '../github/reporter.js';
import { formatDuration } from '../util/duration.js';
import { errorMessage } from '../util/errors.js';
import type { ConditionResult } from './conditions.js';
import type { AuthSpec, ProbeConfig } from './config.js';
import { type Exchange, exchange, type HeaderValues, type Phase, type PhaseTimings, type TlsInfo } from './http.js';
import { judge, type Verdict } from './judge.js';
import type { TokenSource } from './oauth.js';
import { ipHash, proxyFor, type Resolved, ResolveError, resolveHost } from './route.js';
import { tcpExchange } from './tcp.js';

export const USER_AGENT = 'Dyce probe';

export interface AttemptRecord {
  attempt: number;
  ok: boolean;
  failures: string[];
  status?: number;
  httpVersion?: string;
  durationMs: number;
  timings: PhaseTimings;
  tls: boolean;
  /** Earliest expiry among the certificates the server sent, ISO 8601. */
  certExpiry?: string;
  redirects: number;
  finalUrl: string;
  ip?: string;
  conditions: ConditionResult[];
  /** What blackbox_exporter reports as metrics (see report.ts). */
  metrics: AttemptMetrics;
}

export interface AttemptMetrics {
  protocol: 'http' | 'tcp';
  /** A response came (blackbox's resp != nil). */
  responded: boolean;
  contentLength: number;
  bodyBytes: number;
  /** 1 when a header or body regexp failed the attempt, 0 otherwise (blackbox's probe_failed_due_to_regex). */
  failedDueToRegex: number;
  tlsInfo?: TlsInfo;
  ipProtocol?: 4 | 6;
  ipHash?: number;
  lastModified?: number;
}

/** One line of the attempts table in the job summary. */
export interface AttemptSummary {
  attempt: number;
  ok: boolean;
  status?: number;
  durationMs: number;
  failure?: string;
}

export interface UrlResult {
  url: string;
  success: boolean;
  attempts: number;
  failedAttempts: number;
  last: AttemptRecord;
  /** Every attempt, oldest first. */
  history: AttemptSummary[];
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
  /** The request body (from body or body-file). */
  body?: Buffer;
  /** Client certificate and key, read from tls-cert/tls-key. */
  clientCert?: { cert: string; key: string; passphrase?: string };
  /** The environment (proxy-from-environment). */
  env: NodeJS.ProcessEnv;
}

/** Headers that carry credentials: never sent to an origin other than the probed one. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'cookie2', 'www-authenticate']);
const MAX_REDIRECTS = 10;

export type Followed = Exchange & {
  finalUrl: URL;
  redirects: number;
  /** A redirect response that was not followed (follow-redirects false, or past the limit): its body is unread. */
  notFollowed: boolean;
  /** The first hop's resolution (probe_ip_protocol, probe_dns_lookup_time_seconds). */
  resolved?: Resolved;
  /** tcp:// attempts; http otherwise. */
  protocol?: 'tcp';
  /** tcp: an `expect` step saw no matching line. */
  regexFailed?: boolean;
};

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

/** Go's redirect rules: 301, 302, 303, 307 and 308 with a Location; without one the response is the answer. */
function isRedirect(status: number, headers: HeaderValues): boolean {
  return [301, 302, 303, 307, 308].includes(status) && !!headers.location?.[0];
}

function withAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** One tcp:// attempt: resolve, connect (and TLS), then the query/response steps, within one time limit. */
async function attemptTcp(target: URL, ctx: ProbeContext, timeoutMs: number, why: string): Promise<Followed> {
  const { request, checks } = ctx.config;
  const controller = new AbortController();
  let phase = 'resolving the host name';
  const timer = setTimeout(
    () => controller.abort({ code: 'ETIMEDOUT', message: `${why} after ${formatDuration(timeoutMs)} ${phase}` }),
    timeoutMs,
  );
  const start = performance.now();
  try {
    let hop: Resolved;
    try {
      hop = await withAbort(
        resolveHost(target.hostname, request.preferredIpProtocol, request.ipProtocolFallback),
        controller.signal,
      );
    } catch (e) {
      const r = e as { code?: string; message?: string; ms?: number };
      return {
        connected: false,
        bodyRead: false,
        rawBodyBytes: 0,
        bodyBytes: 0,
        contentLength: -1,
        tls: false,
        timings: { dns: r.ms ?? 0, connect: 0, tls: 0, processing: 0, transfer: 0 },
        totalMs: performance.now() - start,
        error: { code: r.code ?? 'ERROR', message: r.message ?? String(e) },
        finalUrl: target,
        redirects: 0,
        notFollowed: false,
        protocol: 'tcp',
      };
    }
    const x = await tcpExchange(target, {
      address: hop.address,
      tls: {
        ...(ctx.ca ? { ca: ctx.ca } : {}),
        ...(ctx.clientCert ?? {}),
        insecureSkipVerify: request.insecureSkipVerify,
        serverName: request.serverName ?? target.hostname.replace(/^\[|\]$/g, ''),
        ...(request.minVersion ? { minVersion: request.minVersion } : {}),
        ...(request.maxVersion ? { maxVersion: request.maxVersion } : {}),
      },
      tlsAtStart: request.tcpTls,
      steps: checks.queryResponse,
      signal: controller.signal,
      onPhase: (p) => {
        phase = p;
      },
    });
    return {
      ...x,
      timings: { ...x.timings, dns: hop.ms },
      totalMs: performance.now() - start,
      finalUrl: target,
      redirects: 0,
      notFollowed: false,
      resolved: hop,
      protocol: 'tcp',
    };
  } finally {
    clearTimeout(timer);
  }
}

/** One attempt: the request and, when asked, its redirects, within one time limit. */
async function attemptOnce(target: URL, ctx: ProbeContext, timeoutMs: number, why: string): Promise<Followed> {
  if (target.protocol === 'tcp:') return attemptTcp(target, ctx, timeoutMs, why);
  const { request, checks } = ctx.config;
  const controller = new AbortController();
  let phase: Phase = 'resolving the host name';
  const timer = setTimeout(
    () => controller.abort({ code: 'ETIMEDOUT', message: `${why} after ${formatDuration(timeoutMs)} ${phase}` }),
    timeoutMs,
  );
  const start = performance.now();
  const sum: PhaseTimings = { dns: 0, connect: 0, tls: 0, processing: 0, transfer: 0 };
  let url = target;
  let method = request.method;
  let body = ctx.body;
  let sendCredentials = true;
  let redirects = 0;
  let resolved: Resolved | undefined;
  // Made at the first Set-Cookie: most probes never see one.
  let jar: CookieJar | undefined;
  const keepBody =
    checks.bodyMatches.length > 0 ||
    checks.bodyNotMatches.length > 0 ||
    checks.conditions.some((c) => c.placeholder.kind === 'BODY');
  const hasHeader = (n: string) => request.headers.some(([k]) => k.toLowerCase() === n);
  const userHost = request.headers.find(([k]) => k.toLowerCase() === 'host')?.[1];
  const fail = (code: string, message: string, x?: Exchange): Followed => ({
    connected: false,
    bodyRead: false,
    rawBodyBytes: 0,
    bodyBytes: 0,
    contentLength: -1,
    tls: url.protocol === 'https:',
    ...x,
    timings: sum,
    totalMs: performance.now() - start,
    error: { code, message },
    finalUrl: url,
    redirects,
    notFollowed: false,
    ...(resolved ? { resolved } : {}),
  });
  try {
    let auth: string | undefined;
    try {
      auth = await authorization(ctx.config.auth, ctx);
    } catch (e) {
      return fail('EAUTH', errorMessage(e));
    }
    for (;;) {
      phase = 'resolving the host name';
      let hop: Resolved;
      try {
        hop = await withAbort(
          resolveHost(url.hostname, request.preferredIpProtocol, request.ipProtocolFallback),
          controller.signal,
        );
      } catch (e) {
        if (e instanceof ResolveError) {
          sum.dns += e.ms;
          return fail(e.code, e.message);
        }
        const r = e as { code?: string; message?: string };
        return fail(r.code ?? 'ETIMEDOUT', r.message ?? String(e));
      }
      sum.dns += hop.ms;
      resolved ??= hop;
      const sameHost = url.host === target.host;
      const headers: Array<[string, string]> = [];
      for (const [k, v] of request.headers) {
        const n = k.toLowerCase();
        if (!sendCredentials && CREDENTIAL_HEADERS.has(n)) continue;
        if (n === 'host' && !sameHost) continue;
        headers.push([k, v]);
      }
      if (!hasHeader('user-agent')) headers.push(['User-Agent', USER_AGENT]);
      if (auth && sendCredentials && !hasHeader('authorization')) headers.push(['Authorization', auth]);
      if (request.compression && !hasHeader('accept-encoding')) headers.push(['Accept-Encoding', request.compression]);
      const cookies = jar ? await jar.getCookieString(url.href).catch(() => '') : '';
      if (cookies) {
        const i = headers.findIndex(([k]) => k.toLowerCase() === 'cookie');
        if (i >= 0) headers[i] = [headers[i]![0], `${headers[i]![1]}; ${cookies}`];
        else headers.push(['Cookie', cookies]);
      }
      const proxy = proxyFor(url, request.proxy, ctx.env);
      const x = await exchange(url, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        address: hop.address,
        tls: {
          ...(ctx.ca ? { ca: ctx.ca } : {}),
          ...(ctx.clientCert ?? {}),
          insecureSkipVerify: request.insecureSkipVerify,
          serverName: sameHost ? (request.serverName ?? userHost ?? url.hostname) : url.hostname,
          ...(request.minVersion ? { minVersion: request.minVersion } : {}),
          ...(request.maxVersion ? { maxVersion: request.maxVersion } : {}),
        },
        http2: request.http2,
        ...(proxy ? { proxy } : {}),
        signal: controller.signal,
        ...(request.compression ? { compression: request.compression } : {}),
        bodySizeLimit: request.bodySizeLimit,
        keepBody,
        wantBody: (status, h) => !isRedirect(status, h),
        onPhase: (p) => {
          phase = p;
        },
      });
      for (const k of ['connect', 'tls', 'processing', 'transfer'] as const) sum[k] += x.timings[k];
      for (const c of x.headers?.['set-cookie'] ?? []) {
        // Secure cookies go over https only, loopback included, as in Go's jar (tough-cookie's default trusts loopback).
        jar ??= new CookieJar(undefined, { allowSecureOnLocal: false });
        await jar.setCookie(c, url.href, { ignoreError: true });
      }
      const done = (extra: Partial<Followed> = {}): Followed => ({
        ...x,
        timings: sum,
        totalMs: performance.now() - start,
        finalUrl: url,
        redirects,
        notFollowed: false,
        ...(resolved ? { resolved } : {}),
        ...extra,
      });
      if (x.error || x.status === undefined || !isRedirect(x.status, x.headers ?? {})) {
        if (x.status === 401 && ctx.config.auth.kind === 'oauth2') ctx.tokens?.invalidate();
        return done();
      }
      const location = x.headers!.location![0]!;
      // Go's client stops at the 11th redirect and hands back that redirect response, judged as it is.
      if (redirects + 1 > MAX_REDIRECTS || !request.followRedirects)
        return done({ redirects: redirects + 1, notFollowed: true });
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        return fail('EREDIRECT', `redirect to an invalid location ${JSON.stringify(location)}`, x);
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        redirects++;
        return fail('EREDIRECT', `redirect to an unsupported scheme ${next.protocol} (${location})`, x);
      }
      if (next.origin !== target.origin) sendCredentials = false;
      // Go: 301/302/303 turn any method other than GET and HEAD into GET without a body; 307/308 keep both.
      if ((x.status === 301 || x.status === 302 || x.status === 303) && method !== 'GET' && method !== 'HEAD') {
        method = 'GET';
        body = undefined;
      }
      url = next;
      redirects++;
    }
  } finally {
    clearTimeout(timer);
  }
}

function record(n: number, x: Followed, v: Verdict): AttemptRecord {
  const responded = !x.error;
  const metrics: AttemptMetrics = {
    protocol: x.protocol ?? 'http',
    responded,
    contentLength: x.contentLength,
    bodyBytes: x.bodyBytes,
    failedDueToRegex: v.failedDueToRegex ? 1 : 0,
  };
  if ((responded || x.protocol === 'tcp') && x.tlsInfo) metrics.tlsInfo = x.tlsInfo;
  if (x.resolved) {
    metrics.ipProtocol = x.resolved.family;
    metrics.ipHash = ipHash(x.resolved.address);
  }
  const lm = x.headers?.['last-modified']?.[0];
  if (lm && !Number.isNaN(Date.parse(lm))) metrics.lastModified = Math.floor(Date.parse(lm) / 1000);
  const r: AttemptRecord = {
    attempt: n,
    ok: v.ok,
    failures: v.failures,
    durationMs: Math.round(x.totalMs * 1000) / 1000,
    timings: x.timings,
    tls: x.protocol === 'tcp' ? x.tls : responded && x.finalUrl.protocol === 'https:',
    redirects: x.redirects,
    finalUrl: x.finalUrl.href,
    conditions: v.conditions,
    metrics,
  };
  if (x.status !== undefined) r.status = x.status;
  if (x.httpVersion) r.httpVersion = x.httpVersion;
  if (x.tlsInfo?.earliestExpiry) r.certExpiry = x.tlsInfo.earliestExpiry.toISOString();
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
  const history: AttemptSummary[] = [];
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
    last = record(n, x, verdict);
    history.push({
      attempt: n,
      ok: verdict.ok,
      durationMs: last.durationMs,
      ...(x.status !== undefined ? { status: x.status } : {}),
      ...(verdict.ok ? {} : { failure: verdict.failures.join('; ') }),
    });
    const of = `${n}/${retry.attempts}`;
    const ms = `${Math.round(x.totalMs)}ms`;
    if (verdict.ok) {
      consecutive++;
      failStreak = 0;
      const streak = retry.successThreshold > 1 ? ` (${consecutive}/${retry.successThreshold} in a row)` : '';
      ctx.reporter.info(`${label}: attempt ${of} ok: ${x.status} in ${ms}${streak}`);
      if (consecutive >= retry.successThreshold) {
        return { url: label, success: true, attempts: n, failedAttempts, last, history };
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
    history,
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
    metrics: { protocol: 'http', responded: false, contentLength: -1, bodyBytes: 0, failedDueToRegex: 0 },
  };
}
