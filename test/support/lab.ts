import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LabEnv, type LabHost, type LabMachine, readLabEnv } from '../../src/lab/env.js';
import { labDockerBin, labUp } from '../../src/lab/lab.js';
import type { ExecResult } from '../../src/remote/executor.js';
import { runLocal } from '../../src/remote/local.js';

/** The lab's Docker client. Test files load after the lab's global setup installed it. */
export const DOCKER_BIN = labDockerBin();

export function lab(): LabEnv {
  return readLabEnv();
}

export function host(env: LabEnv, name = 'vps1'): LabHost {
  const h = env.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`lab host ${name} is not up (hosts: ${env.hosts.map((x) => x.name).join(', ')})`);
  return h;
}

export function tempDir(prefix = 'dyce-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

/** OpenSSH client options for a lab host, host keys verified against a known_hosts file. */
/** What an SSH login needs of a lab host or machine VPS. */
export type SshTarget = Pick<LabHost, 'address' | 'sshPort'>;

export function sshArgv(
  h: SshTarget,
  opts: { user?: string; key: string; knownHostsFile: string },
  remote: string,
): string[] {
  return [
    'ssh',
    '-i',
    opts.key,
    '-p',
    String(h.sshPort),
    '-o',
    'BatchMode=yes',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${opts.knownHostsFile}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'ConnectTimeout=10',
    `${opts.user ?? 'root'}@${h.address}`,
    remote,
  ];
}

export function ssh(
  env: LabEnv,
  h: SshTarget,
  remote: string,
  opts: { user?: string; key?: string; knownHostsFile?: string; stdin?: string } = {},
): Promise<ExecResult> {
  return runLocal(
    sshArgv(
      h,
      {
        user: opts.user ?? 'root',
        key: opts.key ?? env.sshKey,
        knownHostsFile: opts.knownHostsFile ?? env.knownHostsFile,
      },
      remote,
    ),
    opts.stdin === undefined ? {} : { stdin: opts.stdin },
  );
}

/** Runs the host's own docker (DOCKER_HOST of that lab host) from this machine. */
export function hostDocker(
  h: LabHost,
  args: string[],
  opts: { stdin?: string; config?: string } = {},
): Promise<ExecResult> {
  const env = { ...process.env, DOCKER_HOST: h.dockerHost, ...(opts.config ? { DOCKER_CONFIG: opts.config } : {}) };
  return runLocal([DOCKER_BIN, ...args], { env, ...(opts.stdin === undefined ? {} : { stdin: opts.stdin }) });
}

export function writeTemp(dir: string, name: string, content: string, mode = 0o600): string {
  const p = join(dir, name);
  writeFileSync(p, content, { mode });
  return p;
}

/**
 * Machine VPSs mvps1..mvpsN (each a Debian system of its own), brought up if needed; `fresh` recreates them from the
 * cached image first, so a test starts from a new VPS. The first call on a machine builds the root filesystem.
 */
export async function machines(
  n: number,
  opts: { fresh?: boolean } = {},
): Promise<{ env: LabEnv; vps: LabMachine[]; knownHostsFile: string }> {
  const names = Array.from({ length: n }, (_, i) => `mvps${i + 1}`);
  const env = await labUp({ machines: n, ...(opts.fresh ? { freshMachines: names } : {}) });
  const vps = names.map((name) => (env.machines ?? []).find((m) => m.name === name) as LabMachine);
  // Its own known_hosts file: a concurrent `lab up` of another checkout may rewrite the lab's shared one.
  const knownHostsFile = writeTemp(
    tempDir('dyce-machines-'),
    'known_hosts',
    `${vps.map((m) => m.knownHosts).join('\n')}\n`,
  );
  return { env: { ...env, knownHostsFile }, vps, knownHostsFile };
}
