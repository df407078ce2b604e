/**
 * playbooks/site.yml's first run and no-op run on fresh lab machine VPSs (a web and a monitoring host each),
 * ansible-playbook and dyce play side by side in one run: ansible-playbook on one pair, dyce play on another, both
 * made fresh from the same machine image. The CLI is timed as a process (what the user waits for). A first run is
 * minutes (apt installs Docker, nginx, Prometheus...), so one round by default.
 *
 *   npm run bench -- site            (DYCE_BENCH_ROUNDS=1 by default; needs `dyce lab up --machines N`)
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readLabEnv } from '../src/lab/env.js';
import { ansiblePlaybook, dycePlay, PLAYBOOKS } from '../test/support/site.js';
import {
  bareVps,
  freshMachines,
  type Machine,
  makeCa,
  pairInventory,
  pushSiteImages,
  removeMachines,
  siteRunArgs,
  writeSiteInputs,
} from '../test/support/site-lab.js';
import { fmtMs, ratioRow, row } from './support.js';

const env = readLabEnv();
if (!(env.machines ?? []).length) throw new Error('bench/site needs the lab machines: dyce lab up --machines 2');
const rounds = Number(process.env.DYCE_BENCH_ROUNDS ?? '1');
const dir = mkdtempSync(join(tmpdir(), 'dyce-bench-site-'));
const SITE = join(PLAYBOOKS, 'site.yml');
const tools = ['ansible', 'dyce'] as const;
type Tool = (typeof tools)[number];

const supported = (await dycePlay(['--syntax-check', SITE])).code === 0;
if (!supported) {
  const r = await dycePlay(['--syntax-check', SITE]);
  const problems = r.stderr.split('\n').filter((l) => /^\s+- /.test(l));
  const modules = [
    ...new Set(problems.map((l) => /unknown module or task keyword "(\w+)"/.exec(l)?.[1]).filter(Boolean)),
  ];
  console.log(
    `dyce play does not run site.yml yet (${problems.length} problems; modules still to come: ${modules.join(', ')}), so only ansible-playbook is timed`,
  );
}
const images = await pushSiteImages(env, dir);
const times: Record<Tool, { first: number[]; noop: number[] }> = {
  ansible: { first: [], noop: [] },
  dyce: { first: [], noop: [] },
};

async function timedRun(tool: Tool, inventory: string, inputs: { varsFile: string; secretsFile: string }) {
  const how = siteRunArgs(env, tool, join(dir, 'known_hosts'));
  const argv = ['-i', inventory, SITE, '-e', `@${inputs.varsFile}`, '-e', `@${inputs.secretsFile}`, ...how.args];
  const t = performance.now();
  const r = await (tool === 'ansible' ? ansiblePlaybook : dycePlay)(argv, how.env);
  const ms = performance.now() - t;
  if (r.code !== 0) throw new Error(`${tool}: site.yml failed (exit ${r.code}):\n${r.stdout.slice(-3000)}${r.stderr}`);
  return ms;
}

for (let round = 0; round < rounds; round++) {
  const active = tools.filter((t) => t === 'ansible' || supported);
  const machines: Machine[] = await freshMachines(env, active.length === 2 ? [31, 32, 33, 34] : [31, 32]);
  try {
    writeFileSync(join(dir, 'known_hosts'), `${machines.map((m) => m.knownHosts).join('\n')}\n`);
    for (const m of machines) await bareVps(env, join(dir, 'known_hosts'), m);
    const ca = makeCa(dir, [machines[0]!.address, ...(machines[2] ? [machines[2].address] : [])]);
    const inputs = writeSiteInputs(env, dir, {
      images,
      ca,
      telegramUrl: 'http://127.0.0.1:9',
      token: `1:${randomBytes(8).toString('hex')}`,
      chatId: '-1',
    });
    for (const [i, tool] of active.entries()) {
      const inventory = pairInventory(dir, tool, machines[2 * i]!, machines[2 * i + 1]!);
      times[tool].first.push(await timedRun(tool, inventory, inputs));
      times[tool].noop.push(await timedRun(tool, inventory, inputs));
      console.log(
        `round ${round + 1} ${tool}: first ${fmtMs(times[tool].first.at(-1)!)}, no-op ${fmtMs(times[tool].noop.at(-1)!)}`,
      );
    }
  } finally {
    await removeMachines(env, machines);
  }
}

console.log(`\nsite.yml on a fresh web + monitoring pair (${rounds} round${rounds > 1 ? 's' : ''})`);
for (const tool of tools) {
  if (!times[tool].first.length) continue;
  const name = tool === 'ansible' ? 'ansible-playbook' : 'dyce play';
  console.log(row(`${name}: first run`, times[tool].first));
  console.log(row(`${name}: no-op run`, times[tool].noop));
}
if (times.dyce.first.length) {
  const ratio = (k: 'first' | 'noop') => times.ansible[k].map((a, i) => a / times.dyce[k][i]!);
  console.log(ratioRow('first run: ansible-playbook / dyce play', ratio('first')));
  console.log(ratioRow('no-op run: ansible-playbook / dyce play', ratio('noop')));
}
