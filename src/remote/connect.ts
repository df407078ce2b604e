import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import type { Duplex } from 'node:stream';
import type { Host, JumpHost } from '../config/inventory.js';
import { parseJumpSpec } from '../config/inventory.js';
import { InputError, UserError } from '../util/errors.js';
import { Secret } from '../util/secret.js';
import type { ExecOptions, ExecResult, Executor } from './executor.js';
import { type HostKeyPolicy, normalizeFingerprint, parseKnownHosts } from './known-hosts.js';
import { LocalExecutor } from './local.js';
import { JumpPool, type SshEndpoint, SshExecutor, type SshOptions, type SshTarget } from './ssh.js';

/**
 * From an inventory Host and the action's SSH inputs to a ready Executor. Pure parts (`hostKeyPolicy`,
 * `sshTargetFor`) are separate from the one reading part (`resolveSshTarget`, which may read key files named by
 * ansible_ssh_private_key_file).
 */

export interface HostKeyInputs {
  /** known_hosts lines (the `known-hosts` input). */
  knownHosts?: string | undefined;
  /** `SHA256:...` fingerprints (the `host-fingerprint` input). */
  hostFingerprints?: readonly string[] | undefined;
  /** The `insecure-skip-host-key-check` input: the only way to skip verification. */
  insecureSkipHostKeyCheck?: boolean | undefined;
}

/**
 * The one host-key policy. Host keys are verified by default: without known-hosts or a fingerprint, and without
 * the explicit insecure switch, this is an input error (before any connection is attempted). Two ways of saying
 * which key to trust never silently let one win: known-hosts with a fingerprint, or either with the insecure
 * switch, is refused.
 */
export function hostKeyPolicy(
  inputs: HostKeyInputs,
  names = { knownHosts: 'known-hosts', fingerprint: 'host-fingerprint', insecure: 'insecure-skip-host-key-check' },
): HostKeyPolicy {
  const kh = inputs.knownHosts?.trim() ? inputs.knownHosts : undefined;
  const fps = (inputs.hostFingerprints ?? []).filter((f) => f.trim() !== '');
  const given = [kh ? names.knownHosts : undefined, fps.length > 0 ? names.fingerprint : undefined].filter(
    (n): n is string => n !== undefined,
  );
  if (inputs.insecureSkipHostKeyCheck && given.length > 0)
    throw new InputError([
      `input "${names.insecure}" and input "${given.join('" and input "')}" exclude each other: pin the host key, or skip the check, not both`,
    ]);
  if (inputs.insecureSkipHostKeyCheck) return { kind: 'insecure' };
  if (kh && fps.length > 0)
    throw new InputError([
      `input "${names.knownHosts}" and input "${names.fingerprint}" exclude each other: give one (a key in one and not the other would make the check depend on which wins)`,
    ]);
  if (kh) return { kind: 'known-hosts', entries: parseKnownHosts(kh, names.knownHosts), source: names.knownHosts };
  if (fps.length > 0) {
    const issues: string[] = [];
    const fingerprints: string[] = [];
    for (const f of fps) {
      try {
        fingerprints.push(normalizeFingerprint(f));
      } catch {
        issues.push(
          `${names.fingerprint}: expected SHA256:<base64> as printed by ssh-keygen -lf, got ${JSON.stringify(f)}`,
        );
      }
    }
    if (issues.length > 0) throw new InputError(issues);
    return { kind: 'fingerprint', fingerprints };
  }
  throw new InputError([
    `host keys are verified: give input "${names.knownHosts}" (e.g. the output of \`ssh-keyscan -p PORT HOST\`) or "${names.fingerprint}" (SHA256:...); ` +
      `only "${names.insecure}: true" skips the check`,
  ]);
}

export interface SshCredentials {
  /** The `ssh-private-key` input. Inventory's ansible_ssh_private_key_file wins for the hosts that set it. */
  privateKey?: Secret | string | undefined;
  passphrase?: Secret | string | undefined;
  /** An ssh-agent socket (the CLI's SSH_AUTH_SOCK); never defaulted in an action. */
  agent?: string | undefined;
  hostKey: HostKeyPolicy;
  /** User when the inventory names none (Melton's inventories log in as root). */
  defaultUser?: string | undefined;
  /**
   * A bastion for every host (the `jump-host` input, `[user@]host[:port]`); a host's own ProxyJump from the
   * inventory wins. Its key and host key default to the target's key and known-hosts (not to a fingerprint).
   */
  jump?:
    | {
        spec?: string | JumpHost | undefined;
        privateKey?: Secret | string | undefined;
        passphrase?: Secret | string | undefined;
        hostKey?: HostKeyPolicy | undefined;
      }
    | undefined;
}

