import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LabEnv, LabMachine } from '../../src/lab/env.js';
import { runLocal } from '../../src/remote/local.js';
import { machines, ssh, tempDir, writeTemp } from './lab.js';

/**
 * Differential runs of a module's task file: ansible-playbook on one fresh machine VPS, `dyce play` on another, then
 * the same again on both (the reruns). The caller compares per-task statuses and each machine's end state.
 */

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../..');

export type Statuses = [string, string][];

export interface Pair {
  env: LabEnv;
  ansible: LabMachine;
  dyce: LabMachine;
  knownHostsFile: string;
  dir: string;
}

/** Two fresh machine VPSs: mvps1 for ansible-playbook, mvps2 for dyce play. */
export async function freshPair(): Promise<Pair> {
  const { env, vps, knownHostsFile } = await machines(2, { fresh: true });
  return { env, ansible: vps[0]!, dyce: vps[1]!, knownHostsFile, dir: tempDir('dyce-modules-') };
}

function inventory(m: LabMachine): string {
  return `[target]\n${m.name} ansible_host=${m.address} ansible_port=${m.sshPort} ansible_user=root ansible_python_interpreter=/usr/bin/python3\n`;
}

/** A play on all hosts without fact gathering, around TASKS (YAML list items, indented by the caller or not). */
export function playbookOf(tasks: string, opts: { vars?: string } = {}): string {
  const indent = (s: string) =>
    s
      .split('\n')
      .map((l) => (l.trim() ? `    ${l}` : l))
      .join('\n');
  return `- hosts: all\n  gather_facts: false\n${opts.vars ? `  vars:\n${indent(opts.vars).replace(/^ {2}/gm, '')}\n` : ''}  tasks:\n${indent(tasks)}\n`;
}

/** Per task: changed / ok / skipped / failed, from Ansible's or Dyce's JSON output. */
export function taskStatuses(jsonText: string): Statuses {
  const start = jsonText.indexOf('{');
  if (start < 0) throw new Error(`no JSON in output:\n${jsonText.slice(0, 2000)}`);
  const run = JSON.parse(jsonText.slice(start)) as {
    plays: { tasks: { task: { name: string }; hosts: Record<string, Record<string, unknown>> }[] }[];
  };
  return run.plays.flatMap((p) =>
    p.tasks.map((t) => {
      const h = Object.values(t.hosts)[0] ?? {};
      const s = h.failed ? 'failed' : h.skipped ? 'skipped' : h.changed ? 'changed' : 'ok';
      return [t.task.name, s] as [string, string];
    }),
  );
}

export interface RunResult {
  code: number;
  statuses: Statuses;
  output: string;
}

export async function runAnsible(p: Pair, playbook: string, args: string[] = []): Promise<RunResult> {
  const inv = writeTemp(p.dir, 'ansible-inventory', inventory(p.ansible));
  const file = writeTemp(p.dir, 'playbook.yml', playbook);
  const r = await runLocal(['ansible-playbook', '-i', inv, file, '--private-key', p.env.sshKey, ...args], {
    cwd: p.dir,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      ANSIBLE_STDOUT_CALLBACK: 'json',
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_RETRY_FILES_ENABLED: '0',
      ANSIBLE_SSH_ARGS: `-o UserKnownHostsFile=${p.knownHostsFile} -o StrictHostKeyChecking=yes -o ControlMaster=auto -o ControlPersist=60s`,
    },
  });
  return { code: r.code, statuses: taskStatuses(r.stdout), output: r.stdout + r.stderr };
}

export async function runDyce(p: Pair, playbook: string, args: string[] = []): Promise<RunResult> {
  const inv = writeTemp(p.dir, 'dyce-inventory', inventory(p.dyce));
  const file = writeTemp(p.dir, 'playbook.yml', playbook);
  const r = await runLocal(
    [
      process.execPath,
      '--import',
      'tsx',
      join(repoRoot, 'src/cli/main.ts'),
      'play',
      '-i',
      inv,
      file,
      '--known-hosts-file',
      p.knownHostsFile,
      '--json',
      ...args,
    ],
    {
      // tsx resolves from the checkout.
      cwd: repoRoot,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/root',
        DYCE_SSH_PRIVATE_KEY: readFileSync(p.env.sshKey, 'utf8'),
      },
    },
  );
  const output = r.stdout + r.stderr;
  return { code: r.code, statuses: r.stdout.includes('{') ? taskStatuses(r.stdout) : [['(no JSON)', output]], output };
}

/** The output of SCRIPT on both machines, with each machine's own name replaced by HOST so that they compare. */
export async function stateOf(p: Pair, script: string): Promise<{ ansible: string; dyce: string }> {
  const [a, d] = await Promise.all(
    [p.ansible, p.dyce].map(async (m) => {
      const r = await ssh({ ...p.env, knownHostsFile: p.knownHostsFile }, m, script);
      return `${r.stdout}${r.stderr}`.replaceAll(m.name, 'HOST').replaceAll(m.address, 'ADDR');
    }),
  );
  return { ansible: a!, dyce: d! };
}

/** Runs the playbook with both tools, twice; returns both runs of both. */
export async function differential(
  p: Pair,
  playbook: string,
  args: string[] = [],
): Promise<{ ansible: RunResult[]; dyce: RunResult[] }> {
  const a1 = await runAnsible(p, playbook, args);
  const d1 = await runDyce(p, playbook, args);
  const a2 = await runAnsible(p, playbook, args);
  const d2 = await runDyce(p, playbook, args);
  return { ansible: [a1, a2], dyce: [d1, d2] };
}
