import type { DeployActionInputs } from '../config/actions/deploy.js';
import { type Host, parseInventory, readInventory, selectHosts } from '../config/inventory.js';
import type { Reporter } from '../github/reporter.js';
import {
  RunConnections,
  type SshCredentials,
  sshConnector,
  hostKeyPolicy as strictHostKeyPolicy,
} from '../remote/connect.js';
import type { Executor } from '../remote/executor.js';
import type { HostKeyPolicy } from '../remote/known-hosts.js';
import { LocalExecutor } from '../remote/local.js';
import {
  cliSshCredentials,
  type OpenSshDefaults,
  readOpenSshDefaults,
  withSshConfig,
} from '../remote/openssh-defaults.js';
import type { SshOptions } from '../remote/ssh.js';
import { UserError } from '../util/errors.js';
import { Secret } from '../util/secret.js';

/** Reads the inventory from `hosts` (inline INI) or `inventory` (a file), then applies `limit`. */
export async function readTargetHosts(i: DeployActionInputs): Promise<Host[]> {
  const inventory = i.inventory?.trim()
    ? await readInventory(i.inventory.trim())
    : parseInventory(i.hosts ?? '', { source: 'hosts', format: 'ini' });
  const selected = selectHosts(inventory, 'all', i.limit);
  if (selected.hosts.length === 0)
    throw new UserError(
      i.limit ? `limit "${i.limit}" matches no host of the inventory` : 'the inventory names no host to deploy to',
    );
  return selected.hosts;
}

/**
 * Host keys are verified unless the user explicitly opts out: the one policy of src/remote/connect.ts (known-hosts
 * and host-fingerprint exclude each other, and either excludes insecure-skip-host-key-check). Decided before any
 * connection, so that a missing policy fails fast instead of falling back to trust-on-first-use.
 */
export function hostKeyPolicy(i: DeployActionInputs): HostKeyPolicy {
  return strictHostKeyPolicy({
    knownHosts: i['known-hosts'],
    hostFingerprints: i['host-fingerprint'],
    insecureSkipHostKeyCheck: i['insecure-skip-host-key-check'],
  });
}

export type Connect = (host: Host) => Promise<Executor>;

/** A Connect that owns its connections: `close()` ends every one of them (the end of a run). */
export interface RunConnect extends Connect {
  /** Throws the SSH inputs' problem, if any of `hosts` is reached over SSH: before any host is contacted. */
  check(hosts: readonly Host[]): void;
  close(): Promise<void>;
}

/**
 * Opens one Executor per host: SSH with a verified host key, or this machine for `ansible_connection=local`.
 * The SSH connection is made here (not lazily), so connection errors come before anything else. The SSH inputs
 * (host keys, keys, jump host) are checked once, when the connector is made: before any host, with every issue.
 */
export function connector(i: DeployActionInputs, reporter: Reporter): Connect {
  // Checked now, thrown for the first SSH host: hosts that are all `ansible_connection=local` need no SSH inputs.
  let connect: Connect | undefined;
  let invalid: unknown;
  try {
    connect = sshConnector(sshCredentials(i), connectOptions(i, reporter));
  } catch (error) {
    invalid = error;
  }
  return async (host) => {
    if (host.connection === 'local') return new LocalExecutor(host.name);
    if (!connect) throw invalid;
    return connect(host);
  };
}

/**
 * Checks the SSH inputs (host keys, keys, jump host) once, before any host is contacted, when any of `hosts` is
 * reached over SSH: one error with every issue, instead of the same failure once per host.
 */
export function checkConnectionInputs(i: DeployActionInputs, hosts: readonly Host[], connect?: Connect): void {
  const own = connect as Partial<RunConnect> | undefined;
  if (own?.check) own.check(hosts);
  else if (hosts.some((h) => h.connection !== 'local')) sshCredentials(i);
}

/**
 * The connector of a whole run (the playbook then the image deploy, a rollback, the post step): each host gets one
 * executor, so one SSH login and one remote shell, however many phases use it. Executors it hands out ignore
 * close(); the run calls `close()` at its end.
 */
