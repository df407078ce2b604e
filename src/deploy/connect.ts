import { readFile } from 'node:fs/promises';
import type { DeployActionInputs } from '../config/actions/deploy.js';
import { type Host, parseInventory, readInventory, selectHosts } from '../config/inventory.js';
import type { Reporter } from '../github/reporter.js';
import type { Executor } from '../remote/executor.js';
import { type HostKeyPolicy, normalizeFingerprint, parseKnownHosts } from '../remote/known-hosts.js';
import { LocalExecutor } from '../remote/local.js';
import { SshExecutor } from '../remote/ssh.js';
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
  let policy: HostKeyPolicy | undefined;
  return async (host) => {
    if (host.connection === 'local') return new LocalExecutor(host.name);
    policy ??= hostKeyPolicy(i);
    const key =
      i['ssh-private-key'] ?? (host.privateKeyFile ? await readKeyFile(host.privateKeyFile, host.name) : undefined);
    if (!key)
      throw new UserError(`${host.name}: no SSH private key: give ssh-private-key (or ansible_ssh_private_key_file)`);
    const exec = new SshExecutor(
      {
        host: host.name,
        address: host.address,
        port: host.port,
        user: host.user ?? 'root',
        hostKey: policy,
        privateKey: key,
        ...(i['ssh-passphrase'] ? { passphrase: new Secret(i['ssh-passphrase']) } : {}),
      },
      { reporter },
    );
    await exec.connect();
    return exec;
  };
}

async function readKeyFile(path: string, host: string): Promise<string> {
  try {
    return await readFile(path.replace(/^~(?=\/)/, process.env.HOME ?? '~'), 'utf8');
  } catch (error) {
    throw new UserError(
      `${host}: cannot read ansible_ssh_private_key_file ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`,
      { cause: error },
    );
  }
}
