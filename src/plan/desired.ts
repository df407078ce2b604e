import { createHash, createHmac } from 'node:crypto';
import type { RunSpec } from '../commands/docker.js';
import { Secret } from '../util/secret.js';

/** The labels every replica carries; the engine observes state through them alone. */
export const LABEL = {
  app: 'dyce.app',
  version: 'dyce.version',
  replica: 'dyce.replica',
  specHash: 'dyce.spec-hash',
  /** The port the replica answers on: lets a later rollout (alternating ports) find the live one. */
  port: 'dyce.port',
} as const;

/**
 * Dyce's log-option defaults for the Loki driver. They keep a container stoppable when Loki is down
 * (non-blocking mode with a bounded buffer, short timeout and backoff, few retries) and keep the local copy
 * of the logs from filling the disk (`keep-file` with rotation). The user's values override them.
 */
export const LOKI_LOG_DEFAULTS: Readonly<Record<string, string>> = {
  mode: 'non-blocking',
  'max-buffer-size': '4m',
  'loki-timeout': '1s',
  'loki-max-backoff': '800ms',
  'loki-retries': '2',
  'keep-file': 'true',
  'max-size': '10m',
  'max-file': '3',
};

/** What to run, independent of any host. Secrets stay Secret values until they are written through stdin. */
export interface AppConfig {
  app: string;
  image: string;
  version: string;
  replicas: number;
  network: 'bridge' | 'host';
  port?: number;
  hostPort?: number;
  hostIp: string;
  portEnv: string;
  env: Record<string, string>;
  labels: Record<string, string>;
  volumes: string[];
  command: string[];
  restart: string;
  secretEnv: Record<string, Secret>;
  secretFiles: Record<string, Secret>;
  logDriver?: string;
  logOptions: Record<string, string>;
}

/** What the engine learned about one host before planning. */
export interface HostFacts {
  stateDir: string;
  /** Added to every host port (dyce_port_base), so that hosts sharing one machine never collide. */
  portBase: number;
  /** The per-host HMAC key (hex), kept 0600 in the state dir. */
  hmacKey: string;
}

/** Host-side files the replicas need: written (through stdin, 0600) before any container is created. */
export interface SecretMaterial {
  /** The directory holding this spec's secrets: named by their HMAC, so a changed secret never overwrites a running replica's file. */
  dir: string;
  envFile?: { path: string; content: Secret };
  files: { name: string; path: string; content: Secret }[];
}

export interface DesiredReplica {
  /** 1-based. */
  replica: number;
  name: string;
  /** The host port the replica answers on (published port or, with host networking, its port-env). */
  hostPort?: number;
  version: string;
  specHash: string;
  run: RunSpec;
}

export interface DesiredState {
  app: string;
  version: string;
  replicas: DesiredReplica[];
  secrets: SecretMaterial | undefined;
  /** Dyce's Docker config dir on the host (registry login). */
  dockerConfig: string;
}

export function replicaName(app: string, replica: number): string {
  return `${app}${replica}`;
}

export function appDir(stateDir: string, app: string): string {
  return `${stateDir}/apps/${app}`;
}

export function dockerConfigDir(stateDir: string): string {
  return `${stateDir}/docker-config`;
}

export function lockDir(stateDir: string, app: string): string {
  return `${stateDir}/locks/${app}.lock`;
}

export function auditLog(stateDir: string): string {
  return `${stateDir}/audit.log`;
}

/** Merges Dyce's defaults under the user's options (the user wins), for the Loki driver only. */
export function effectiveLogOptions(driver: string | undefined, user: Record<string, string>): Record<string, string> {
  return driver === 'loki' ? { ...LOKI_LOG_DEFAULTS, ...user } : { ...user };
}

/**
 * HMAC of the secret values, keyed per host. The spec hash (a readable label) covers secrets only through
 * this: a plain hash would let anyone who can read labels test guesses of a secret offline.
 */
