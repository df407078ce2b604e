import { deployRules, deploySpec } from '../../src/config/actions/deploy.js';
import { parseInputs, type RawInputs } from '../../src/config/input-spec.js';
import { type AppConfig, desiredState, type HostFacts } from '../../src/plan/desired.js';
import type { ObservedContainer } from '../../src/plan/observed.js';
import { InputError } from '../../src/util/errors.js';

/** A host for unit tests of planning: state under /var/lib/dyce, no port base, a fixed HMAC key. */
export const HOST_FACTS: HostFacts = { stateDir: '/var/lib/dyce', portBase: 0, hmacKey: 'ab'.repeat(32) };

/** An app as a deploy's inputs make it: `web` from reg/app:v1, 4 replicas on a bridge network, port 8000. */
export function appConfig(over: Partial<AppConfig> = {}): AppConfig {
  return {
    app: 'web',
    image: 'reg/app:v1',
    version: 'v1',
    replicas: 4,
    network: 'bridge',
    port: 8000,
    hostIp: '127.0.0.1',
    portEnv: 'PORT',
    env: {},
    labels: {},
    volumes: [],
    command: [],
    restart: 'unless-stopped',
    secretEnv: {},
    secretFiles: {},
    logOptions: {},
    ...over,
  };
}

/**
 * The containers a deploy of CFG left on a host, as the host reports them: replica N's ID starts with N twelve times.
 * `stopped`: the replicas that have exited; `imageIds`: the image ID per replica (in order), where known;
 * `ports`: give it (even empty) to report each replica's host port, the slot's first unless given there.
 */
export function deployedContainers(
  cfg: AppConfig,
  opts: { stopped?: number[]; imageIds?: (string | undefined)[]; ports?: Record<number, number> } = {},
  facts: HostFacts = HOST_FACTS,
): ObservedContainer[] {
  return desiredState(cfg, facts).replicas.map((r, k) => {
    const stopped = opts.stopped?.includes(r.replica) ?? false;
    const imageId = opts.imageIds?.[k];
    return {
      id: `${r.replica}`.repeat(12).padEnd(64, 'f'),
      name: r.name,
      running: !stopped,
      status: stopped ? 'exited' : 'running',
      image: r.run.image,
      ...(imageId ? { imageId } : {}),
      labels: r.run.labels,
      app: cfg.app,
      replica: r.replica,
      version: r.version,
      specHash: r.specHash,
      ...(opts.ports ? { port: opts.ports[r.replica] ?? r.hostPort! } : {}),
    };
  });
}

/** The issues the deploy action's inputs RAW are refused with (none: []); any other error is thrown. */
export function deployInputIssues(raw: RawInputs): string[] {
  try {
    parseInputs(deploySpec, raw, deployRules);
  } catch (e) {
    if (e instanceof InputError) return e.issues;
    throw e;
  }
  return [];
}
