import type { probeInputs } from '../config/actions/probe.js';
import type { ParsedInputs } from '../config/input-spec.js';
import { formatDuration } from '../util/duration.js';
import { InputError } from '../util/errors.js';
import { Secret } from '../util/secret.js';
import { type Condition, parseConditions } from './conditions.js';
import { compileGoRegexp, type GoRegexp } from './regex.js';
import { parseStatusCodes, type StatusRanges } from './status-codes.js';
import type { QueryStep } from './tcp.js';

export type ProbeInputs = ParsedInputs<typeof probeInputs>;

export interface HeaderRule {
  /** Lower-case header name. */
  header: string;
  re: GoRegexp;
  /** A missing header passes the rule (blackbox's allow_missing). */
  allowMissing: boolean;
}

export interface Checks {
  /** tcp:// URLs: blackbox's tcp query_response steps. */
  queryResponse: QueryStep[];
  statusRanges: StatusRanges;
  httpVersions: string[];
  failIfSsl: boolean;
  failIfNotSsl: boolean;
  bodyMatches: GoRegexp[];
  bodyNotMatches: GoRegexp[];
  headerMatches: HeaderRule[];
  headerNotMatches: HeaderRule[];
  conditions: Condition[];
}

/** PEM text as given, or a path read before the first request. */
export type PemSource = { pem: string } | { path: string };
export type Compression = 'gzip' | 'br' | 'deflate' | 'identity';
export type TlsVersion = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

export interface ProxySpec {
  url?: URL;
  noProxy: string[];
  fromEnvironment: boolean;
  connectHeaders: Array<[string, string]>;
}

export interface RequestSpec {
  method: string;
  headers: Array<[string, string]>;
  body?: string;
  bodyFile?: string;
  followRedirects: boolean;
  timeoutMs: number;
  tlsCa?: PemSource;
  tlsCert?: PemSource;
  tlsKey?: PemSource;
  tlsKeyPassphrase?: Secret;
  insecureSkipVerify: boolean;
  serverName?: string;
  minVersion?: TlsVersion;
  maxVersion?: TlsVersion;
  preferredIpProtocol: 'ip4' | 'ip6';
  ipProtocolFallback: boolean;
  http2: boolean;
  compression?: Compression;
  /** Bytes; 0: no limit. */
  bodySizeLimit: number;
  /** tcp:// URLs: TLS right after connecting. */
  tcpTls: boolean;
  proxy: ProxySpec;
}

export interface RetrySpec {
  attempts: number;
  intervalMs: number;
  backoff: number;
  successThreshold: number;
  deadlineMs?: number;
}

export type AuthSpec =
  | { kind: 'none' }
  | { kind: 'basic'; username: string; password: Secret }
  | { kind: 'bearer'; token: Secret }
  | { kind: 'oauth2'; tokenUrl: URL; clientId: string; clientSecret: Secret; scopes: string[] };

export interface AlertSpec {
  onFailure: boolean;
  onRecovery: boolean;
  telegram?: { token: Secret; chatId: string; threadId?: number; apiUrl: URL };
  webhook?: { url: Secret };
}

export interface ProbeConfig {
  targets: URL[];
  request: RequestSpec;
  checks: Checks;
  retry: RetrySpec;
  auth: AuthSpec;
  alerts: AlertSpec;
  prometheusFile?: string;
}

const HTTP_VERSIONS = ['HTTP/1.0', 'HTTP/1.1', 'HTTP/2.0'];

function httpUrl(name: string, text: string, issues: string[]): URL | undefined {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    issues.push(
      `input "${name}": ${JSON.stringify(text)} is not a URL (expected http://host[:port]/path or https://...)`,
    );
    return undefined;
  }
  const tcpOk = name === 'url';
  if (u.protocol !== 'http:' && u.protocol !== 'https:' && !(tcpOk && u.protocol === 'tcp:')) {
    issues.push(
      `input "${name}": ${JSON.stringify(text)} must start with http:// or https://${tcpOk ? ' (or tcp://host:port)' : ''}`,
    );
    return undefined;
  }
  if (u.protocol === 'tcp:' && (!u.port || (u.pathname !== '' && u.pathname !== '/'))) {
    issues.push(`input "${name}": ${JSON.stringify(text)} must be tcp://host:port, with a port and no path`);
    return undefined;
  }
  if (u.hostname === '') {
    issues.push(`input "${name}": ${JSON.stringify(text)} has no host`);
    return undefined;
  }
  return u;
}