export function secretDigest(
  key: string,
  secretEnv: Record<string, Secret>,
  secretFiles: Record<string, Secret>,
): string | undefined {
  const env = Object.keys(secretEnv).sort();
  const files = Object.keys(secretFiles).sort();
  if (env.length === 0 && files.length === 0) return undefined;
  const h = createHmac('sha256', Buffer.from(key, 'hex'));
  h.update(
    JSON.stringify({
      env: env.map((k) => [k, secretEnv[k]!.reveal()]),
      files: files.map((k) => [k, secretFiles[k]!.reveal()]),
    }),
  );
  return h.digest('hex');
}

/** A stable hash of everything `docker run` is given (the secret values only through their HMAC). */
export function specHash(run: RunSpec, secrets: string | undefined): string {
  const canonical = JSON.stringify({
    image: run.image,
    labels: sorted(run.labels),
    env: sorted(run.env),
    envFile: run.envFile ?? null,
    network: run.network,
    publish: run.publish ?? null,
    volumes: run.volumes,
    restart: run.restart,
    logDriver: run.logDriver ?? null,
    logOptions: sorted(run.logOptions),
    command: run.command,
    secrets: secrets ?? null,
  });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 32);
}

/** Pure: the replicas an app should have on a host. */
export function desiredState(app: AppConfig, host: HostFacts): DesiredState {
  const digest = secretDigest(host.hmacKey, app.secretEnv, app.secretFiles);
  const secrets: SecretMaterial | undefined = digest
    ? {
        dir: `${appDir(host.stateDir, app.app)}/secrets/${digest.slice(0, 16)}`,
        files: [],
      }
    : undefined;
  if (secrets) {
    const envKeys = Object.keys(app.secretEnv).sort();
    if (envKeys.length)
      secrets.envFile = {
        path: `${secrets.dir}/env`,
        content: envFileContent(envKeys.map((k) => [k, app.secretEnv[k]!])),
      };
    for (const name of Object.keys(app.secretFiles).sort())
      secrets.files.push({ name, path: `${secrets.dir}/files/${name}`, content: app.secretFiles[name]! });
  }
  const logOptions = app.logDriver ? effectiveLogOptions(app.logDriver, app.logOptions) : {};
  const firstPort = app.hostPort ?? app.port;
  const replicas: DesiredReplica[] = [];
  for (let i = 1; i <= app.replicas; i++) {
    const hostPort = firstPort === undefined ? undefined : host.portBase + firstPort + i - 1;
    const env = { ...app.env };
    if (app.network === 'host' && hostPort !== undefined) env[app.portEnv] = String(hostPort);
    const run: RunSpec = {
      name: replicaName(app.app, i),
      image: app.image,
      labels: {
        ...app.labels,
        [LABEL.app]: app.app,
        [LABEL.version]: app.version,
        [LABEL.replica]: String(i),
        ...(hostPort === undefined ? {} : { [LABEL.port]: String(hostPort) }),
      },
      env,
      network: app.network,
      volumes: [...app.volumes, ...(secrets?.files.map((f) => `${f.path}:/run/secrets/${f.name}:ro`) ?? [])],
      restart: app.restart,
      logOptions,
      command: app.command,
    };
    if (secrets?.envFile) run.envFile = secrets.envFile.path;
    if (app.network === 'bridge' && app.port !== undefined && hostPort !== undefined)
      run.publish = { ip: app.hostIp, hostPort, containerPort: app.port };
    if (app.logDriver) run.logDriver = app.logDriver;
    const hash = specHash(run, digest);
    run.labels[LABEL.specHash] = hash;
    const r: DesiredReplica = { replica: i, name: run.name, version: app.version, specHash: hash, run };
    if (hostPort !== undefined) r.hostPort = hostPort;
    replicas.push(r);
  }
  return { app: app.app, version: app.version, replicas, secrets, dockerConfig: dockerConfigDir(host.stateDir) };
}

/** Docker env-file lines: `KEY=value`, no quoting (Docker takes the value verbatim; newlines were refused). */
function envFileContent(entries: [string, Secret][]): Secret {
  const text = entries.map(([k, v]) => `${k}=${v.reveal()}\n`).join('');
  return new Secret(text);
}

function sorted(o: Record<string, string>): [string, string][] {
  return Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
