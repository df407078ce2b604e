import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecResult } from '../../src/remote/executor.js';
import { runLocal } from '../../src/remote/local.js';

/** Helpers for the tests of playbooks/ (issue #17): run site.yml's files under ansible-playbook and dyce play. */

export const repoRoot = join(import.meta.dirname, '..', '..');
export const PLAYBOOKS = join(repoRoot, 'playbooks');
export const ROLES = ['docker', 'logging', 'ingress', 'firewall', 'monitoring', 'app'] as const;

/** A clean environment for either tool: PATH and HOME, Ansible without colour or retry files, plus EXTRA. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    ANSIBLE_NOCOLOR: '1',
    ANSIBLE_RETRY_FILES_ENABLED: '0',
    ANSIBLE_LOCALHOST_WARNING: '0',
    ANSIBLE_INVENTORY_UNPARSED_WARNING: '0',
    ...extra,
  };
}

export function ansiblePlaybook(args: string[], extraEnv: Record<string, string> = {}): Promise<ExecResult> {
  return runLocal(['ansible-playbook', ...args], { env: cleanEnv(extraEnv), cwd: repoRoot, timeoutMs: 900_000 });
}

export function dycePlay(args: string[], extraEnv: Record<string, string> = {}): Promise<ExecResult> {
  return runLocal([process.execPath, '--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), 'play', ...args], {
    env: cleanEnv(extraEnv),
    cwd: repoRoot,
    timeoutMs: 900_000,
  });
}

/** A copy of playbooks/ in DIR (for mutations that must leave the repository alone). Returns the copy's path. */
export function copyPlaybooks(dir: string): string {
  const to = join(dir, 'playbooks');
  cpSync(PLAYBOOKS, to, { recursive: true });
  return to;
}

/** Replaces FROM (which must occur) by TO in FILE: a mutation that a check must notice. */
export function mutate(file: string, from: string, to: string): void {
  const text = readFileSync(file, 'utf8');
  if (!text.includes(from)) throw new Error(`mutation target not found in ${file}: ${from}`);
  writeFileSync(file, text.replace(from, to));
}

/**
 * Whether `dyce play --syntax-check` accepts a playbook using FEATURE (a small playbook written to DIR): the
 * language and modules site.yml needs are being added this session; tests that need them say so when skipped.
 */
export async function dyceAccepts(dir: string, name: string, playbook: string): Promise<boolean> {
  const file = join(dir, `probe-${name}.yml`);
  writeFileSync(file, playbook);
  const r = await dycePlay(['--syntax-check', file]);
  return r.code === 0;
}

/**
 * A playbook that renders every role template to OUT on this machine (connection local; nothing outside OUT is
 * written), with each role's defaults loaded as vars_files, as the role would see them.
 */
export function renderPlaybook(playbooks: string, out: string): string {
  const templates: [string, string][] = [
    ['docker', 'daemon.json'],
    ['logging', 'loki.yml'],
    ['ingress', 'site.conf'],
    ['monitoring', 'blackbox.yml'],
    ['monitoring', 'prometheus.yml'],
    ['monitoring', 'rules.yml'],
    ['monitoring', 'alertmanager.yml'],
  ];
  const defaults = ROLES.map((r) => `    - ${join(playbooks, 'roles', r, 'defaults', 'main.yml')}`).join('\n');
  const tasks = templates
    .map(
      ([role, name]) => `    - name: render ${name}
      template:
        src: ${join(playbooks, 'roles', role, 'templates', `${name}.j2`)}
        dest: ${join(out, name)}
        mode: "0600"
      vars:
        ingress_https: true`,
    )
    .join('\n');
  return `- hosts: localhost
  connection: local
  gather_facts: false
  vars_files:
${defaults}
  tasks:
${tasks}
`;
}
