import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { parseStatusCodes } from '../../../src/probe/status-codes.js';
import { freePort } from './servers.js';

/**
 * The real blackbox_exporter (Debian's prometheus-blackbox-exporter), started on a loopback port with a config
 * generated from Dyce probe inputs, so that one case table drives both probers.
 */
export const BLACKBOX_BIN = '/usr/bin/prometheus-blackbox-exporter';
export const haveBlackbox = existsSync(BLACKBOX_BIN);

export type Inputs = Record<string, string>;

/** Metrics of one probe: `name{labels}` (labels sorted, `instance` dropped) -> value. */
export type Metrics = Map<string, number>;

export function parseMetrics(text: string): Metrics {
  const out: Metrics = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)]
      .filter((l) => l[1] !== 'instance')
      .map((l) => `${l[1]}="${l[2]}"`)
      .sort();
    out.set(labels.length ? `${m[1]}{${labels.join(',')}}` : m[1]!, Number(m[3]));
  }
  return out;
}

const lines = (v: string | undefined) =>
  (v ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
const list = (v: string | undefined) =>
  (v ?? '')
    .split(/[\n,]/)
    .map((l) => l.trim())
    .filter(Boolean);

function headerRules(v: string | undefined, allow: Set<string>) {
  return lines(v).map((l) => {
    const i = l.indexOf(':');
    const header = l.slice(0, i).trim();
    const rule: Record<string, unknown> = { header, regexp: l.slice(i + 1).replace(/^ /, '') };
    if (allow.has(header.toLowerCase())) rule.allow_missing = true;
    return rule;
  });
}

/** Inputs that blackbox_exporter 0.23 has no setting for: cases using them are not differential. */
export const NOT_IN_BLACKBOX = [
  'tls',
  'query-response',
  'no-proxy',
  'proxy-from-environment',
  'proxy-connect-header',
  'tls-max-version',
  'body-file',
  'tls-key-passphrase',
  'conditions',
];

/** The blackbox http module that means what these Dyce probe inputs mean. */
export function blackboxModule(
  inputs: Inputs,
  files: { dir: string; name: string },
  prober: 'http' | 'tcp' = 'http',
): Record<string, unknown> {
  const http: Record<string, unknown> = {};
  const tls: Record<string, unknown> = {};
  const file = (suffix: string, content: string) => {
    const p = join(files.dir, `${files.name}.${suffix}`);
    writeFileSync(p, content);
    return p;
  };
  const pemPath = (v: string, suffix: string) => (v.trim().startsWith('-----BEGIN') ? file(suffix, v) : v.trim());
  if (inputs.method) http.method = inputs.method;
  if (inputs.headers) {
    const h: Record<string, string> = {};
    for (const l of lines(inputs.headers)) {
      const m = /^([^:=\s]+)\s*[:=]\s*(.*)$/.exec(l)!;
      h[m[1]!] = m[2]!;
    }
    http.headers = h;
  }
  if (inputs.body) http.body = inputs.body;
  if (inputs['valid-status-codes']) {
    const r = parseStatusCodes(inputs['valid-status-codes']);
    if (!r.ok) throw new Error(r.error);
    http.valid_status_codes = r.value.flatMap(([lo, hi]) => Array.from({ length: hi - lo + 1 }, (_, k) => lo + k));
  }
  if (inputs['valid-http-versions']) http.valid_http_versions = list(inputs['valid-http-versions']);
  if (inputs['follow-redirects']) http.follow_redirects = inputs['follow-redirects'] === 'true';
  if (inputs['fail-if-ssl']) http.fail_if_ssl = inputs['fail-if-ssl'] === 'true';
  if (inputs['fail-if-not-ssl']) http.fail_if_not_ssl = inputs['fail-if-not-ssl'] === 'true';
  if (inputs['fail-if-body-matches']) http.fail_if_body_matches_regexp = lines(inputs['fail-if-body-matches']);
  if (inputs['fail-if-body-not-matches'])
    http.fail_if_body_not_matches_regexp = lines(inputs['fail-if-body-not-matches']);
  const allow = new Set(list(inputs['allow-missing-headers']).map((h) => h.toLowerCase()));
  if (inputs['fail-if-header-matches'])
    http.fail_if_header_matches = headerRules(inputs['fail-if-header-matches'], allow);
  if (inputs['fail-if-header-not-matches'])
    http.fail_if_header_not_matches = headerRules(inputs['fail-if-header-not-matches'], allow);
  if (inputs.compression) http.compression = inputs.compression;
  if (inputs['body-size-limit']) http.body_size_limit = inputs['body-size-limit'].replace(/^(\d+)$/, '$1B'); // blackbox needs a unit
  if (inputs['enable-http2']) http.enable_http2 = inputs['enable-http2'] === 'true';
  if (inputs['preferred-ip-protocol']) http.preferred_ip_protocol = inputs['preferred-ip-protocol'];
  if (inputs['ip-protocol-fallback']) http.ip_protocol_fallback = inputs['ip-protocol-fallback'] === 'true';
  if (inputs['proxy-url']) http.proxy_url = inputs['proxy-url'];
  if (inputs['basic-auth-username'])
    http.basic_auth = { username: inputs['basic-auth-username'], password: inputs['basic-auth-password'] ?? '' };
  if (inputs['bearer-token']) http.bearer_token = inputs['bearer-token'];
  if (inputs['token-url'])
    http.oauth2 = {
      client_id: inputs['client-id'],
      client_secret: inputs['client-secret'],
      token_url: inputs['token-url'],
      ...(inputs.scopes ? { scopes: list(inputs.scopes) } : {}),
    };
  if (inputs['tls-ca']) tls.ca_file = pemPath(inputs['tls-ca'], 'ca.pem');
  if (inputs['tls-cert']) tls.cert_file = pemPath(inputs['tls-cert'], 'cert.pem');
  if (inputs['tls-key']) tls.key_file = pemPath(inputs['tls-key'], 'key.pem');
  if (inputs['tls-insecure-skip-verify']) tls.insecure_skip_verify = inputs['tls-insecure-skip-verify'] === 'true';
  if (inputs['tls-server-name']) tls.server_name = inputs['tls-server-name'];
  if (inputs['tls-min-version']) tls.min_version = inputs['tls-min-version'];
  if (Object.keys(tls).length) http.tls_config = tls;
  if (prober === 'tcp') {
    const tcp: Record<string, unknown> = {};
    for (const k of ['preferred_ip_protocol', 'ip_protocol_fallback', 'tls_config'])
      if (http[k] !== undefined) tcp[k] = http[k];
    if (inputs.tls) tcp.tls = inputs.tls === 'true';
    if (inputs['query-response'])
      tcp.query_response = lines(inputs['query-response']).map((l) => {
        const m = /^(expect|send|starttls)\s*(?::\s?(.*))?$/.exec(l)!;
        return m[1] === 'starttls' ? { starttls: true } : { [m[1]!]: m[2] };
      });
    const timeout = inputs.timeout ?? '5s';
    return { prober: 'tcp', timeout: /^\d+$/.test(timeout) ? `${timeout}s` : timeout, tcp };
  }
  for (const k of Object.keys(inputs))
    if (NOT_IN_BLACKBOX.includes(k)) throw new Error(`blackbox_exporter 0.23 has no setting for ${k}`);
  const timeout = inputs.timeout ?? '5s';
  return { prober: 'http', timeout: /^\d+$/.test(timeout) ? `${timeout}s` : timeout, http };
}

export interface Blackbox {
  port: number;
  probe(module: string, target: string): Promise<Metrics>;
  stop(): Promise<void>;
  log(): string;
}

/** Writes the config with these modules and starts blackbox_exporter on a free loopback port. */
export async function startBlackbox(dir: string, modules: Record<string, unknown>): Promise<Blackbox> {
  const config = join(dir, 'blackbox.yml');
  writeFileSync(config, stringify({ modules }));
  const port = await freePort();
  let log = '';
  const child: ChildProcess = spawn(
    BLACKBOX_BIN,
    [`--config.file=${config}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=debug'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr!.on('data', (d) => {
    log += String(d);
    if (log.length > 2_000_000) log = log.slice(-1_000_000);
  });
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`blackbox_exporter exited: ${log.slice(-2000)}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/-/healthy`);
      if (r.ok) break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`blackbox_exporter did not start: ${log.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    async probe(module, target) {
      const r = await fetch(
        `http://127.0.0.1:${port}/probe?module=${encodeURIComponent(module)}&target=${encodeURIComponent(target)}`,
      );
      const text = await r.text();
      if (!r.ok) throw new Error(`blackbox /probe ${module}: ${r.status} ${text}`);
      return parseMetrics(text);
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
    log: () => log,
  };
}
