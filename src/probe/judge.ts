import { type ConditionResult, evaluateCondition } from './conditions.js';
import type { Checks, HeaderRule } from './config.js';
import type { Exchange, HeaderValues } from './http.js';
import { formatStatusRanges, statusAllowed } from './status-codes.js';

export interface Verdict {
  ok: boolean;
  /** Why the attempt failed, one line per reason. */
  failures: string[];
  conditions: ConditionResult[];
  /** A header or body regexp failed the attempt (blackbox's probe_failed_due_to_regex). */
  failedDueToRegex: boolean;
}

/** What judge needs beyond the exchange: a redirect that was not followed has no body to match. */
export type Judged = Exchange & { notFollowed?: boolean; protocol?: 'tcp'; regexFailed?: boolean };

const show = (v: string) => JSON.stringify(v.length > 120 ? `${v.slice(0, 117)}...` : v);
const showAll = (vs: string[]) => vs.map(show).join(', ');

function headerFailure(rule: HeaderRule, headers: HeaderValues, mustMatch: boolean): string | undefined {
  const values = headers[rule.header] ?? [];
  const input = mustMatch ? 'fail-if-header-not-matches' : 'fail-if-header-matches';
  if (values.length === 0)
    return rule.allowMissing
      ? undefined
      : `header ${rule.header} is missing (${input}; list it in allow-missing-headers to let it be absent)`;
  const matching = values.filter((v) => rule.re.test(v));
  if (mustMatch && matching.length === 0)
    return `header ${rule.header} ${values.length === 1 ? 'value' : 'values'} ${showAll(values)} ${values.length === 1 ? 'does' : 'do'} not match \`${rule.re.source}\` (${input})`;
  if (!mustMatch && matching.length > 0)
    return `header ${rule.header} value ${show(matching[0]!)} matches \`${rule.re.source}\` (${input})`;
  return undefined;
}

/**
 * Judges one attempt with blackbox_exporter's http prober semantics (prober/http.go), then the Gatus-style
 * conditions. Pure. A request that got no response fails for that reason alone.
 */
export function judge(x: Judged, checks: Checks, now: Date): Verdict {
  const failures: string[] = [];
  let regexFailed = false;
  if (x.error) failures.push(x.error.message);
  if (x.protocol === 'tcp') regexFailed = !!x.regexFailed;
  else if (!x.error) {
    const status = x.status ?? 0;
    const statusOk = statusAllowed(checks.statusRanges, status);
    if (!statusOk) failures.push(`status ${status} is not in ${formatStatusRanges(checks.statusRanges)}`);
    // Header rules: any value matching fails `matches`; no value matching fails `not-matches`; a missing header
    // fails both unless allowed.
    const headers = x.headers ?? {};
    const headerFailures = [
      ...checks.headerMatches.map((r) => headerFailure(r, headers, false)),
      ...checks.headerNotMatches.map((r) => headerFailure(r, headers, true)),
    ].filter((f): f is string => f !== undefined);
    failures.push(...headerFailures);
    if (statusOk && headerFailures.length) regexFailed = true;
    const bodyRules = checks.bodyMatches.length + checks.bodyNotMatches.length;
    if (x.notFollowed) {
      // blackbox_exporter (Go's client) closes the body of a redirect it does not follow: rules that read it fail.
      if (bodyRules)
        failures.push(
          `the ${status} redirect was not followed (follow-redirects is false or past 10 redirects), and its body is not read: fail-if-body-* cannot pass`,
        );
      if (bodyRules && statusOk && !headerFailures.length) regexFailed = true;
    } else if (x.bodyError) {
      failures.push(x.bodyError);
      // blackbox reads the body inside its regexp check: a body that breaks there counts as a regexp failure,
      // except a gzip header that is not one, which fails before.
      if (bodyRules && statusOk && !headerFailures.length && !x.bodyErrorAtStart) regexFailed = true;
    } else {
      const body = x.body ?? '';
      const bodyFailures: string[] = [];
      for (const re of checks.bodyMatches)
        if (re.test(body)) bodyFailures.push(`the body matches \`${re.source}\` (fail-if-body-matches)`);
      for (const re of checks.bodyNotMatches)
        if (!re.test(body)) bodyFailures.push(`the body does not match \`${re.source}\` (fail-if-body-not-matches)`);
      failures.push(...bodyFailures);
      if (statusOk && !headerFailures.length && bodyFailures.length) regexFailed = true;
    }
    if (checks.httpVersions.length && x.httpVersion && !checks.httpVersions.includes(x.httpVersion))
      failures.push(`${x.httpVersion} is not in ${checks.httpVersions.join(', ')} (valid-http-versions)`);
    if (checks.failIfSsl && x.tls) failures.push('the response came over TLS (fail-if-ssl)');
    if (checks.failIfNotSsl && !x.tls) failures.push('the response did not come over TLS (fail-if-not-ssl)');
  }
  const obs = {
    connected: x.connected,
    responseTimeMs: x.totalMs,
    now,
    ...(x.status !== undefined ? { status: x.status } : {}),
    ...(x.body !== undefined ? { body: x.body } : {}),
    ...(x.tlsInfo?.earliestExpiry ? { certExpiry: x.tlsInfo.earliestExpiry } : {}),
    ...(x.ip ? { ip: x.ip } : {}),
  };
  const conditions = checks.conditions.map((c) => evaluateCondition(c, obs));
  // Without a response the error says it all; the conditions are still reported in the result.
  if (!x.error) for (const c of conditions) if (!c.ok) failures.push(`condition failed: ${c.resolved}`);
  return { ok: failures.length === 0, failures, conditions, failedDueToRegex: regexFailed };
}
