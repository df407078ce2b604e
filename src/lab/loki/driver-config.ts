/**
 * The log-opts of the `loki` log driver, validated the way grafana/loki-docker-driver validates them: the same option
 * names, the same defaults and the same error texts (`loki: wrong log-opt: 'x' - <container id>`), so a deploy tested
 * against the lab meets the same refusals in production.
 */
import { hostname } from 'node:os';
import { LOKI_LOG_OPTS } from '../../commands/log-options.js';

/** What the daemon sends in StartLogging/ReadLogs (moby daemon/logger.Info, JSON field names). */
export interface DockerLogInfo {
  Config?: Record<string, string> | null;
  ContainerID: string;
  ContainerName?: string;
  ContainerEntrypoint?: string;
  ContainerArgs?: string[] | null;
  ContainerImageID?: string;
  ContainerImageName?: string;
  ContainerCreated?: string;
  ContainerEnv?: string[] | null;
  ContainerLabels?: Record<string, string> | null;
  LogPath?: string;
  DaemonName?: string;
}

export interface LokiDriverConfig {
  url: URL;
  batchWaitMs: number;
  batchSizeBytes: number;
  timeoutMs: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  /** Attempts per batch (the first send counts); 0 means retry for ever, as in dskit's backoff. */
  maxRetries: number;
  tenantId: string | undefined;
  labels: Record<string, string>;
  /** The local json-file copy of the logs (the real driver keeps one unless no-file=true). */
  noFile: boolean;
  keepFile: boolean;
  maxSizeBytes: number | undefined;
  maxFile: number;
  tls: { caFile?: string; certFile?: string; keyFile?: string; serverName?: string; insecureSkipVerify: boolean };
}

/** The real driver's defaults (promtail client: clients/pkg/util/config.go). */
export const LOKI_DRIVER_DEFAULTS = {
  batchWaitMs: 1000,
  batchSizeBytes: 1024 * 1024,
  minBackoffMs: 500,
  maxBackoffMs: 5 * 60_000,
  maxRetries: 10,
  timeoutMs: 10_000,
} as const;

export const DRIVER_NAME = 'loki';

/** Every option the real driver accepts (its validateDriverOpt), including the docker-generic ones it sees too. */
export const ACCEPTED_LOG_OPTS: readonly string[] = LOKI_LOG_OPTS;

/** Accepted by the real driver but not implemented here: refusing them beats silently ignoring them. */
const UNSUPPORTED_HERE = ['loki-pipeline-stages', 'loki-pipeline-stage-file', 'loki-relabel-config', 'loki-proxy-url'];

const DEFAULT_EXTERNAL_LABELS = 'container_name={{.Name}}';

export class DriverConfigError extends Error {
  override readonly name = 'DriverConfigError';
}

const fail = (msg: string): never => {
  throw new DriverConfigError(`${DRIVER_NAME}: ${msg}`);
};

const GO_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Go's time.ParseDuration ("1.5s", "1m30s", "800ms", "0"), in milliseconds; undefined when it is not one. */
export function parseGoDuration(raw: string): number | undefined {
  let s = raw.trim();
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (!s) return undefined;
  const re = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;
  let total = 0;
  while (s) {
    const m = re.exec(s);
    if (!m) return undefined;
    total += Number(m[1]) * GO_UNITS[m[2]!]!;
    s = s.slice(m[0].length);
  }
  return sign * total;
}

/** Go's strconv.ParseBool. */
function parseGoBool(raw: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(raw)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(raw)) return false;
  return undefined;
}

/** Docker's units.RAMInBytes-style sizes as json-file takes them for max-size ("10m", "1g", "512k", "100"). */
export function parseLogSize(raw: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$/i.exec(raw.trim());
  if (!m) return undefined;
  const mult: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
  return Math.floor(Number(m[1]) * mult[m[2]!.toLowerCase()]!);
}

