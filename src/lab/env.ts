import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../util/errors.js';

/** Where the lab keeps its state. Root-only: the lab installs packages and starts daemons. */
export function labDir(): string {
  return process.env.DYCE_LAB_DIR ?? '/var/lib/dyce-lab';
}

export interface LabHost {
  /** Inventory name, e.g. vps1. */
  name: string;
  address: string;
  sshPort: number;
  /** Users that can log in with the lab key: root, and `deploy` (passwordless sudo, not in the docker group). */
  users: string[];
  /** The known_hosts line for this host's generated host key, e.g. `[127.0.0.1]:2222 ssh-ed25519 AAAA...`. */
  knownHosts: string;
  /** SHA256:... fingerprint of the host key. */
  fingerprint: string;
  /** The host's own Docker daemon (what `docker` means in an SSH session on this host). */
  dockerHost: string;
  dockerDataRoot: string;
  /** Dyce's state directory on this host (inventory var dyce_state_dir). */
  stateDir: string;
  /** Added to every published port on this host so that hosts never collide on the shared loopback (dyce_port_base). */
  portBase: number;
  nginx: { prefix: string; conf: string; confDir: string; httpPort: number; httpsPort: number };
  sshdLog: string;
}

/**
 * A lab VPS that is a machine of its own (a Debian 12 system container with systemd, sshd, ufw and its own dockerd),
 * reached on its own address, port 22. `docker` in an SSH session there is its own engine.
 */
export interface LabMachine {
  /** Inventory name, e.g. mvps1. */
  name: string;
  address: string;
  sshPort: number;
  /** root, and `deploy` (passwordless sudo). */
  users: string[];
  knownHosts: string;
  fingerprint: string;
  /** Its container in the runner's Docker engine. */
  container: string;
}

export interface LabEnv {
  dir: string;
  /** The private key (0600) authorised for root and deploy on every lab host. */
  sshKey: string;
  /** A key that is NOT authorised anywhere, for negative tests. */
  wrongSshKey: string;
  knownHostsFile: string;
  registry: { url: string; username: string; password: string; passwordFile: string };
  /** The runner's Docker daemon (where builds happen), and a docker config dir logged into the registry. */
  runner: { dockerHost: string; dockerConfig: string };
  /** Docker client with BuildKit support on this machine. */
  dockerBin: string;
  /**
   * The Loki receiver (Loki's push and query API) and the `loki` log-driver plugin, published to the lab registry
   * (`pluginRef`, installable with `docker plugin install REF --alias loki`) and installed on `pluginHosts`.
   */
  loki:
    | { url: string; pushUrl: string; port: number; pluginRef: string; latestPluginRef: string; pluginHosts: string[] }
    | undefined;
  sampleApp: { image: string; tags: string[]; port: number };
  baseImage: string;
  hosts: LabHost[];
  /** Machine VPSs (`dyce lab up --machines N`); absent or empty when none were asked for. */
  machines?: LabMachine[];
}

export function labEnvPath(dir = labDir()): string {
  return join(dir, 'lab.json');
}

/** Reads the description written by `dyce lab up`. */
export function readLabEnv(dir = labDir()): LabEnv {
  const p = labEnvPath(dir);
  if (!existsSync(p)) throw new UserError(`the lab is not up (no ${p}); run \`dyce lab up\` first`);
  return JSON.parse(readFileSync(p, 'utf8')) as LabEnv;
}

/** An Ansible INI inventory of the lab's hosts, with the per-host vars Dyce honours. */
export function labInventory(env: LabEnv, user = 'root'): string {
  const lines = ['[lab]'];
  for (const h of env.hosts) {
    lines.push(
      `${h.name} ansible_host=${h.address} ansible_port=${h.sshPort} ansible_user=${user} dyce_state_dir=${h.stateDir} dyce_port_base=${h.portBase} dyce_nginx_prefix=${h.nginx.prefix}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** An Ansible INI inventory of the lab's machine VPSs (group `machines`), for playbooks that change a host. */
export function labMachineInventory(env: LabEnv, user = 'root', names?: string[]): string {
  const lines = ['[machines]'];
  for (const m of env.machines ?? []) {
    if (names && !names.includes(m.name)) continue;
    lines.push(`${m.name} ansible_host=${m.address} ansible_port=${m.sshPort} ansible_user=${user}`);
  }
  return `${lines.join('\n')}\n`;
}