/** Pure: a Host and credentials (with key text already in hand) -> the SshTarget. */
export function sshTargetFor(host: Host, creds: SshCredentials, keyFromFile?: string): SshTarget {
  const keyText = keyFromFile ?? reveal(creds.privateKey);
  if (!keyText && !creds.agent)
    throw new UserError(
      `${host.name}: no SSH private key: give input "ssh-private-key" or set ansible_ssh_private_key_file for this host`,
    );
  const target: SshTarget = {
    host: host.name,
    address: host.address,
    port: host.port,
    user: host.user ?? creds.defaultUser ?? 'root',
    ...(keyText ? { privateKey: keyText } : {}),
    ...(creds.agent ? { agent: creds.agent } : {}),
    hostKey: creds.hostKey,
    ...(creds.passphrase === undefined ? {} : { passphrase: creds.passphrase }),
  };
  const jumpSpec = host.jump ?? creds.jump?.spec;
  if (jumpSpec !== undefined) {
    const j = typeof jumpSpec === 'string' ? parseJumpSpec(jumpSpec) : jumpSpec;
    if ('error' in j) throw new InputError([`jump-host: ${j.error}`]);
    const jumpKeyPolicy = creds.jump?.hostKey ?? (creds.hostKey.kind === 'fingerprint' ? undefined : creds.hostKey);
    if (!jumpKeyPolicy)
      throw new InputError([
        `${host.name}: the jump host ${j.host}:${j.port} needs its own host key: give input "jump-known-hosts" or "jump-host-fingerprint" ` +
          '(known_hosts lines for it; a host-fingerprint pins the target hosts only)',
      ]);
    const jumpKey = reveal(creds.jump?.privateKey) ?? keyText;
    const jump: SshEndpoint = {
      address: j.host,
      port: j.port,
      user: j.user ?? target.user,
      ...(jumpKey ? { privateKey: jumpKey } : {}),
      ...(creds.agent ? { agent: creds.agent } : {}),
      hostKey: jumpKeyPolicy,
      ...(creds.jump?.passphrase !== undefined
        ? { passphrase: creds.jump.passphrase }
        : creds.jump?.privateKey === undefined && creds.passphrase !== undefined
          ? { passphrase: creds.passphrase }
          : {}),
    };
    target.jump = jump;
  }
  return target;
}

/** Reads ansible_ssh_private_key_file when the host sets it (`~` is the home directory), then sshTargetFor. */
export async function resolveSshTarget(host: Host, creds: SshCredentials): Promise<SshTarget> {
  if (!host.privateKeyFile) return sshTargetFor(host, creds);
  const path = host.privateKeyFile.replace(/^~(?=\/|$)/, homedir());
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UserError(
      `${host.name}: cannot read ansible_ssh_private_key_file ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`,
      { cause: error },
    );
  }
  return sshTargetFor(host, creds, text);
}

/** The Executor for an inventory host: local for `ansible_connection=local`, else SSH. Nothing connects yet. */
export async function executorFor(host: Host, creds: SshCredentials, options: SshOptions): Promise<Executor> {
  if (host.connection === 'local') return new LocalExecutor(host.name);
  return new SshExecutor(await resolveSshTarget(host, creds), options);
}

/**
 * The one SSH connector (deploy, rollback, the post step, `dyce play`): per inventory host an Executor, connected
 * now so that connection errors come first: this machine for `ansible_connection=local`, else SSH with the verified
 * host key, the key or agent, the passphrase, and the jump host (the input's or the host's ProxyJump), whose one
 * connection hosts behind the same bastion share. `adjust` rewrites a host first (the CLI's ~/.ssh/config).
 */
export function sshConnector(
  creds: SshCredentials,
  options: Omit<SshOptions, 'jumps'>,
  adjust: (host: Host) => Host = (h) => h,
): (host: Host) => Promise<Executor> {
  const jumps = new JumpPool();
  return async (given) => {
    if (given.connection === 'local') return new LocalExecutor(given.name);
    const exec = new SshExecutor(await resolveSshTarget(adjust(given), creds), { ...options, jumps });
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

function reveal(v: Secret | string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const s = v instanceof Secret ? v.reveal() : v;
  return s === '' ? undefined : s;
}

/**
 * The connections of one run (a deploy with its playbook, a rollback, a `dyce play`): one executor, so one SSH
 * login and one remote shell, per host for the whole run. The executors handed out are leases: their close() does
 * nothing; `close()` of the run closes every connection at its end.
 */
export class RunConnections {
  readonly #open = new Map<string, Promise<Executor>>();

  /** The run's executor for `host`, made by `create` the first time. A failed attempt is not kept. */
  lease(name: string, create: () => Promise<Executor>): Promise<Executor> {
    let p = this.#open.get(name);
    if (!p) {
      p = create();
      this.#open.set(name, p);
      p.catch(() => {
        if (this.#open.get(name) === p) this.#open.delete(name);
      });
    }
    return p.then((exec) => new LeasedExecutor(exec));
  }

  /** How many hosts have a connection (for tests). */
  get size(): number {
    return this.#open.size;
  }

  async close(): Promise<void> {
    const all = [...this.#open.values()];
    this.#open.clear();
    await Promise.all(all.map((p) => p.then((e) => e.close()).catch(() => {})));
  }
}

/** An executor of a RunConnections: everything goes to the run's one executor for the host, except close(). */
class LeasedExecutor implements Executor {
  constructor(readonly inner: Executor) {}
  get host(): string {
    return this.inner.host;
  }
  get user(): string | undefined {
    return this.inner.user;
  }
  run(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return this.inner.run(argv, opts);
  }
  /** The health gate's tunnel, when the inner executor has one (SSH). */
  get forwardOut(): ((port: number, host?: string) => Promise<Duplex>) | undefined {
    const inner = this.inner as Executor & { forwardOut?: (port: number, host?: string) => Promise<Duplex> };
    return inner.forwardOut ? (port, host) => inner.forwardOut!(port, host) : undefined;
  }
  async close(): Promise<void> {}
}
