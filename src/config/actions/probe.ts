import { type ActionSpec, input } from '../input-spec.js';

/**
 * The probe's inputs. Names follow blackbox_exporter's http module where they overlap
 * (`valid-status-codes`, `fail-if-body-matches`, ...), in the project's kebab-case.
 */
export const probeInputs = {
  url: input.list({ description: 'URL(s) to probe, each probed concurrently', required: true }),
  method: input.string({ description: 'HTTP method', default: 'GET' }),
  headers: input.map({
    description: 'Request headers as `Name=value` lines',
    keyPattern: /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/,
  }),
  body: input.string({ description: 'Request body' }),
  'valid-status-codes': input.string({
    description: 'Status codes that pass: codes and ranges, e.g. `200-299,204`',
    default: '200-299',
  }),
  'valid-http-versions': input.list({
    description: 'HTTP versions that pass, e.g. `HTTP/1.1` (empty: any)',
  }),
  'follow-redirects': input.boolean({ description: 'Follow redirects (up to 10)', default: 'true' }),
  timeout: input.duration({ description: 'Timeout of one attempt, redirects and body included', default: '10s' }),
  'fail-if-ssl': input.boolean({ description: 'Fail when the final response came over TLS', default: 'false' }),
  'fail-if-not-ssl': input.boolean({
    description: 'Fail when the final response did not come over TLS',
    default: 'false',
  }),
  'fail-if-body-matches': input.lines({ description: 'Fail when the body matches any of these regexps' }),
  'fail-if-body-not-matches': input.lines({ description: 'Fail when the body does not match each of these regexps' }),
  'fail-if-header-matches': input.lines({
    description: 'Fail when a header matches: `Header-Name: regexp` lines',
  }),
  'fail-if-header-not-matches': input.lines({
    description: 'Fail when a header is missing or does not match: `Header-Name: regexp` lines',
  }),
  conditions: input.lines({
    description:
      'Gatus-style conditions checked after the request, e.g. `[STATUS] == 200`, `[BODY].status == UP`, `[RESPONSE_TIME] < 300` (ms), `[CERTIFICATE_EXPIRATION] > 720h`',
  }),
  'tls-ca': input.string({
    description: 'CA certificate(s) to trust in addition to the system ones: PEM text or a file path',
  }),
  'tls-insecure-skip-verify': input.boolean({
    description: 'Do not verify the server certificate (expiry is still reported)',
    default: 'false',
  }),
  'tls-server-name': input.string({ description: 'Server name for SNI and certificate verification' }),
  'ip-protocol': input.enum(['auto', 'ip4', 'ip6'] as const, {
    description: 'IP protocol to prefer when a name resolves to both (falls back to the other)',
    default: 'auto',
  }),
  attempts: input.integer({ description: 'Attempts per URL before it fails', default: '1', min: 1, max: 10_000 }),
  interval: input.duration({ description: 'Wait between attempts', default: '5s' }),
  backoff: input.string({
    description: 'Factor the wait grows by after each failed attempt (1: constant)',
    default: '1',
  }),
  'success-threshold': input.integer({
    description: 'Consecutive successful attempts required for a URL to pass',
    default: '1',
    min: 1,
  }),
  deadline: input.duration({ description: 'Overall time limit for the whole probe (empty: none)' }),
  'basic-auth-username': input.string({ description: 'HTTP basic auth user name' }),
  'basic-auth-password': input.string({ description: 'HTTP basic auth password', secret: true }),
  'bearer-token': input.string({ description: 'Bearer token sent as `Authorization: Bearer …`', secret: true }),
  'token-url': input.string({ description: 'OAuth2 client credentials: token endpoint' }),
  'client-id': input.string({ description: 'OAuth2 client credentials: client id' }),
  'client-secret': input.string({ description: 'OAuth2 client credentials: client secret', secret: true }),
  scopes: input.list({ description: 'OAuth2 client credentials: scopes to request' }),
  'prometheus-file': input.string({
    description: "Write the results to this file in Prometheus text format, with blackbox_exporter's metric names",
  }),
  'alert-on': input.list({
    description: 'When to alert: `failure`, or `failure,recovery` (recovery: passed after failed attempts)',
    default: 'failure',
  }),
  'telegram-bot-token': input.string({
    description: 'Telegram bot token; alerts go to Telegram when set',
    secret: true,
  }),
  'telegram-chat-id': input.string({ description: 'Telegram chat id (or @channel) to alert' }),
  'telegram-thread-id': input.string({ description: 'Telegram forum topic (message_thread_id)' }),
  'telegram-api-url': input.string({ description: 'Telegram Bot API base URL', default: 'https://api.telegram.org' }),
  'webhook-url': input.string({
    description: 'POST an Alertmanager-shaped JSON payload to this URL on alert',
    secret: true,
  }),
};

export const probeSpec: ActionSpec<typeof probeInputs> = {
  name: 'Dyce probe',
  id: 'probe',
  description:
    'Post-deploy HTTP(S) health probe with blackbox_exporter http_2xx semantics, retries, conditions, TLS checks and alerts.',
  inputs: probeInputs,
  outputs: {
    success: { description: 'true when every URL passed' },
    'status-code': { description: 'HTTP status of the last attempt (first failing URL, else the first URL)' },
    'duration-ms': { description: 'Duration of that attempt in milliseconds' },
    'dns-ms': { description: 'Name resolution time of that attempt (ms)' },
    'connect-ms': { description: 'TCP connect time of that attempt (ms)' },
    'tls-ms': { description: 'TLS handshake time of that attempt (ms)' },
    'processing-ms': { description: 'Time from request sent to first response byte (ms)' },
    'transfer-ms': { description: 'Time to read the response body (ms)' },
    'cert-expiry': { description: 'Earliest certificate expiry seen, ISO 8601 (empty without TLS)' },
    results: { description: 'JSON array: one result per URL' },
  },
  branding: { icon: 'activity', color: 'green' },
};