function regexps(name: string, lines: string[] | undefined, issues: string[]): GoRegexp[] {
  const out: GoRegexp[] = [];
  for (const l of lines ?? []) {
    const r = compileGoRegexp(l);
    if (r.ok) out.push(r.value);
    else issues.push(`input "${name}": ${JSON.stringify(l)} is not a valid regular expression: ${r.error}`);
  }
  return out;
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";

function headerRules(
  name: string,
  lines: string[] | undefined,
  allowMissing: ReadonlySet<string>,
  issues: string[],
): HeaderRule[] {
  const out: HeaderRule[] = [];
  for (const l of lines ?? []) {
    const m = new RegExp(`^(${TOKEN})\\s*:\\s?(.*)$`).exec(l);
    if (!m) {
      issues.push(`input "${name}": ${JSON.stringify(l)} must be "Header-Name: regexp"`);
      continue;
    }
    if (m[2] === '') {
      issues.push(`input "${name}": ${JSON.stringify(l)} has no regexp after the header name`);
      continue;
    }
    const r = compileGoRegexp(m[2]!);
    if (r.ok) {
      const header = m[1]!.toLowerCase();
      out.push({ header, re: r.value, allowMissing: allowMissing.has(header) });
    } else issues.push(`input "${name}": ${JSON.stringify(m[2])} is not a valid regular expression: ${r.error}`);
  }
  return out;
}

/**
 * `Name: value` (curl, blackbox, Gatus) or `Name=value` lines; the first separator after the name decides, since a
 * header name holds neither. Values keep inner spaces; a single space after `:` is dropped.
 */
export function parseHeaderLines(name: string, lines: readonly string[], issues: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const l of lines) {
    const m = new RegExp(`^\\s*(${TOKEN})\\s*([:=])[ \\t]*(.*?)[ \\t]*$`).exec(l);
    if (!m) {
      issues.push(`input "${name}": ${JSON.stringify(l)} must be "Name: value"`);
      continue;
    }
    if (/[\r\n\0]/.test(m[3]!)) {
      issues.push(`input "${name}": the value of ${m[1]} holds a control character`);
      continue;
    }
    out.push([m[1]!, m[3]!]);
  }
  return out;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kib: 1024,
  kb: 1024,
  k: 1024,
  mib: 1024 ** 2,
  mb: 1024 ** 2,
  m: 1024 ** 2,
  gib: 1024 ** 3,
  gb: 1024 ** 3,
  g: 1024 ** 3,
};

/** `1MiB`, `512KiB`, `10MB` (base 2, as blackbox's units.Base2Bytes) or a number of bytes. Pure. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/.exec(text.trim());
  if (!m) return undefined;
  const unit = SIZE_UNITS[m[2]!.toLowerCase()];
  if (unit === undefined) return undefined;
  return Math.floor(Number(m[1]) * unit);
}

const TLS_VERSIONS: Record<string, TlsVersion> = {
  TLS10: 'TLSv1',
  TLS11: 'TLSv1.1',
  TLS12: 'TLSv1.2',
  TLS13: 'TLSv1.3',
};

function tlsVersion(name: string, text: string | undefined, issues: string[]): TlsVersion | undefined {
  const t = text?.trim();
  if (!t) return undefined;
  const v = TLS_VERSIONS[t.toUpperCase().replace(/[\s._V]/g, '')];
  if (!v) issues.push(`input "${name}": ${JSON.stringify(t)} is not one of TLS10, TLS11, TLS12, TLS13`);
  return v;
}

function pemSource(text: string | undefined): PemSource | undefined {
  const t = text?.trim();
  if (!t) return undefined;
  return t.startsWith('-----BEGIN') ? { pem: t } : { path: t };
}

/**
 * Turns parsed inputs into the probe's configuration. Pure: every check that can be made without the network is
 * made here, and all problems are thrown together as one InputError naming each input, before any request.
 */
