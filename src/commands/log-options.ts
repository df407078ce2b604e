/**
 * The `--log-opt` names each log driver Dyce knows accepts: one list, used both to refuse a bad option before any host
 * is touched (deploy's inputs) and by the lab's Loki plugin, which rejects the others the way the real driver does.
 */

/**
 * Grafana's Loki driver (`validateDriverOpt` in clients/cmd/docker-driver/config.go): its own `loki-*` options, and the
 * generic ones it lets through. Anything else fails `docker run` with `loki: wrong log-opt`.
 */
export const LOKI_LOG_OPTS: readonly string[] = [
  'loki-url',
  'loki-external-labels',
  'loki-tls-ca-file',
  'loki-tls-cert-file',
  'loki-tls-key-file',
  'loki-tls-server-name',
  'loki-tls-insecure-skip-verify',
  'loki-timeout',
  'loki-proxy-url',
  'loki-batch-wait',
  'loki-batch-size',
  'loki-min-backoff',
  'loki-max-backoff',
  'loki-retries',
  'loki-pipeline-stages',
  'loki-pipeline-stage-file',
  'loki-tenant-id',
  'loki-relabel-config',
  'no-file',
  'keep-file',
  'labels',
  'env',
  'env-regex',
  'max-size',
  'max-file',
  'mode',
  'max-buffer-size',
];

/** Options dockerd itself handles for every driver. */
export const GENERIC_LOG_OPTS: readonly string[] = ['mode', 'max-buffer-size'];

const JSON_FILE_LOG_OPTS = ['max-size', 'max-file', 'labels', 'labels-regex', 'env', 'env-regex', 'compress', 'tag'];
const LOCAL_LOG_OPTS = ['max-size', 'max-file', 'compress'];

/** Allowed option names per driver Dyce knows; other drivers are passed through unchecked (undefined). */
export function allowedLogOptions(driver: string): readonly string[] | undefined {
  if (driver === 'loki') return LOKI_LOG_OPTS;
  if (driver === 'json-file') return [...JSON_FILE_LOG_OPTS, ...GENERIC_LOG_OPTS];
  if (driver === 'local') return [...LOCAL_LOG_OPTS, ...GENERIC_LOG_OPTS];
  return undefined;
}
