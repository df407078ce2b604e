import { type ActionSpec, input } from '../input-spec.js';

/**
 * The probe's inputs. Names follow blackbox_exporter's http module where they overlap
 * (`valid-status-codes`, `fail-if-body-matches`, ...), in the project's kebab-case.
 */
export const probeInputs = {
  url: input.list({
    description:
      "URL(s) to probe, each probed concurrently: http:// or https://, or tcp://host:port for a TCP check (blackbox's tcp prober: connect, `tls`, `query-response`)",
    required: true,
  }),
  method: input.string({ description: 'HTTP method', default: 'GET' }),
  headers: input.lines({
    description:
      'Request headers, one per line: `Name: value` (as curl and blackbox_exporter write them; `Name=value` also works). A `Host` header also sets the TLS server name, as in blackbox_exporter',
  }),
  body: input.string({ description: 'Request body' }),
  'body-file': input.string({ description: 'Read the request body from this file (instead of `body`)' }),
  compression: input.string({
    description:
      'Decompress the response body before matching: `gzip`, `br`, `deflate` (raw DEFLATE, as blackbox_exporter reads it) or `identity`. Sends `Accept-Encoding: <compression>` unless `headers` sets one; blackbox_exporter 0.23 sends none',
  }),
  'body-size-limit': input.string({
    description:
      'Largest (decompressed) body read, e.g. `1MiB`, `512KiB`, `10MB` or bytes; a larger body fails the probe. 0: no limit',
    default: '0',
  }),
  'enable-http2': input.boolean({
    description: 'Offer HTTP/2 (ALPN `h2`) over TLS; plain http:// URLs always use HTTP/1.1, as in blackbox_exporter',
    default: 'true',
  }),
  'valid-status-codes': input.string({
    description: 'Status codes that pass: codes and ranges, e.g. `200-299,204`',
    default: '200-299',
  }),
  'valid-http-versions': input.list({
    description: 'HTTP versions that pass: `HTTP/1.0`, `HTTP/1.1`, `HTTP/2.0` (empty: any)',
  }),
  'follow-redirects': input.boolean({
    description:
      "Follow redirects, with a cookie jar and Go's method rules (301/302/303 turn other methods than GET/HEAD into GET). After 10 redirects the 11th redirect response is judged as it is. Credentials (`Authorization`, `Cookie`, auth inputs) are dropped once a redirect leaves the URL's origin: blackbox_exporter keeps sending basic auth, bearer and OAuth2 credentials there",
    default: 'true',
  }),
  timeout: input.duration({
    description: 'Timeout of one attempt: resolving, connecting, redirects and body included',
    default: '10s',
  }),
  'fail-if-ssl': input.boolean({ description: 'Fail when the final response came over TLS', default: 'false' }),
  'fail-if-not-ssl': input.boolean({
    description: 'Fail when the final response did not come over TLS',
    default: 'false',
  }),
  'fail-if-body-matches': input.lines({
    description: "Fail when the body matches any of these regexps (Go's RE2 syntax, as blackbox_exporter)",
  }),
  'fail-if-body-not-matches': input.lines({
    description: "Fail when the body does not match each of these regexps (Go's RE2 syntax)",
  }),
  'fail-if-header-matches': input.lines({
    description:
      'Fail when any value of a header matches: `Header-Name: regexp` lines (RE2). A missing header fails too, unless named in `allow-missing-headers`',
  }),
  'fail-if-header-not-matches': input.lines({
    description:
      'Fail when no value of a header matches: `Header-Name: regexp` lines (RE2). A missing header fails, unless named in `allow-missing-headers`',
  }),
  'allow-missing-headers': input.list({
    description:
      "Header names whose absence passes the `fail-if-header-*` rules that name them (blackbox_exporter's `allow_missing`)",
  }),
  tls: input.boolean({
    description: 'For tcp:// URLs: start TLS right after connecting (the tls-* inputs apply), as blackbox tcp `tls`',
    default: 'false',
  }),
  'query-response': input.lines({
    description:
      'For tcp:// URLs: steps, one a line: `expect: regexp` (wait for a line that matches, RE2), `send: text` (a line), `starttls`',
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
  'tls-cert': input.string({ description: 'Client certificate (PEM text or a file path), sent when the server asks' }),
  'tls-key': input.string({ description: 'Private key of `tls-cert`: PEM text or a file path', secret: true }),
  'tls-key-passphrase': input.string({ description: 'Passphrase of an encrypted `tls-key`', secret: true }),
  'tls-min-version': input.string({ description: 'Lowest TLS version accepted: `TLS10`, `TLS11`, `TLS12` or `TLS13`' }),
  'tls-max-version': input.string({ description: 'Highest TLS version offered: `TLS10`, `TLS11`, `TLS12` or `TLS13`' }),
  'preferred-ip-protocol': input.enum(['ip6', 'ip4'] as const, {
    description:
      'IP protocol used when the host name has addresses of both (blackbox_exporter resolves first, then connects)',
    default: 'ip6',
  }),
  'ip-protocol-fallback': input.boolean({
    description: 'Use the other IP protocol when the name has no address of the preferred one',
    default: 'true',
  }),
  'proxy-url': input.string({
    description:
      'HTTP proxy for every request (`http://[user:password@]host:port`; CONNECT for https:// URLs). A secret, as it may hold a password',
    secret: true,
  }),
  'no-proxy': input.list({
    description: 'Hosts, domains (`.example.com`), IPs or CIDRs reached without the proxy',
  }),
  'proxy-from-environment': input.boolean({
    description:
      'Take the proxy from `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` (as Go does: never for localhost or loopback addresses)',
    default: 'false',
  }),
  'proxy-connect-header': input.lines({
    description: 'Headers sent to the proxy with CONNECT, `Name: value` lines (a secret: e.g. `Proxy-Authorization`)',
    secret: true,
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