/** The template fields Docker offers for tag/label values ({{.Name}}, {{.ID}}, ...). */
function templateFields(info: DockerLogInfo): Record<string, string> {
  const id = info.ContainerID;
  const imageId = info.ContainerImageID ?? '';
  return {
    ID: id.slice(0, 12),
    FullID: id,
    Name: (info.ContainerName ?? '').replace(/^\//, ''),
    ImageID: imageId.replace(/^sha256:/, '').slice(0, 12),
    ImageFullID: imageId,
    ImageName: info.ContainerImageName ?? '',
    DaemonName: info.DaemonName ?? 'docker',
    Command: [info.ContainerEntrypoint ?? '', ...(info.ContainerArgs ?? [])].join(' ').trim(),
  };
}

/** Expands `{{.Name}}`-style references; anything fancier than a field reference is refused. */
export function expandLabelTemplate(info: DockerLogInfo, template: string): string {
  const fields = templateFields(info);
  return template.replace(/\{\{\s*([^}]*?)\s*\}\}/g, (_all, expr: string) => {
    const m = /^\.([A-Za-z]+)$/.exec(expr);
    const value = m ? fields[m[1]!] : undefined;
    if (value === undefined) throw new Error(`can't evaluate {{${expr}}}`);
    return value;
  });
}

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Docker's Info.ExtraAttributes: container labels and env vars the user selected with labels=, env=, env-regex=. */
function extraAttributes(info: DockerLogInfo, opts: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  const key = (k: string) => k.replaceAll('-', '_').replaceAll('.', '_');
  const labels = info.ContainerLabels ?? {};
  for (const l of (opts.labels ?? '').split(',')) {
    const v = labels[l];
    if (l && v !== undefined) out[key(l)] = v;
  }
  const env = new Map<string, string>();
  for (const kv of info.ContainerEnv ?? []) {
    const i = kv.indexOf('=');
    if (i > 0) env.set(kv.slice(0, i), kv.slice(i + 1));
  }
  for (const name of (opts.env ?? '').split(',')) {
    const v = env.get(name);
    if (name && v !== undefined) out[key(name)] = v;
  }
  if (opts['env-regex']) {
    let re: RegExp;
    try {
      re = new RegExp(opts['env-regex']);
    } catch (error) {
      throw new DriverConfigError(`invalid env-regex: ${(error as Error).message}`);
    }
    for (const [k, v] of env) if (re.test(k)) out[key(k)] = v;
  }
  return out;
}