export function assembleProbeConfig(i: ProbeInputs): ProbeConfig {
  const issues: string[] = [];

  const targets: URL[] = [];
  for (const u of i.url) {
    const url = httpUrl('url', u, issues);
    if (url) targets.push(url);
  }

  const method = i.method.trim() || 'GET';
  if (!new RegExp(`^${TOKEN}$`).test(method))
    issues.push(`input "method": ${JSON.stringify(i.method)} is not an HTTP method`);
  const headers = parseHeaderLines('headers', i.headers ?? [], issues);
  if (i.body && i['body-file']) issues.push('inputs "body" and "body-file" cannot both be set');

  let compression: Compression | undefined;
  const comp = i.compression?.trim().toLowerCase();
  if (comp) {
    if (comp === 'gzip' || comp === 'br' || comp === 'deflate' || comp === 'identity') compression = comp;
    else issues.push(`input "compression": ${JSON.stringify(i.compression)} is not one of gzip, br, deflate, identity`);
    const accept = headers.find(([k]) => k.toLowerCase() === 'accept-encoding')?.[1];
    if (compression && accept !== undefined && !acceptsEncoding(accept, compression))
      issues.push(
        `input "compression": ${compression} is not acceptable to the Accept-Encoding header ${JSON.stringify(accept)} in "headers"`,
      );
  }
  const bodySizeLimit = parseSize(i['body-size-limit']);
  if (bodySizeLimit === undefined)
    issues.push(
      `input "body-size-limit": ${JSON.stringify(i['body-size-limit'])} is not a size like 1MiB, 512KiB or a number of bytes`,
    );
  const minVersion = tlsVersion('tls-min-version', i['tls-min-version'], issues);
  const maxVersion = tlsVersion('tls-max-version', i['tls-max-version'], issues);
  if (minVersion && maxVersion && minVersion > maxVersion)
    issues.push(
      `input "tls-min-version" (${i['tls-min-version']}) is above "tls-max-version" (${i['tls-max-version']})`,
    );
  const tlsCert = pemSource(i['tls-cert']);
  const tlsKey = pemSource(i['tls-key']);
  if (!!tlsCert !== !!tlsKey) issues.push('inputs "tls-cert" and "tls-key" go together: set both or neither');

  let proxyUrl: URL | undefined;
  if (i['proxy-url']?.trim()) {
    try {
      proxyUrl = new URL(i['proxy-url'].trim());
      if (proxyUrl.protocol !== 'http:') issues.push('input "proxy-url" must be an http:// URL');
    } catch {
      issues.push('input "proxy-url" is not a URL (expected http://host:port)');
    }
  }
  if (proxyUrl && i['proxy-from-environment'])
    issues.push('inputs "proxy-url" and "proxy-from-environment" cannot both be set');
  const connectHeaders = parseHeaderLines('proxy-connect-header', i['proxy-connect-header'] ?? [], issues);
  const allowMissing = new Set((i['allow-missing-headers'] ?? []).map((h) => h.toLowerCase()));
  for (const h of i['allow-missing-headers'] ?? [])
    if (!new RegExp(`^${TOKEN}$`).test(h))
      issues.push(`input "allow-missing-headers": ${JSON.stringify(h)} is not a header name`);

  const status = parseStatusCodes(i['valid-status-codes']);
  if (!status.ok) issues.push(`input "valid-status-codes": ${status.error}`);

  const httpVersions = (i['valid-http-versions'] ?? []).map((v) => {
    const t = v.toUpperCase();
    return /^HTTP\/\d$/.test(t) ? `${t}.0` : t;
  });
  for (const v of httpVersions)
    if (!HTTP_VERSIONS.includes(v))
      issues.push(`input "valid-http-versions": ${JSON.stringify(v)} is not one of ${HTTP_VERSIONS.join(', ')}`);

  if (i.timeout <= 0) issues.push('input "timeout" must be more than 0');
  if (i['fail-if-ssl'] && i['fail-if-not-ssl'])
    issues.push('inputs "fail-if-ssl" and "fail-if-not-ssl" cannot both be true: no URL could pass');

  const conditions = parseConditions(i.conditions ?? []);
  if (!conditions.ok) issues.push(`input "conditions": ${conditions.error}`);

  const backoff = Number(i.backoff.trim());
  if (!/^\d+(\.\d+)?$/.test(i.backoff.trim()) || backoff < 1)
    issues.push(
      `input "backoff" must be a number of at least 1 (1 keeps the interval constant), got ${JSON.stringify(i.backoff)}`,
    );
  if (i['success-threshold'] > i.attempts)
    issues.push(
      `input "success-threshold" (${i['success-threshold']}) is more than "attempts" (${i.attempts}): no URL could pass`,
    );

  // Auth: at most one kind, each complete.
  let auth: AuthSpec = { kind: 'none' };
  const kinds: string[] = [];
  const user = i['basic-auth-username'];
  const pass = i['basic-auth-password'];
  if (user || pass) {
    kinds.push('basic-auth-username/basic-auth-password');
    if (!user) issues.push('input "basic-auth-password" is set but "basic-auth-username" is not');
    else if (user.includes(':')) issues.push('input "basic-auth-username" cannot contain ":"');
    auth = { kind: 'basic', username: user ?? '', password: new Secret(pass ?? '') };
  }
  if (i['bearer-token']) {
    kinds.push('bearer-token');
    auth = { kind: 'bearer', token: new Secret(i['bearer-token'].trim()) };
  }
  const oauth = [i['token-url'], i['client-id'], i['client-secret']];
  if (oauth.some((v) => v)) {
    kinds.push('token-url/client-id/client-secret');
    const missing = (['token-url', 'client-id', 'client-secret'] as const).filter((n) => !i[n]);
    if (missing.length)
      issues.push(
        `OAuth2 client credentials need token-url, client-id and client-secret: missing ${missing.join(', ')}`,
      );
    const tokenUrl = i['token-url'] ? httpUrl('token-url', i['token-url'], issues) : undefined;
    if (tokenUrl && missing.length === 0)
      auth = {
        kind: 'oauth2',
        tokenUrl,
        clientId: i['client-id']!,
        clientSecret: new Secret(i['client-secret']!),
        scopes: i.scopes ?? [],
      };
  } else if (i.scopes?.length) issues.push('input "scopes" needs token-url, client-id and client-secret');
  if (kinds.length > 1) issues.push(`choose one kind of auth, not ${kinds.join(' and ')}`);

  // Alerts.
  const alertOn = i['alert-on'];
  for (const a of alertOn)
    if (a !== 'failure' && a !== 'recovery')
      issues.push(`input "alert-on": ${JSON.stringify(a)} is not failure or recovery`);
  const alerts: AlertSpec = { onFailure: alertOn.includes('failure'), onRecovery: alertOn.includes('recovery') };
  const tg = i['telegram-bot-token'];
  const chat = i['telegram-chat-id']?.trim();
  if (tg && !chat) issues.push('input "telegram-chat-id" is required with "telegram-bot-token"');
  if (!tg && chat) issues.push('input "telegram-bot-token" is required with "telegram-chat-id"');
  const thread = i['telegram-thread-id']?.trim();
  if (thread && !/^\d+$/.test(thread))
    issues.push(`input "telegram-thread-id" must be a whole number, got ${JSON.stringify(thread)}`);
  if (tg && !/^\d+:[A-Za-z0-9_-]+$/.test(tg.trim()))
    issues.push('input "telegram-bot-token" does not look like a bot token (123456:ABC-...)');
  if (chat && !/^(-?\d+|@[A-Za-z0-9_]{4,})$/.test(chat))
    issues.push(`input "telegram-chat-id" must be a numeric id or @channelname, got ${JSON.stringify(chat)}`);
  const apiUrl = httpUrl('telegram-api-url', i['telegram-api-url'], issues);
  if (tg && chat && apiUrl) {
    alerts.telegram = { token: new Secret(tg.trim()), chatId: chat, apiUrl };
    if (thread) alerts.telegram.threadId = Number(thread);
  }
  const hook = i['webhook-url'];
  if (hook) {
    // The URL is a secret (webhook URLs often carry a token): name the input, never echo the value.
    let ok = false;
    try {
      const u = new URL(hook.trim());
      ok = u.protocol === 'http:' || u.protocol === 'https:';
    } catch {}
    if (!ok) issues.push('input "webhook-url" is not an http:// or https:// URL');
    else alerts.webhook = { url: new Secret(hook.trim()) };
  }

  const checks: Checks = {
    statusRanges: status.ok ? status.value : [],
    httpVersions,
    failIfSsl: i['fail-if-ssl'],
    failIfNotSsl: i['fail-if-not-ssl'],
    bodyMatches: regexps('fail-if-body-matches', i['fail-if-body-matches'], issues),
    bodyNotMatches: regexps('fail-if-body-not-matches', i['fail-if-body-not-matches'], issues),
    headerMatches: headerRules('fail-if-header-matches', i['fail-if-header-matches'], allowMissing, issues),
    headerNotMatches: headerRules('fail-if-header-not-matches', i['fail-if-header-not-matches'], allowMissing, issues),
    conditions: conditions.ok ? conditions.value : [],
    queryResponse: queryResponse(i['query-response'] ?? [], issues),
  };
  const named = new Set([...checks.headerMatches, ...checks.headerNotMatches].map((r) => r.header));
  for (const h of i['allow-missing-headers'] ?? [])
    if (!named.has(h.toLowerCase()))
      issues.push(`input "allow-missing-headers": ${h} is named by no fail-if-header-matches/not-matches rule`);

  if (issues.length) throw new InputError(issues, 'probe: invalid input');

  const proxy: ProxySpec = {
    noProxy: i['no-proxy'] ?? [],
    fromEnvironment: i['proxy-from-environment'],
    connectHeaders,
  };
  if (proxyUrl) proxy.url = proxyUrl;
  const request: RequestSpec = {
    method,
    headers,
    followRedirects: i['follow-redirects'],
    timeoutMs: i.timeout,
    insecureSkipVerify: i['tls-insecure-skip-verify'],
    preferredIpProtocol: i['preferred-ip-protocol'],
    ipProtocolFallback: i['ip-protocol-fallback'],
    http2: i['enable-http2'],
    bodySizeLimit: bodySizeLimit ?? 0,
    tcpTls: i.tls,
    proxy,
  };
  if (i.body) request.body = i.body;
  if (i['body-file']?.trim()) request.bodyFile = i['body-file'].trim();
  if (compression) request.compression = compression;
  const ca = pemSource(i['tls-ca']);
  if (ca) request.tlsCa = ca;
  if (tlsCert) request.tlsCert = tlsCert;
  if (tlsKey) request.tlsKey = tlsKey;
  if (i['tls-key-passphrase']) request.tlsKeyPassphrase = new Secret(i['tls-key-passphrase']);
  if (minVersion) request.minVersion = minVersion;
  if (maxVersion) request.maxVersion = maxVersion;
  if (i['tls-server-name']?.trim()) request.serverName = i['tls-server-name'].trim();

  const retry: RetrySpec = {
    attempts: i.attempts,
    intervalMs: i.interval,
    backoff,
    successThreshold: i['success-threshold'],
  };
  if (i.deadline !== undefined) retry.deadlineMs = i.deadline;

  const config: ProbeConfig = { targets, request, checks, retry, auth, alerts };
  if (i['prometheus-file']?.trim()) config.prometheusFile = i['prometheus-file'].trim();
  return config;
}

