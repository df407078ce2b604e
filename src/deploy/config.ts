import { createHash } from 'node:crypto';
import { type NginxLayout, nginxLayout, renderSite, sitePath, upstreamPath } from '../commands/nginx.js';
import { type DeployInputs, imageRegistry } from '../config/actions/deploy.js';
import { type Host, type Inventory, parseInventory, readInventory, selectHosts } from '../config/inventory.js';
import type { AppConfig } from '../plan/desired.js';
import type { RolloutSettings } from '../plan/rollout.js';
import { InputError, UserError } from '../util/errors.js';
import { Secret } from '../util/secret.js';
import { parseSerial, type SerialSize } from './fanout.js';
import { appConfigFromInputs } from './settings.js';

/**
 * The deploy's whole configuration, assembled once from the parsed inputs and the inventory before any host is
 * contacted. The engine reads this, never the inputs: every per-host value (the nginx prefix, the port base) is
 * checked here, so a bad value on the last host fails the run before the first host is touched.
 */
export interface DeployConfig {
  app: AppConfig;
  /** The selected hosts, in inventory order, each with what is known of it before connecting. */
  hosts: HostConfig[];
  /** Behind nginx: the health-gated rolling replacement; without a proxy: stop, then start. */
  strategy: 'rolling' | 'stop-then-start';
  /** Behind nginx: the gate, the drain and the site (host-independent parts). */
  rollout?: RolloutOptions;
  pull: 'missing' | 'always';
  adopt: boolean;
  dryRun: boolean;
  /** The overall time limit (`timeout`). */
  timeoutMs: number;
  lock: { waitMs: number; staleMs: number };
  retention: { keepVersions: number };
  registry: RegistryConfig;
  logPlugin: { ref: string; install: boolean };
  schedule: { parallel: number; serial: SerialSize[] | undefined; maxFailPercentage: number };
}

export interface RegistryConfig {
  /** The registry to log in to (`registry`, else the image's, else Docker Hub). */
  server: string;
  login?: { username: string; password: Secret };
}

export interface RolloutOptions {
  maxUnavailable: number;
  drainMs: number;
  /** `host-port`, else `port` (before the host's port base). */
  firstPort: number;
  /** Where the replicas are published (the upstream's server address). */
  address: string;
  /** The site config Dyce keeps installed next to the upstream (undefined: the user's own site includes it). */
  site?: string;
  health: { path: string; timeoutMs: number; intervalMs: number; deadlineMs: number };
}

export interface HostConfig {
  host: Host;
  /** dyce_port_base: added to every host port on this host. */
  portBase: number;
  /** Behind nginx: where this host's nginx lives and what the rollout needs of it. */
  nginx?: HostNginx;
}

export interface HostNginx {
  layout: NginxLayout;
  /** The rollout's settings on this host (ports shifted by its port base). */
  settings: RolloutSettings;
  /** What the host's own no-op verdict checks of nginx: the upstream file and, when Dyce writes one, the site. */
  noop: { upstream: string; site?: { path: string; sha256: string } };
}

/** Reads the inventory (`hosts` inline, or the `inventory` file), then assembles the configuration. */
export async function readDeployConfig(inputs: DeployInputs): Promise<DeployConfig> {
  const file = inputs.inventory?.trim();
  const inventory = file
    ? await readInventory(file)
    : parseInventory(inputs.hosts ?? '', { source: 'hosts', format: 'ini' });
  return assembleDeployConfig(inputs, inventory);
}

/**
 * Pure: parsed inputs + inventory -> DeployConfig. Throws an InputError listing every per-host issue (each naming
 * the host and the variable), or a UserError when `limit` selects no host.
 */
export function assembleDeployConfig(inputs: DeployInputs, inventory: Inventory): DeployConfig {
  const app = appConfigFromInputs(inputs);
  const selected = selectHosts(inventory, 'all', inputs.limit);
  if (selected.hosts.length === 0)
    throw new UserError(
      inputs.limit
        ? `limit "${inputs.limit}" matches no host of the inventory`
        : 'the inventory names no host to deploy to',
    );
  const rollout = inputs.proxy === 'nginx' ? rolloutOptions(inputs, app) : undefined;
  const issues: string[] = [];
  const hosts = selected.hosts.map((host) => hostConfig(host, app, rollout, issues));
  if (issues.length) throw new InputError(issues, 'invalid inventory values (no host was contacted)');
  const username = inputs['registry-username'];
  const password = inputs['registry-password'];
  const serial = inputs.serial === undefined ? undefined : parseSerial(inputs.serial);
  return {
    app,
    hosts,
    strategy: rollout ? 'rolling' : 'stop-then-start',
    ...(rollout ? { rollout } : {}),
    pull: inputs.pull,
    adopt: inputs.adopt,
    dryRun: inputs['dry-run'],
    timeoutMs: inputs.timeout,
    lock: { waitMs: inputs['lock-wait'], staleMs: inputs['lock-stale'] },
    retention: { keepVersions: inputs['keep-versions'] },
    registry: {
      server: inputs.registry ?? imageRegistry(app.image) ?? 'docker.io',
      ...(username && password ? { login: { username, password: new Secret(password) } } : {}),
    },
    logPlugin: { ref: inputs['log-plugin'], install: inputs['install-log-plugin'] },
    schedule: {
      parallel: inputs.parallel,
      serial: Array.isArray(serial) ? serial : undefined,
      maxFailPercentage: inputs['max-fail-percentage'],
    },
  };
}

