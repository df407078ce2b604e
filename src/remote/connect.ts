import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import type { Host, JumpHost } from '../config/inventory.js';
import { parseJumpSpec } from '../config/inventory.js';
import { InputError, UserError } from '../util/errors.js';
import { Secret } from '../util/secret.js';
import type { Executor } from './executor.js';
import { type HostKeyPolicy, normalizeFingerprint, parseKnownHosts } from './known-hosts.js';
import { LocalExecutor } from './local.js';
import { type SshEndpoint, SshExecutor, type SshOptions, type SshTarget } from './ssh.js';

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
 * Host keys are verified by default: without known-hosts or a fingerprint, and without the explicit insecure
 * switch, this is an input error (before any connection is attempted).
 */
export function hostKeyPolicy(
  inputs: HostKeyInputs,
  names = { knownHosts: 'known-hosts', fingerprint: 'host-fingerprint', insecure: 'insecure-skip-host-key-check' },
): HostKeyPolicy {
  const kh = inputs.knownHosts?.trim() ? inputs.knownHosts : undefined;
  const fps = (inputs.hostFingerprints ?? []).filter((f) => f.trim() !== '');
  if (inputs.insecureSkipHostKeyCheck) return { kind: 'insecure' };
  if (kh && fps.length > 0)
    throw new InputError([`input "${names.knownHosts}" and input "${names.fingerprint}" exclude each other: give one`]);
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
  if (!keyText)
    throw new UserError(
      `${host.name}: no SSH private key: give input "ssh-private-key" or set ansible_ssh_private_key_file for this host`,
    );
  const target: SshTarget = {
    host: host.name,
    address: host.address,
    port: host.port,
    user: host.user ?? creds.defaultUser ?? 'root',
    privateKey: keyText,
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
        `${host.name}: the jump host ${j.host}:${j.port} needs its own host key: give input "jump-known-hosts" ` +
          '(known_hosts lines for it; a host-fingerprint pins the target hosts only)',
      ]);
    const jumpKey = reveal(creds.jump?.privateKey) ?? keyText;
    const jump: SshEndpoint = {
      address: j.host,
      port: j.port,
      user: j.user ?? target.user,
      privateKey: jumpKey,
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

function reveal(v: Secret | string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const s = v instanceof Secret ? v.reveal() : v;
  return s === '' ? undefined : s;
}