/** One line describing the plan, printed before the first request. */
export function describeProbe(c: ProbeConfig): string {
  const parts = [
    `${c.request.method} ${c.targets.length} URL${c.targets.length === 1 ? '' : 's'}`,
    `timeout ${formatDuration(c.request.timeoutMs)}`,
    `${c.retry.attempts} attempt${c.retry.attempts === 1 ? '' : 's'}`,
  ];
  if (c.retry.attempts > 1)
    parts.push(`interval ${formatDuration(c.retry.intervalMs)}${c.retry.backoff > 1 ? ` x${c.retry.backoff}` : ''}`);
  if (c.retry.successThreshold > 1) parts.push(`${c.retry.successThreshold} consecutive successes`);
  if (c.retry.deadlineMs !== undefined) parts.push(`deadline ${formatDuration(c.retry.deadlineMs)}`);
  if (c.auth.kind !== 'none') parts.push(`auth ${c.auth.kind}`);
  return `probe: ${parts.join(', ')}`;
}

/** Whether an Accept-Encoding value lets the server send `encoding` (blackbox refuses a configuration where not). */
function acceptsEncoding(accept: string, encoding: string): boolean {
  for (const part of accept.split(',')) {
    const [name, ...params] = part.split(';').map((x) => x.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    if ((name === encoding || name === '*') && !(q && Number(q.slice(2)) === 0)) return true;
  }
  return false;
}

/** `expect: regexp`, `send: text` and `starttls` lines (blackbox's tcp query_response, one step a line). */
function queryResponse(lines: readonly string[], issues: string[]): QueryStep[] {
  const out: QueryStep[] = [];
  for (const l of lines) {
    const m = /^\s*(expect|send|starttls)\s*(?::\s?(.*))?$/.exec(l);
    if (!m || (m[1] !== 'starttls' && m[2] === undefined)) {
      issues.push(`input "query-response": ${JSON.stringify(l)} must be "expect: regexp", "send: text" or "starttls"`);
      continue;
    }
    if (m[1] === 'starttls') out.push({ starttls: true });
    else if (m[1] === 'send') out.push({ send: m[2]! });
    else {
      const r = compileGoRegexp(m[2]!);
      if (r.ok) out.push({ expect: r.value });
      else issues.push(`input "query-response": ${JSON.stringify(m[2])} is not a valid regular expression: ${r.error}`);
    }
  }
  return out;
}
