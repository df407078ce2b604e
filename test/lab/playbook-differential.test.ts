import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runLocal } from '../../src/remote/local.js';
import { lab, tempDir, writeTemp } from '../support/lab.js';

/**
 * The differential test of the language: each playbook of test/fixtures/playbooks/differential (one feature each)
 * runs under `dyce play` and under ansible-playbook (Debian's ansible-core) on the lab's vps1..vps3, and
 * - the recap counts agree (ok, changed, failed, skipped, rescued, ignored, unreachable), host by host;
 * - the values the playbook prints with `debug` agree, in order, host by host;
 * - a second run changes nothing under either tool where the first changed nothing real (debug-only cases).
 */

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../..');
const cases = join(repoRoot, 'test/fixtures/playbooks/differential');
const env = lab();
const dir = tempDir('dyce-diff-');
const inventory = writeTemp(
  dir,
  'hosts',
  `[lab]\n${env.hosts
    .slice(0, 3)
    .map((h) => `${h.name} ansible_host=${h.address} ansible_port=${h.sshPort}`)
    .join('\n')}\n\n[all:vars]\nansible_user=root\nansible_python_interpreter=/usr/bin/python3\n`,
  0o644,
);
const ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', DYCE_DIFF_ENV: 'from env' };

interface Run {
  code: number;
  stats: Record<string, Record<string, number>>;
  /** host -> every printed debug value, in task order. */
  printed: Record<string, string[]>;
  raw: string;
}

function parse(code: number, stdout: string, stderr: string): Run {
  const start = stdout.indexOf('{');
  if (start < 0) throw new Error(`no JSON (exit ${code}):\n${stdout}\n${stderr}`);
  const run = JSON.parse(stdout.slice(start)) as {
    plays: { tasks: { task: { name: string }; hosts: Record<string, Record<string, unknown>> }[] }[];
    stats: Record<string, Record<string, number>>;
  };
  const printed: Record<string, string[]> = {};
  const shown = (r: Record<string, unknown>): unknown[] => {
    if (Array.isArray(r.results)) return r.results.flatMap((x) => shown(x as Record<string, unknown>));
    if (r.skipped === true || r.failed === true) return [];
    const keys = Object.keys(r).filter(
      (k) =>
        !k.startsWith('_') &&
        ![
          'changed',
          'failed',
          'action',
          'skipped',
          'skip_reason',
          'false_condition',
          'invocation',
          'censored',
          'status',
        ].includes(k),
    );
    if ('msg' in r && r.failed !== true) return [r.msg];
    // debug var=NAME shows NAME.
    const v = keys.filter(
      (k) =>
        k !== 'msg' && !k.startsWith('ansible_') && !['item', 'n', 'attempts', 'assertion', 'evaluated_to'].includes(k),
    );
    return v.length === 1 ? [{ [v[0]!]: r[v[0]!] }] : [];
  };
  for (const p of run.plays)
    for (const t of p.tasks) {
      if (t.task.name === 'Gathering Facts') continue;
      for (const [h, r] of Object.entries(t.hosts)) {
        // Ansible's json callback names the module per host; Dyce's per task.
        const action = String((r as { action?: string }).action ?? (t.task as { module?: string }).module ?? '');
        if (action !== 'debug' && !action.endsWith('.debug')) continue;
        printed[h] ??= [];
        printed[h].push(...shown(r).map(stable));
      }
    }
  const stats: Run['stats'] = {};
  for (const [h, s] of Object.entries(run.stats))
    stats[h] = {
      ok: s.ok ?? 0,
      changed: s.changed ?? 0,
      failures: s.failures ?? s.failed ?? 0,
      skipped: s.skipped ?? 0,
      rescued: s.rescued ?? 0,
      ignored: s.ignored ?? 0,
      unreachable: s.unreachable ?? 0,
    };
  return { code, stats, printed, raw: stdout };
}

/** JSON with keys sorted: Ansible's callback sorts them, Dyce keeps the playbook's order. */
function stable(v: unknown): string {
  const sort = (x: unknown): unknown =>
    Array.isArray(x)
      ? x.map(sort)
      : x && typeof x === 'object'
        ? Object.fromEntries(
            Object.entries(x)
              .sort(([a], [b]) => (a < b ? -1 : 1))
              .map(([k, y]) => [k, sort(y)]),
          )
        : x;
  return JSON.stringify(sort(v));
}

async function dyce(file: string, args: string[]): Promise<Run> {
  const r = await runLocal(
    [
      process.execPath,
      '--import',
      'tsx',
      join(repoRoot, 'src/cli/main.ts'),
      'play',
      '-i',
      inventory,
      file,
      '--json',
      '--known-hosts-file',
      env.knownHostsFile,
      '--private-key',
      env.sshKey,
      ...args,
    ],
    { cwd: repoRoot, env: ENV },
  );
  return parse(r.code, r.stdout, r.stderr);
}

async function ansible(file: string, args: string[]): Promise<Run> {
  const r = await runLocal(['ansible-playbook', '-i', inventory, file, '--private-key', env.sshKey, ...args], {
    cwd: repoRoot,
    env: {
      ...ENV,
      ANSIBLE_STDOUT_CALLBACK: 'json',
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_RETRY_FILES_ENABLED: '0',
      ANSIBLE_SSH_ARGS: `-o UserKnownHostsFile=${env.knownHostsFile} -o StrictHostKeyChecking=yes -o ControlMaster=auto -o ControlPersist=60s`,
    },
  });
  return parse(r.code, r.stdout, r.stderr);
}

/** Per case: extra arguments for both tools. */
const ARGS: Record<string, string[]> = { 'tags.yml': ['--tags', 'deploy'] };
/** Values that differ by nature (random picks) are compared by shape only. */
const normalise = (lines: string[]) => lines.map((l) => l.replace(/[0-9a-f]{40}/g, '<sha1>'));

const files = readdirSync(cases).filter((f) => f.endsWith('.yml'));

describe('dyce play and ansible-playbook agree', () => {
  it('has a case per feature', () => {
    expect(files.length).toBeGreaterThanOrEqual(12);
  });

  it.each(files)(
    '%s',
    async (name) => {
      const file = join(cases, name);
      const args = ARGS[name] ?? [];
      const a = await ansible(file, args);
      const d = await dyce(file, args);
      expect(d.code, d.raw).toBe(a.code);
      expect(d.stats).toEqual(a.stats);
      for (const h of Object.keys(a.stats))
        expect(normalise(d.printed[h] ?? []), h).toEqual(normalise(a.printed[h] ?? []));
      // A rerun changes nothing new under either tool: the same recap again.
      const d2 = await dyce(file, args);
      expect(d2.stats).toEqual(d.stats);
    },
    180_000,
  );
});
