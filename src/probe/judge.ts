import { type ConditionResult, evaluateCondition } from './conditions.js';
import type { Checks } from './config.js';
import type { Exchange } from './http.js';
import { formatStatusRanges, statusAllowed } from './status-codes.js';

export interface Verdict {
  ok: boolean;
  /** Why the attempt failed, one line per reason. */
  failures: string[];
  conditions: ConditionResult[];
}

/**
 * Judges one attempt with blackbox_exporter's http module semantics, then the Gatus-style conditions. Pure.
 * A request that got no response fails for that reason alone.
 */
export function judge(x: Exchange, checks: Checks, now: Date): Verdict {
  const failures: string[] = [];
  if (x.error) failures.push(x.error.message);
  else {
    const status = x.status ?? 0;
    if (!statusAllowed(checks.statusRanges, status))
      failures.push(`status ${status} is not in ${formatStatusRanges(checks.statusRanges)}`);
    if (checks.httpVersions.length && x.httpVersion && !checks.httpVersions.includes(x.httpVersion))
      failures.push(`${x.httpVersion} is not in ${checks.httpVersions.join(', ')}`);
    if (checks.failIfSsl && x.tls) failures.push('the response came over TLS (fail-if-ssl)');
    if (checks.failIfNotSsl && !x.tls) failures.push('the response did not come over TLS (fail-if-not-ssl)');
    const body = x.body ?? '';
    for (const re of checks.bodyMatches)
      if (re.test(body)) failures.push(`the body matches ${re} (fail-if-body-matches)`);
    for (const re of checks.bodyNotMatches)
      if (!re.test(body)) failures.push(`the body does not match ${re} (fail-if-body-not-matches)`);
    for (const rule of checks.headerMatches) {
      const values = headerValues(x, rule.header);
      if (values.some((v) => rule.re.test(v)))
        failures.push(`header ${rule.header} matches ${rule.re} (fail-if-header-matches)`);
    }
    for (const rule of checks.headerNotMatches) {
      const values = headerValues(x, rule.header);
      if (values.length === 0) failures.push(`header ${rule.header} is missing (fail-if-header-not-matches)`);
      else if (!values.some((v) => rule.re.test(v)))
        failures.push(`header ${rule.header} does not match ${rule.re} (fail-if-header-not-matches)`);
    }
  }
  const obs = {
    connected: x.connected,
    responseTimeMs: x.totalMs,
    now,
    ...(x.status !== undefined ? { status: x.status } : {}),
    ...(x.body !== undefined ? { body: x.body } : {}),
    ...(x.cert?.earliestExpiry ? { certExpiry: x.cert.earliestExpiry } : {}),
    ...(x.ip ? { ip: x.ip } : {}),
  };
  const conditions = checks.conditions.map((c) => evaluateCondition(c, obs));
  // Without a response the error says it all; the conditions are still reported in the result.
  if (!x.error) for (const c of conditions) if (!c.ok) failures.push(`condition failed: ${c.resolved}`);
  return { ok: failures.length === 0, failures, conditions };
}

function headerValues(x: Exchange, name: string): string[] {
  const v = x.headers?.[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [String(v)];
}
