import type { probeInputs } from '../config/actions/probe.js';
import type { ParsedInputs } from '../config/input-spec.js';
import { formatDuration } from '../util/duration.js';
import { InputError } from '../util/errors.js';
import { Secret } from '../util/secret.js';
import { type Condition, parseConditions } from './conditions.js';
import type { IpProtocol } from './http.js';
import { parseStatusCodes, type StatusRanges } from './status-codes.js';

export type ProbeInputs = ParsedInputs<typeof probeInputs>;

export interface HeaderRule {
  header: string;
  re: RegExp;
  text: string;
}

export interface Checks {
  statusRanges: StatusRanges;
  httpVersions: string[];
  failIfSsl: boolean;
  failIfNotSsl: boolean;
  bodyMatches: RegExp[];
  bodyNotMatches: RegExp[];
  headerMatches: HeaderRule[];
  headerNotMatches: HeaderRule[];
  conditions: Condition[];
}

export interface RequestSpec {
  method: string;
  headers: Array<[string, string]>;
  body?: string;
  followRedirects: boolean;
  timeoutMs: number;
  /** `tls-ca` as given: PEM text, or a path read before the first request. */
  tlsCa?: { pem: string } | { path: string };
  insecureSkipVerify: boolean;
  serverName?: string;
  ipProtocol: IpProtocol;
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
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    issues.push(`input "${name}": ${JSON.stringify(text)} must start with http:// or https://`);
    return undefined;
  }
  if (u.hostname === '') {
    issues.push(`input "${name}": ${JSON.stringify(text)} has no host`);
    return undefined;
  }
  return u;
}

function regexps(name: string, lines: string[] | undefined, issues: string[]): RegExp[] {
  const out: RegExp[] = [];
  for (const l of lines ?? []) {
    try {
      out.push(new RegExp(l));
    } catch (e) {
      issues.push(`input "${name}": ${JSON.stringify(l)} is not a valid regular expression (${(e as Error).message})`);
    }
  }
  return out;
}

function headerRules(name: string, lines: string[] | undefined, issues: string[]): HeaderRule[] {
  const out: HeaderRule[] = [];
  for (const l of lines ?? []) {
    const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*:\s?(.*)$/.exec(l);
    if (!m) {
      issues.push(`input "${name}": ${JSON.stringify(l)} must be "Header-Name: regexp"`);
      continue;
    }
    try {
      out.push({ header: m[1]!.toLowerCase(), re: new RegExp(m[2]!), text: l });
    } catch (e) {
      issues.push(
        `input "${name}": ${JSON.stringify(m[2])} is not a valid regular expression (${(e as Error).message})`,
      );
    }
  }
  return out;
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

  const method = i.method.trim().toUpperCase();
  if (!/^[A-Z]+$/.test(method)) issues.push(`input "method": ${JSON.stringify(i.method)} is not an HTTP method`);

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
    headerMatches: headerRules('fail-if-header-matches', i['fail-if-header-matches'], issues),
    headerNotMatches: headerRules('fail-if-header-not-matches', i['fail-if-header-not-matches'], issues),
    conditions: conditions.ok ? conditions.value : [],
  };

  if (issues.length) throw new InputError(issues, 'probe: invalid input');

  const request: RequestSpec = {
    method,
    headers: (i.headers ?? []).map((e) => [e.key, e.value]),
    followRedirects: i['follow-redirects'],
    timeoutMs: i.timeout,
    insecureSkipVerify: i['tls-insecure-skip-verify'],
    ipProtocol: i['ip-protocol'],
  };
  if (i.body) request.body = i.body;
  const ca = i['tls-ca']?.trim();
  if (ca) request.tlsCa = ca.startsWith('-----BEGIN') ? { pem: ca } : { path: ca };
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
