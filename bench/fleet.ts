/**
 * How Dyce's own overhead grows with the number of hosts: a no-op redeploy to 1, 10 and 50 hosts, `parallel` = the
 * number of hosts, in-process (the engine after Node has started). The hosts are throwaway sshds on this machine,
 * each with its own host key and state dir, all reaching vps1's Docker engine with the same app and ports, so each
 * host's no-op is the same one round trip and what grows is Dyce's side (connections, handshakes, scheduling) and
 * the shared machine. Goal (#14): 50 hosts in ≤ 3× the time of 1. The process's peak RSS is sampled for each size.
 *
 *   npm run bench -- fleet            (DYCE_BENCH_ROUNDS=3 by default)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deployRules, deploySpec } from '../src/config/actions/deploy.js';
import { parseInputs } from '../src/config/input-spec.js';
import { runDeploy } from '../src/deploy/entry.js';
import { RecordingReporter } from '../src/github/reporter.js';
import { readLabEnv } from '../src/lab/env.js';
import { runLocal } from '../src/remote/local.js';
import { startSshd, type ThrowawaySshd } from '../test/support/sshd.js';
import { median, ratioRow, row, timeIt } from './support.js';

const env = readLabEnv();
const vps1 = env.hosts[0]!;
const rounds = Number(process.env.DYCE_BENCH_ROUNDS ?? '3');
const SIZES = [1, 10, 50];
const APP = `bench-fleet-${process.pid}`;
const REPLICAS = 2;
const dir = mkdtempSync(join(tmpdir(), 'dyce-bench-fleet-'));
const pub = readFileSync(`${env.sshKey}.pub`, 'utf8').trim();

const sshds: ThrowawaySshd[] = [];
for (let i = 0; i < Math.max(...SIZES); i++)
  sshds.push(
    await startSshd({
      hostKeyTypes: ['ed25519'],
      authorizedKeys: { root: pub },
      extraConfig: [`SetEnv DOCKER_HOST=${vps1.dockerHost}`, 'MaxStartups 100:30:200'],
    }),
  );

const inputs = (n: number) =>
  parseInputs(
    deploySpec,
    {
      hosts: sshds
        .slice(0, n)
        .map(
          (s, k) => `h${k + 1} ansible_host=127.0.0.1 ansible_port=${s.port} dyce_state_dir=${join(dir, `s${k + 1}`)}`,
        )
        .join('\n'),
      'known-hosts': sshds
        .slice(0, n)
        .map((s) => s.hostKeys.ed25519!.knownHosts)
        .join('\n'),
      'ssh-private-key': readFileSync(env.sshKey, 'utf8'),
      image: `${env.sampleApp.image}:v1`,
      'registry-username': env.registry.username,
      'registry-password': env.registry.password,
      name: APP,
      replicas: String(REPLICAS),
      port: String(env.sampleApp.port),
      'host-port': String(28000 + (process.pid % 300) * 3),
      parallel: String(n),
    },
    deployRules,
  );

/** Runs a no-op deploy to n hosts; returns its time, Dyce's own CPU time and the peak RSS seen while it ran. */
async function noop(n: number): Promise<{ ms: number; cpu: number; rss: number }> {
  let peak = process.memoryUsage().rss;
  const cpu0 = process.cpuUsage();
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 10);
  try {
    const ms = await timeIt(async () => {
      const r = await runDeploy(inputs(n), new RecordingReporter());
      if (r.failedHosts.length) throw new Error(`failed on ${r.failedHosts.join(', ')}`);
      if (r.changed) throw new Error(`the no-op to ${n} hosts changed something`);
    });
    const c = process.cpuUsage(cpu0);
    return { ms, cpu: (c.user + c.system) / 1000, rss: Math.max(peak, process.memoryUsage().rss) };
  } finally {
    clearInterval(sampler);
  }
}

try {
  // The replicas exist from here on; then every host's no-op is judged against them. A first pass of each size
  // warms up (each host's state dir and lock file).
  await runDeploy(inputs(1), new RecordingReporter());
  for (const n of SIZES) await runDeploy(inputs(n), new RecordingReporter());
  const t = new Map<number, number[]>(SIZES.map((n) => [n, []]));
  const rss = new Map<number, number>();
  const cpu = new Map<number, number[]>(SIZES.map((n) => [n, []]));
  for (let i = 0; i < rounds; i++)
    for (const n of SIZES) {
      const r = await noop(n);
      t.get(n)!.push(r.ms);
      cpu.get(n)!.push(r.cpu);
      rss.set(n, Math.max(rss.get(n) ?? 0, r.rss));
    }
  const one = t.get(1)!;
  console.log(`no-op redeploy to N hosts (throwaway sshds sharing vps1's engine), parallel N, ${REPLICAS} replicas`);
  for (const n of SIZES)
    console.log(row(`${n} host${n > 1 ? 's' : ''} (peak RSS ${(rss.get(n)! / 2 ** 20).toFixed(0)} MiB)`, t.get(n)!));
  for (const n of SIZES.slice(1))
    console.log(
      ratioRow(
        `${n} hosts / 1 host`,
        t.get(n)!.map((x, k) => x / one[k]!),
        n === 50 ? '≤ 3× (#14 item 4)' : undefined,
      ),
    );
  for (const n of SIZES) console.log(row(`  Dyce's own CPU time, ${n} host${n > 1 ? 's' : ''}`, cpu.get(n)!));
  console.log(
    `per extra host: ${((median(t.get(50)!) - median(one)) / 49).toFixed(1)}ms of wall time, ` +
      `${((median(cpu.get(50)!) - median(cpu.get(1)!)) / 49).toFixed(1)}ms of Dyce's CPU (the rest is sshd, sh and docker on the same 2 cores)`,
  );
} finally {
  await runLocal(['docker', 'rm', '-f', ...Array.from({ length: REPLICAS }, (_, i) => `${APP}${i + 1}`)], {
    env: { ...process.env, DOCKER_HOST: vps1.dockerHost },
  });
  await Promise.all(sshds.map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
}
