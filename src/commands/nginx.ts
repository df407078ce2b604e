import type { Argv } from './docker.js';

/**
 * nginx as data: the upstream file Dyce owns per app, the site config generalised from Melton's nginx block, and
 * the commands that install a file, test the full configuration and reload gracefully. Pure functions only.
 *
 * Every value placed in a config is checked against a strict pattern first: nginx has no quoting that makes an
 * arbitrary string safe, and a `;` or `}` in a server name would be a config injection.
 */

/** Where nginx lives on a host: `dyce_nginx_prefix` (a private nginx, like the lab's), else the system nginx. */
export interface NginxLayout {
  /** `-p` of every nginx command; undefined: the compiled-in prefix (the system nginx). */
  prefix?: string;
  /** The main config, run through `nginx -t` in full. */
  conf: string;
  /** A directory the main config includes (`include <confDir>/*.conf;` in its http block). */
  confDir: string;
}

export function nginxLayout(prefix?: string): NginxLayout {
  if (prefix === undefined || prefix === '') return { conf: '/etc/nginx/nginx.conf', confDir: '/etc/nginx/conf.d' };
  const p = prefix.replace(/\/+$/, '');
  return { prefix: p, conf: `${p}/nginx.conf`, confDir: `${p}/conf.d` };
}

export class NginxConfigError extends Error {
  override readonly name = 'NginxConfigError';
}

const SAFE_PATH = /^\/[A-Za-z0-9._/@+-]*$/;
const SAFE_SERVER_NAME = /^(_|[A-Za-z0-9*]([A-Za-z0-9*.-]*[A-Za-z0-9])?)$/;
const SAFE_ADDRESS = /^[0-9a-fA-F.:[\]]+$/;
const SAFE_LISTEN = /^(\[[0-9a-fA-F:]+\]:|[0-9.]+:)?[0-9]{1,5}$/;

function path(value: string, what: string): string {
  if (!SAFE_PATH.test(value) || value.includes('..'))
    throw new NginxConfigError(
      `${what} must be an absolute path of letters, digits and . _ / @ + -, got ${JSON.stringify(value)}`,
    );
  return value;
}

/** The upstream's name in nginx: `dyce_<app>` with every character outside [A-Za-z0-9_] as `_`. */
export function upstreamName(app: string): string {
  return `dyce_${app.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

export function upstreamPath(layout: NginxLayout, app: string): string {
  return `${layout.confDir}/dyce-${app}.upstream.conf`;
}

export function sitePath(layout: NginxLayout, app: string): string {
  return `${layout.confDir}/dyce-${app}.site.conf`;
}

export interface UpstreamOptions {
  app: string;
  /** The healthy replicas' host ports, in the order nginx should list them. */
  ports: readonly number[];
  /** Where the replicas listen on the host (their published address). */
  address?: string;
  /** Idle connections kept open to the replicas per worker (nginx `keepalive`). */
  keepalive?: number;
}

/**
 * The upstream file: only replicas that passed their health gate are listed. `max_fails=0` keeps nginx from
 * marking a listed replica unavailable after a failed attempt: with every replica marked down at once (a burst
 * during a deploy) nginx would answer 502 "no live upstreams" without trying any of them.
 */
export function renderUpstream(o: UpstreamOptions): string {
  if (o.ports.length === 0) throw new NginxConfigError(`the upstream of ${o.app} needs at least one replica`);
  const address = o.address ?? '127.0.0.1';
  if (!SAFE_ADDRESS.test(address)) throw new NginxConfigError(`invalid replica address ${JSON.stringify(address)}`);
  const host = address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
  const lines = [
    `# Written by Dyce for ${o.app}: the replicas that passed their health gate. Rewritten on every rollout; do not edit.`,
    `upstream ${upstreamName(o.app)} {`,
  ];
  for (const p of o.ports) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new NginxConfigError(`invalid replica port ${p}`);
    lines.push(`    server ${host}:${p} max_fails=0;`);
  }
  lines.push(`    keepalive ${o.keepalive ?? 16};`, '}', '');
  return lines.join('\n');
}

export interface SiteOptions {
  app: string;
  /** `server_name` values; default `_` (any). */
  serverNames?: readonly string[];
  /** TLS termination: with it the site listens on `httpsListen` and `httpListen` only redirects. */
  tls?: { cert: string; key: string };
  /** `listen` of the plain-HTTP server: a port or `address:port`. Default 80. */
  httpListen?: string;
  /** `listen` of the TLS server. Default 443. */
  httpsListen?: string;
  /** Served at `/static/` from this directory (Melton's collected static files). */
  staticDir?: string;
  /** Largest request body (`client_max_body_size`), e.g. `10m`. */
  maxBodySize?: string;
}

/**
 * The site config, Melton's nginx block generalised to N replicas: TLS termination, `/static/` from disk,
 * everything else proxied to the upstream, and 80 -> 443.
 */
