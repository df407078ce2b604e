/**
 * Shared benchmark helpers. The machine is noisy: measurements are taken side by side (A B A B ...),
 * each A/B ratio is computed pair by pair, and the median is reported with the min and max.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type { LabEnv, LabHost } from '../src/lab/env.js';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

export interface PairResult {
  a: number[];
  b: number[];
  ratios: number[];
}

/** Runs a then b, `rounds` times, after `warmup` unmeasured rounds. */
export async function sideBySide(
  a: () => Promise<unknown>,
  b: () => Promise<unknown>,
  rounds = 5,
  warmup = 1,
): Promise<PairResult> {
  for (let i = 0; i < warmup; i++) {
    await a();
    await b();
  }
  const r: PairResult = { a: [], b: [], ratios: [] };
  for (let i = 0; i < rounds; i++) {
    const ta = await timeIt(a);
    const tb = await timeIt(b);
    r.a.push(ta);
    r.b.push(tb);
    r.ratios.push(ta / tb);
  }
  return r;
}

export function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)}s` : `${ms.toFixed(1)}ms`;
}

export function row(label: string, xs: number[]): string {
  return `${label.padEnd(44)} median ${fmtMs(median(xs)).padStart(9)}   min ${fmtMs(Math.min(...xs)).padStart(9)}   max ${fmtMs(Math.max(...xs)).padStart(9)}`;
}

export function ratioRow(label: string, ratios: number[], goal?: string): string {
  const m = median(ratios);
  return `${label.padEnd(44)} ratio  ${m.toFixed(2).padStart(8)}×   min ${Math.min(...ratios)
    .toFixed(2)
    .padStart(8)}×   max ${Math.max(...ratios)
    .toFixed(2)
    .padStart(8)}×${goal ? `   goal ${goal}` : ''}`;
}

/** Runs a command to completion; rejects on a non-zero exit with its stderr. */
export function run(argv: string[], opts: { env?: NodeJS.ProcessEnv; stdin?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(argv[0]!, argv.slice(1), { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => {
      out += d;
    });
    c.stderr.on('data', (d) => {
      err += d;
    });
    c.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${argv.join(' ')} exited ${code}: ${err.trim()}`)),
    );
    c.stdin.end(opts.stdin ?? '');
  });
}

/** The OpenSSH client's argv for one command on a lab host, with its host key verified (as Ansible runs ssh). */
export function opensshArgv(env: LabEnv, host: LabHost, command: string): string[] {
  return [
    'ssh',
    '-i',
    env.sshKey,
    '-p',
    String(host.sshPort),
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${env.knownHostsFile}`,
    `root@${host.address}`,
    command,
  ];
}

/**
 * An INI inventory for ansible-playbook on lab hosts: one `[servers]` line per host (HOST_VARS adds its own vars),
 * logging in as USER with the lab's key, host keys verified against the lab's known_hosts.
 */
export function ansibleInventory(
  env: LabEnv,
  hosts: LabHost[],
  opts: { user?: string; hostVars?: (h: LabHost) => string } = {},
): string {
  return [
    '[servers]',
    ...hosts.map((h) =>
      [
        `${h.name} ansible_host=${h.address} ansible_port=${h.sshPort}`,
        ...(opts.hostVars ? [opts.hostVars(h)] : []),
      ].join(' '),
    ),
    '',
    '[all:vars]',
    'ansible_python_interpreter=/usr/bin/python3',
    `ansible_user=${opts.user ?? 'root'}`,
    `ansible_ssh_private_key_file=${env.sshKey}`,
    `ansible_ssh_common_args='-o StrictHostKeyChecking=yes -o UserKnownHostsFile=${env.knownHostsFile}'`,
    '',
  ].join('\n');
}

/** Writes VARS as a 0600 JSON file for `--extra-vars @FILE` (Ansible's own way with a password: not argv, at least). */
export function writeAnsibleVars(path: string, vars: Record<string, string>): string {
  writeFileSync(path, JSON.stringify(vars), { mode: 0o600 });
  return path;
}

/** `ansible-playbook -i INVENTORY PLAYBOOK ARGS...` with host key checking, no colours and no retry files. */
export function ansiblePlaybook(inventory: string, playbook: string, args: string[] = []): Promise<string> {
  return run(['ansible-playbook', '-i', inventory, playbook, ...args], {
    env: { ...process.env, ANSIBLE_HOST_KEY_CHECKING: 'True', ANSIBLE_NOCOLOR: '1', ANSIBLE_RETRY_FILES_ENABLED: '0' },
  });
}