/** validateDriverOpt + parseConfig of the real driver; throws DriverConfigError with its texts. */
export function parseDriverConfig(info: DockerLogInfo, host = hostname()): LokiDriverConfig {
  const opts = info.Config ?? {};
  for (const opt of Object.keys(opts)) {
    if (!ACCEPTED_LOG_OPTS.includes(opt)) fail(`wrong log-opt: '${opt}' - ${info.ContainerID}`);
  }
  if (!('loki-url' in opts)) fail('loki-url is required in the config');
  for (const opt of UNSUPPORTED_HERE) {
    if (opt in opts) fail(`option ${opt} is not supported by the lab's loki driver`);
  }

  let url: URL;
  try {
    url = new URL(opts['loki-url']!);
  } catch (error) {
    return fail(`option loki-url is invalid ${(error as Error).message}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(`option loki-url is invalid: scheme ${url.protocol}`);

  const duration = (key: string, dflt: number): number => {
    const raw = opts[key];
    if (raw === undefined) return dflt;
    const ms = parseGoDuration(raw);
    return ms === undefined ? fail(`invalid option ${key} format: ${raw}`) : ms;
  };
  const int = (key: string, dflt: number): number => {
    const raw = opts[key];
    if (raw === undefined) return dflt;
    return /^[+-]?\d+$/.test(raw.trim()) ? Number.parseInt(raw, 10) : fail(`invalid option ${key} format: ${raw}`);
  };
  const bool = (key: string): boolean => {
    const raw = opts[key];
    if (raw === undefined || raw === '') return false;
    const b = parseGoBool(raw);
    if (b === undefined) throw new DriverConfigError(`strconv.ParseBool: parsing "${raw}": invalid syntax`);
    return b;
  };

  const labels: Record<string, string> = {};
  const extlbs = opts['loki-external-labels'] ?? DEFAULT_EXTERNAL_LABELS;
  for (const lv of extlbs.split(',')) {
    const parts = lv.split('=');
    if (parts.length !== 2) fail(`invalid external labels: ${extlbs}`);
    const [name, tmpl] = parts as [string, string];
    if (!LABEL_NAME.test(name)) fail(`invalid external label name: ${name}`);
    let value: string;
    try {
      value = expandLabelTemplate(info, tmpl);
    } catch (error) {
      return fail(`could not expand label value: ${tmpl} err : ${(error as Error).message}`);
    }
    labels[name] = value;
  }
  for (const [k, v] of Object.entries(extraAttributes(info, opts))) {
    if (!LABEL_NAME.test(k)) fail(`invalid label name from attribute: ${k}`);
    labels[k] = v;
  }
  const swarmAndCompose: [string, string][] = [
    ['com.docker.swarm.service.name', 'swarm_service'],
    ['com.docker.stack.namespace', 'swarm_stack'],
    ['com.docker.compose.service', 'compose_service'],
    ['com.docker.compose.project', 'compose_project'],
  ];
  for (const [dockerLabel, lokiLabel] of swarmAndCompose) {
    const v = info.ContainerLabels?.[dockerLabel];
    if (v) labels[lokiLabel] = v;
  }
  if (host) labels.host = host;
  labels.filename = info.LogPath ?? '';

  let insecure = false;
  if (opts['loki-tls-insecure-skip-verify'] !== undefined) {
    const b = parseGoBool(opts['loki-tls-insecure-skip-verify']);
    if (b === undefined) fail(`invalid external labels: ${opts['loki-tls-insecure-skip-verify']}`);
    insecure = b === true;
  }

  const maxSizeRaw = opts['max-size'];
  const maxSizeBytes = maxSizeRaw === undefined || maxSizeRaw === '-1' ? undefined : parseLogSize(maxSizeRaw);
  if (maxSizeRaw !== undefined && maxSizeRaw !== '-1' && maxSizeBytes === undefined) {
    throw new DriverConfigError(`invalid max-size: ${maxSizeRaw}`);
  }
  const maxFile = opts['max-file'] === undefined ? 1 : Number.parseInt(opts['max-file'], 10);
  if (!Number.isInteger(maxFile) || maxFile < 1) throw new DriverConfigError('max-file cannot be less than 1');
  if (maxFile > 1 && maxSizeBytes === undefined) throw new DriverConfigError('max-file can only be used with max-size');

  const tenant = opts['loki-tenant-id'];
  return {
    url,
    timeoutMs: duration('loki-timeout', LOKI_DRIVER_DEFAULTS.timeoutMs),
    batchWaitMs: duration('loki-batch-wait', LOKI_DRIVER_DEFAULTS.batchWaitMs),
    batchSizeBytes: int('loki-batch-size', LOKI_DRIVER_DEFAULTS.batchSizeBytes),
    minBackoffMs: duration('loki-min-backoff', LOKI_DRIVER_DEFAULTS.minBackoffMs),
    maxBackoffMs: duration('loki-max-backoff', LOKI_DRIVER_DEFAULTS.maxBackoffMs),
    maxRetries: int('loki-retries', LOKI_DRIVER_DEFAULTS.maxRetries),
    tenantId: tenant ? tenant : undefined,
    labels,
    noFile: bool('no-file'),
    keepFile: bool('keep-file'),
    maxSizeBytes,
    maxFile,
    tls: {
      ...(opts['loki-tls-ca-file'] ? { caFile: opts['loki-tls-ca-file'] } : {}),
      ...(opts['loki-tls-cert-file'] ? { certFile: opts['loki-tls-cert-file'] } : {}),
      ...(opts['loki-tls-key-file'] ? { keyFile: opts['loki-tls-key-file'] } : {}),
      ...(opts['loki-tls-server-name'] ? { serverName: opts['loki-tls-server-name'] } : {}),
      insecureSkipVerify: insecure,
    },
  };
}
