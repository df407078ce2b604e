import type { DeployActionInputs } from '../config/actions/deploy.js';
import { type Host, parseInventory, readInventory, selectHosts } from '../config/inventory.js';
import type { Reporter } from '../github/reporter.js';
import { resolveSshTarget, type SshCredentials } from '../remote/connect.js';
import type { Executor } from '../remote/executor.js';
import { type HostKeyPolicy, normalizeFingerprint, parseKnownHosts } from '../remote/known-hosts.js';
import { LocalExecutor } from '../remote/local.js';
import { JumpPool, SshExecutor } from '../remote/ssh.js';
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
 * Host keys are verified unless the user explicitly opts out. Decided before any connection, so that a
 * missing policy fails fast instead of falling back to trust-on-first-use.
 */
export function hostKeyPolicy(i: DeployActionInputs): HostKeyPolicy {
  if (i['known-hosts']?.trim())
    return { kind: 'known-hosts', entries: parseKnownHosts(i['known-hosts'], 'known-hosts'), source: 'known-hosts' };
  if (i['host-fingerprint']?.length)
    return { kind: 'fingerprint', fingerprints: i['host-fingerprint'].map(normalizeFingerprint) };
  if (i['insecure-skip-host-key-check']) return { kind: 'insecure' };
  throw new UserError(
    'host keys are verified: give known-hosts (known_hosts lines, e.g. from `ssh-keyscan -p PORT HOST`) or host-fingerprint (SHA256:...), or set insecure-skip-host-key-check: true to accept any key (dangerous)',
  );
}

export type Connect = (host: Host) => Promise<Executor>;

/**
 * Opens one Executor per host: SSH with a verified host key, or this machine for `ansible_connection=local`.
 * The SSH connection is made here (not lazily), so connection errors come before anything else.
 */
export function connector(i: DeployActionInputs, reporter: Reporter): Connect {
  let creds: SshCredentials | undefined;
  // Hosts behind the same bastion share one connection to it for the whole run.
  const jumps = new JumpPool();
  return async (host) => {
    if (host.connection === 'local') return new LocalExecutor(host.name);
    creds ??= sshCredentials(i);
    // The jump host (input or the host's ProxyJump) is resolved by sshTargetFor, with its own verified key.
    const exec = new SshExecutor(await resolveSshTarget(host, creds), { reporter, jumps });
    try {
      await exec.connect();
    } catch (error) {
      // Lets go of the bastion connection this host may hold.
      await exec.close();
      throw error;
    }
    return exec;
  };
}

/** The deploy inputs' SSH settings, jump host included (its key and known-hosts default to the targets'). */
export function sshCredentials(i: Parameters<typeof hostKeyPolicy>[0]): SshCredentials {
  const jumpKnownHosts = i['jump-known-hosts']?.trim();
  return {
    hostKey: hostKeyPolicy(i),
    ...(i['ssh-private-key'] ? { privateKey: new Secret(i['ssh-private-key']) } : {}),
    ...(i['ssh-passphrase'] ? { passphrase: new Secret(i['ssh-passphrase']) } : {}),
    jump: {
      ...(i['jump-host']?.trim() ? { spec: i['jump-host'].trim() } : {}),
      ...(i['jump-private-key'] ? { privateKey: new Secret(i['jump-private-key']) } : {}),
      ...(i['jump-passphrase'] ? { passphrase: new Secret(i['jump-passphrase']) } : {}),
      ...(jumpKnownHosts
        ? {
            hostKey: {
              kind: 'known-hosts',
              entries: parseKnownHosts(jumpKnownHosts, 'jump-known-hosts'),
              source: 'jump-known-hosts',
            },
          }
        : {}),
    },
  };
}