/** Every secret value of the deploy, each on its own (a log line may hold one value alone). */
export function deploySecrets(config: DeployConfig): string[] {
  const { app, registry } = config;
  return [
    ...Object.values(app.secretEnv),
    ...Object.values(app.secretFiles),
    ...(registry.login ? [registry.login.password] : []),
  ].map((s) => s.reveal());
}

function rolloutOptions(inputs: DeployInputs, app: AppConfig): RolloutOptions {
  const firstPort = app.hostPort ?? app.port;
  // The input rules require `port` with proxy: nginx; this is their twin for a caller that skipped them.
  if (firstPort === undefined) throw new UserError('input "port" is required with proxy: nginx');
  const names = inputs['nginx-server-name'] ?? [];
  const cert = inputs['nginx-tls-cert'];
  const key = inputs['nginx-tls-key'];
  const site = names.length
    ? renderSite({
        app: app.app,
        serverNames: names,
        httpListen: inputs['nginx-http-listen'],
        httpsListen: inputs['nginx-https-listen'],
        ...(cert && key ? { tls: { cert, key } } : {}),
        ...(inputs['nginx-static-dir'] ? { staticDir: inputs['nginx-static-dir'] } : {}),
      })
    : undefined;
  return {
    maxUnavailable: inputs['max-unavailable'],
    drainMs: inputs['drain-timeout'],
    firstPort,
    address:
      app.hostIp === '0.0.0.0' || app.network === 'host' ? '127.0.0.1' : app.hostIp === '::' ? '::1' : app.hostIp,
    ...(site === undefined ? {} : { site }),
    health: {
      path: inputs['health-path'],
      timeoutMs: inputs['health-timeout'],
      intervalMs: inputs['health-interval'],
      deadlineMs: inputs['health-deadline'],
    },
  };
}

const NGINX_PREFIX = /^\/[A-Za-z0-9._/@+-]*$/;

/** One host's part of the configuration; its problems are appended to `issues` (host name and variable named). */
function hostConfig(host: Host, app: AppConfig, rollout: RolloutOptions | undefined, issues: string[]): HostConfig {
  const portBase = host.portBase ?? 0;
  const at = `${host.name} (${host.source.file}:${host.source.line})`;
  const first = app.hostPort ?? app.port;
  // Alternate ports behind nginx: twice as many host ports.
  const span = rollout ? 2 * app.replicas : app.replicas;
  if (first !== undefined && portBase + first + span - 1 > 65535)
    issues.push(
      `${at}: dyce_port_base ${portBase} puts host ports ${portBase + first}..${portBase + first + span - 1} past 65535`,
    );
  if (!rollout) return { host, portBase };
  const prefix = host.vars.dyce_nginx_prefix;
  if (prefix !== undefined && (typeof prefix !== 'string' || !NGINX_PREFIX.test(prefix) || prefix.includes('..'))) {
    issues.push(
      `${at}: dyce_nginx_prefix must be an absolute path of letters, digits and . _ / @ + -, got ${JSON.stringify(prefix)}`,
    );
    return { host, portBase };
  }
  const layout = nginxLayout(prefix as string | undefined);
  return {
    host,
    portBase,
    nginx: {
      layout,
      settings: {
        maxUnavailable: rollout.maxUnavailable,
        drainMs: rollout.drainMs,
        firstPort: rollout.firstPort,
        replicas: app.replicas,
        portBase,
        portEnv: app.portEnv,
      },
      noop: {
        upstream: upstreamPath(layout, app.app),
        ...(rollout.site === undefined
          ? {}
          : {
              site: {
                path: sitePath(layout, app.app),
                sha256: createHash('sha256').update(rollout.site).digest('hex'),
              },
            }),
      },
    },
  };
}