export function renderSite(o: SiteOptions): string {
  const names = o.serverNames?.length ? o.serverNames : ['_'];
  for (const n of names)
    if (!SAFE_SERVER_NAME.test(n)) throw new NginxConfigError(`invalid server name ${JSON.stringify(n)}`);
  const httpListen = listen(o.httpListen ?? '80', 'http listen');
  const httpsListen = listen(o.httpsListen ?? '443', 'https listen');
  if (o.maxBodySize !== undefined && !/^[0-9]+[kKmMgG]?$/.test(o.maxBodySize))
    throw new NginxConfigError(`invalid max body size ${JSON.stringify(o.maxBodySize)}`);
  const serverName = `    server_name ${names.join(' ')};`;
  const body = [
    ...(o.maxBodySize ? [`    client_max_body_size ${o.maxBodySize};`] : []),
    ...(o.staticDir
      ? ['    location /static/ {', `        alias ${path(o.staticDir.replace(/\/+$/, ''), 'static dir')}/;`, '    }']
      : []),
    '    location / {',
    `        proxy_pass http://${upstreamName(o.app)};`,
    // HTTP/1.1 with an empty Connection header: what the upstream's keepalive needs.
    '        proxy_http_version 1.1;',
    '        proxy_set_header Connection "";',
    '        proxy_set_header Host $host;',
    '        proxy_set_header X-Real-IP $remote_addr;',
    '        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    '        proxy_set_header X-Forwarded-Proto $scheme;',
    '        proxy_connect_timeout 2s;',
    // A replica that refuses, times out or answers 502/503/504 is skipped for the next one. nginx retries only
    // idempotent requests this way: a POST is never sent twice, because `non_idempotent` is deliberately absent.
    '        proxy_next_upstream error timeout http_502 http_503 http_504;',
    '        proxy_next_upstream_tries 3;',
    '    }',
  ];
  const head = `# Written by Dyce for ${o.app}. The upstream ${upstreamName(o.app)} lives in its own file, rewritten on every rollout.`;
  if (!o.tls) return [head, 'server {', `    listen ${httpListen};`, serverName, ...body, '}', ''].join('\n');
  const httpsPort = Number(httpsListen.split(':').pop());
  const target = httpsPort === 443 ? 'https://$host$request_uri' : `https://$host:${httpsPort}$request_uri`;
  return [
    head,
    'server {',
    `    listen ${httpListen};`,
    serverName,
    `    return 301 ${target};`,
    '}',
    'server {',
    `    listen ${httpsListen} ssl;`,
    serverName,
    `    ssl_certificate ${path(o.tls.cert, 'TLS certificate')};`,
    `    ssl_certificate_key ${path(o.tls.key, 'TLS key')};`,
    '    ssl_protocols TLSv1.2 TLSv1.3;',
    '    ssl_session_cache shared:dyce_ssl:1m;',
    ...body,
    '}',
    '',
  ].join('\n');
}

function listen(value: string, what: string): string {
  if (!SAFE_LISTEN.test(value))
    throw new NginxConfigError(`invalid ${what} ${JSON.stringify(value)}: a port or address:port`);
  const port = Number(value.split(':').pop());
  if (port < 1 || port > 65535)
    throw new NginxConfigError(`invalid ${what} ${JSON.stringify(value)}: port out of range`);
  return value;
}

function prefixArgs(layout: NginxLayout): string[] {
  return layout.prefix === undefined ? ['-c', layout.conf] : ['-p', `${layout.prefix}/`, '-c', layout.conf];
}

export function candidatePath(target: string): string {
  return `${target}.dyce-next`;
}

/** Exit codes of installConfig. */
export const NGINX_TEST_FAILED = 30;
export const NGINX_RELOAD_FAILED = 31;
export const NGINX_INSTALL_FAILED = 32;

/**
 * Script lines shared by install and remove: `nginx -t` on the full configuration; on failure run RESTORE (which puts
 * TARGET "$t" back as it was), print nginx's complaint and exit NGINX_TEST_FAILED; on success drop the saved copy and
 * reload. The nginx prefix arguments are the script's remaining "$@".
 */
function testThenReload(restore: string): string[] {
  return [
    'if ! out=$(nginx -t -q "$@" 2>&1); then',
    `  ${restore}`,
    '  printf "%s\\n" "$out" >&2',
    `  exit ${NGINX_TEST_FAILED}`,
    'fi',
    'rm -f "$t.dyce-prev"',
    ...RELOAD_LINES,
  ];
}

/** What installConfig and removeConfig print on stdout once nginx's workers of before have stopped taking requests. */
export const RELOAD_CONFIRMED = 'reload confirmed';

/**
 * `nginx -s reload` only sends a signal: the master then reads the configuration, starts new workers and tells the
 * old ones to finish (they close their listening sockets at once, and finish the requests they hold). These lines
 * reload, then wait (at most 5s) until every worker the master had before is gone or "shutting down", and print
 * RELOAD_CONFIRMED: from then on no new request reaches a replica that left the upstream, so a drain can start
 * counting at once instead of waiting a fixed time for the reload to land. The master is found through the `pid`
 * of the main config (else nginx's compiled-in pid path); when it cannot be, nothing is printed (the caller waits).
 * The prefix arguments are the script's "$@".
 */