export function runConnector(i: DeployActionInputs, reporter: Reporter): RunConnect {
  return withRun(connector(i, reporter), () => {
    sshCredentials(i);
  });
}

/**
 * The CLI's run connector: what the flags give, else the OpenSSH defaults of this machine's user (known_hosts
 * files, ssh-agent, default keys, ~/.ssh/config aliases); `knownHostsFile` is `--known-hosts-file`. The action
 * never uses this: there, nothing is defaulted.
 */
export async function cliRunConnector(
  i: DeployActionInputs,
  reporter: Reporter,
  knownHostsFile?: string,
  defaults?: OpenSshDefaults,
): Promise<RunConnect> {
  let connect: Connect | undefined;
  let invalid: unknown;
  try {
    const local = defaults ?? (await readOpenSshDefaults());
    const base = sshCredentials(i, { pinning: false });
    const creds = await cliSshCredentials(
      {
        knownHosts: i['known-hosts'],
        knownHostsFile,
        hostFingerprints: i['host-fingerprint'],
        insecureSkipHostKeyCheck: i['insecure-skip-host-key-check'],
        privateKey: base.privateKey,
        passphrase: base.passphrase,
      },
      local,
    );
    connect = sshConnector({ ...base, ...creds, jump: base.jump }, connectOptions(i, reporter), (h) =>
      withSshConfig(h, local.config),
    );
  } catch (error) {
    invalid = error;
  }
  return withRun(
    async (host) => {
      if (host.connection === 'local') return new LocalExecutor(host.name);
      if (!connect) throw invalid;
      return connect(host);
    },
    () => {
      if (!connect) throw invalid;
    },
  );
}

/** The `connect-timeout` input: the TCP connect and the SSH handshake each get that long, per attempt. */
function connectOptions(i: DeployActionInputs, reporter: Reporter): { reporter: Reporter } & Partial<SshOptions> {
  const ms = i['connect-timeout'];
  return { reporter, ...(ms ? { connectTimeoutMs: ms, handshakeTimeoutMs: ms } : {}) };
}

function withRun(connect: Connect, check: () => void): RunConnect {
  const run = new RunConnections();
  return Object.assign((host: Host) => run.lease(host.name, () => connect(host)), {
    check: (hosts: readonly Host[]) => {
      if (hosts.some((h) => h.connection !== 'local')) check();
    },
    close: () => run.close(),
  });
}

/** The deploy inputs' SSH settings, jump host included (its key and known-hosts default to the targets'). */
export function sshCredentials(
  i: Parameters<typeof hostKeyPolicy>[0],
  opts: { pinning: boolean } = { pinning: true },
): SshCredentials {
  const jumpKnownHosts = i['jump-known-hosts']?.trim();
  return {
    // Without pinning (the CLI, which fills the policy from the OpenSSH defaults), a placeholder the caller replaces.
    hostKey: opts.pinning ? hostKeyPolicy(i) : { kind: 'known-hosts', entries: [] },
    ...(i['ssh-private-key'] ? { privateKey: new Secret(i['ssh-private-key']) } : {}),
    ...(i['ssh-passphrase'] ? { passphrase: new Secret(i['ssh-passphrase']) } : {}),
    jump: {
      ...(i['jump-host']?.trim() ? { spec: i['jump-host'].trim() } : {}),
      ...(i['jump-private-key'] ? { privateKey: new Secret(i['jump-private-key']) } : {}),
      ...(i['jump-passphrase'] ? { passphrase: new Secret(i['jump-passphrase']) } : {}),
      // The jump host's own pin: jump-known-hosts or jump-host-fingerprint (one policy: never both).
      ...(jumpKnownHosts || i['jump-host-fingerprint']?.length
        ? {
            hostKey: strictHostKeyPolicy(
              { knownHosts: jumpKnownHosts, hostFingerprints: i['jump-host-fingerprint'] },
              {
                knownHosts: 'jump-known-hosts',
                fingerprint: 'jump-host-fingerprint',
                insecure: 'insecure-skip-host-key-check',
              },
            ),
          }
        : {}),
    },
  };
}
