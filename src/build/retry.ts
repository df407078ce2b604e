/**
 * Which registry failures are worth retrying. `docker push` and `docker login` exit 1 for every failure and give
 * no structured answer, so their error text is all there is to judge by; the patterns below are the messages of
 * the docker daemon's registry client (Go's net/http and the distribution client).
 */
export type FailureKind = 'auth' | 'transient' | 'fatal';

const AUTH = [
  /\b401\b/,
  /\bunauthorized\b/i,
  /authentication required/i,
  /incorrect username or password/i,
  /\bdenied\b/i,
  /\b403\b/,
];

const TRANSIENT = [
  /\b5\d\d (?:Internal|Bad|Service|Gateway|Not Implemented|HTTP)/i,
  /unexpected (?:HTTP )?status:? 5\d\d\b/i,
  /status(?: code)?:? 5\d\d\b/i,
  /\b429\b/,
  /too ?many ?requests/i,
  /time(?:d)? ?out/i,
  /connection reset/i,
  /connection refused/i,
  /broken pipe/i,
  /\bEOF\b/,
  /server misbehaving/i,
  /service unavailable/i,
  /bad gateway/i,
  /request canceled/i,
];

/** 401/403 first: a refused login must never be retried, even if the message also mentions a timeout. */
export function classifyRegistryFailure(text: string): FailureKind {
  if (AUTH.some((r) => r.test(text))) return 'auth';
  if (TRANSIENT.some((r) => r.test(text))) return 'transient';
  return 'fatal';
}

/** Exponential backoff: base, 2×base, 4×base, … capped. Attempt counts from 1. */
export function backoffMs(attempt: number, baseMs: number, capMs = 30_000): number {
  return Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
}

/** The most telling line of a docker error, for messages. */
export function errorLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return (
    lines.findLast((l) => /error|denied|unauthorized|failed|reset|refused|timeout|EOF/i.test(l)) ??
    lines.at(-1) ??
    '(no output)'
  );
}