const RELOAD_LINES = [
  '_a=; _cf=; _pre=',
  'for _x in "$@"; do case $_a in -c) _cf=$_x ;; -p) _pre=$_x ;; esac; _a=$_x; done',
  '_pf=$(sed -n "s/^[[:space:]]*pid[[:space:]][[:space:]]*\\([^;[:space:]]*\\)[[:space:]]*;.*/\\1/p" "$_cf" 2>/dev/null | tail -n 1)',
  '[ -n "$_pf" ] || _pf=$(nginx -V 2>&1 | tr " " "\\n" | sed -n "s/^--pid-path=//p")',
  'case $_pf in /*) ;; ?*) _pf="$_pre$_pf" ;; esac',
  '_m=$(cat "$_pf" 2>/dev/null); _w=',
  'if [ -n "$_m" ]; then',
  '  for _s in /proc/[0-9]*/stat; do read -r _p _c _st _pp _r 2>/dev/null < "$_s" && [ "$_pp" = "$_m" ] && _w="$_w $_p"; done',
  'fi',
  `nginx -s reload "$@" || exit ${NGINX_RELOAD_FAILED}`,
  '[ -n "$_w" ] || exit 0',
  '_i=0',
  'while [ $_i -lt 250 ]; do',
  '  _b=0',
  '  for _p in $_w; do',
  '    _t=$(tr "\\000" " " 2>/dev/null < "/proc/$_p/cmdline") || continue',
  '    case $_t in *"shutting down"*) ;; *"worker process"*) _b=1 ;; esac',
  '  done',
  `  [ $_b = 0 ] && { echo "${RELOAD_CONFIRMED}"; exit 0; }`,
  '  sleep 0.02 2>/dev/null || sleep 1',
  '  _i=$((_i + 1))',
  'done',
];

/**
 * writeCandidate and installConfig in one round trip: stdin becomes the candidate file (0600, atomic), which is
 * then installed exactly as installConfig does (same exit codes; RELOAD_CONFIRMED on stdout once the reload
 * took effect: a deploy never moves on while old workers may still answer).
 */
export function installFromStdin(layout: NginxLayout, target: string): Argv {
  return [
    'sh',
    '-c',
    [
      `umask 077 && mkdir -p "$(dirname "$2")" && cat > "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2" || exit ${NGINX_INSTALL_FAILED}`,
      ...INSTALL_LINES,
    ].join('\n'),
    'sh',
    target,
    candidatePath(target),
    ...prefixArgs(layout),
  ];
}

const INSTALL_LINES = [
  't="$1"; c="$2"; shift 2',
  `[ -e "$c" ] || { echo "no candidate $c" >&2; exit ${NGINX_INSTALL_FAILED}; }`,
  'had=0',
  `if [ -e "$t" ]; then cp -p "$t" "$t.dyce-prev" || exit ${NGINX_INSTALL_FAILED}; had=1; fi`,
  `mv -f "$c" "$t" || exit ${NGINX_INSTALL_FAILED}`,
  ...testThenReload('if [ $had = 1 ]; then mv -f "$t.dyce-prev" "$t"; else rm -f "$t"; fi'),
];

/** Removes a config file Dyce installed, then tests and reloads (exit codes as installConfig; the file is restored on a failed test). */
export function removeConfig(layout: NginxLayout, target: string): Argv {
  return [
    'sh',
    '-c',
    [
      't="$1"; shift',
      '[ -e "$t" ] || exit 0',
      `mv -f "$t" "$t.dyce-prev" || exit ${NGINX_INSTALL_FAILED}`,
      ...testThenReload('mv -f "$t.dyce-prev" "$t"'),
    ].join('\n'),
    'sh',
    target,
    ...prefixArgs(layout),
  ];
}

/** Pure: the ports an upstream file lists (to learn what serves before a rollout). */
export function parseUpstreamPorts(text: string): number[] {
  const ports: number[] = [];
  for (const m of text.matchAll(/^\s*server\s+\S*:(\d+)\b/gm)) ports.push(Number(m[1]));
  return ports;
}

/** Both files Dyce owns for an app, in one round trip: the upstream, a `--dyce--` line, the site (empty when absent). */
export function readAppConfigs(layout: NginxLayout, app: string): Argv {
  return [
    'sh',
    '-c',
    'cat "$1" 2>/dev/null; printf "\\n--dyce--\\n"; cat "$2" 2>/dev/null; exit 0',
    'sh',
    upstreamPath(layout, app),
    sitePath(layout, app),
  ];
}

/** Pure: readAppConfigs' answer -> the two files' contents (undefined when absent or empty). */
export function parseAppConfigs(stdout: string): { upstream?: string; site?: string } {
  const k = stdout.indexOf('\n--dyce--\n');
  if (k < 0) return {};
  const upstream = stdout.slice(0, k);
  const site = stdout.slice(k + '\n--dyce--\n'.length);
  return { ...(upstream ? { upstream } : {}), ...(site ? { site } : {}) };
}
