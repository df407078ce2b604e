/**
 * The deploy action as a user waits for it: the bundle run as a process under Node 24, as the runner runs it (main
 * step, then the post step), side by side with `ssh vps1 docker ps`, the floor of any tool. Plus the action's cold
 * start: from spawning node on the bundle to the first TCP connection at the host's sshd (a counting proxy in
 * front of it), against a bare `node -e ''` start.
 *
 * The bundle is built from this checkout into a temporary directory (`scripts/build.ts --out`), so the committed
 * dist/ is neither used nor touched.
 *
 *   npm run bench -- action            (DYCE_BENCH_ROUNDS=5 by default)
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readLabEnv } from '../src/lab/env.js';
import { runLocal } from '../src/remote/local.js';
import { parseFileCommands } from '../test/bundle/runner-protocol.js';
import { median, opensshArgv, ratioRow, row, run, sideBySide } from './support.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const env = readLabEnv();
const h = env.hosts[0]!;
const rounds = Number(process.env.DYCE_BENCH_ROUNDS ?? '5');
const REPLICAS = 4;
const APP = `bench-action-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'dyce-bench-action-'));
const node24 = join(root, 'tools/node24/node_modules/node/bin/node');

await run(['npx', 'tsx', join(root, 'scripts/build.ts'), '--out', join(dir, 'out')]);
const bundle = join(dir, 'out/actions/deploy/dist/index.js');
const bundleBytes = readFileSync(bundle).length;

/** The runner's file commands, fresh for each step. */
function stepEnv(extra: Record<string, string>): Record<string, string> {
  const t = join(dir, 'runner');
  rmSync(t, { recursive: true, force: true });
  mkdirSync(t, { recursive: true });
  const files: Record<string, string> = {};
  for (const f of ['GITHUB_OUTPUT', 'GITHUB_STATE', 'GITHUB_ENV', 'GITHUB_PATH', 'GITHUB_STEP_SUMMARY']) {
    files[f] = join(t, f.toLowerCase());
    writeFileSync(files[f]!, '');
  }
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    GITHUB_ACTIONS: 'true',
    RUNNER_TEMP: t,
    ...files,
    ...extra,
  };
}

const inputsFor = (port: number) => ({
  hosts: `${h.name} ansible_host=${h.address} ansible_port=${port} ansible_user=root dyce_state_dir=${join(dir, 'state')}`,
  'known-hosts': h.knownHosts.replace(`:${h.sshPort} `, `:${port} `),
  'ssh-private-key': readFileSync(env.sshKey, 'utf8'),
  image: `${env.sampleApp.image}:v1`,
  'registry-username': env.registry.username,
  'registry-password': env.registry.password,
  name: APP,
  replicas: String(REPLICAS),
  port: String(env.sampleApp.port),
  'host-port': String(27000 + (process.pid % 200) * 5),
});
const inputEnv = (port: number) =>
  Object.fromEntries(Object.entries(inputsFor(port)).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v]));

/** main, then post with main's saved state, as the runner runs them. */
async function actionRun(port = h.sshPort): Promise<void> {
  const e = stepEnv(inputEnv(port));
  const main = await runLocal([node24, bundle], { env: e, cwd: dir });
  if (main.code !== 0) throw new Error(`action main exited ${main.code}: ${main.stdout.slice(-2000)}`);
  const state = Object.fromEntries(
    Object.entries(parseFileCommands(readFileSync(e.GITHUB_STATE!, 'utf8'))).map(([k, v]) => [`STATE_${k}`, v]),
  );
  const post = await runLocal([node24, bundle], { env: { ...stepEnv(inputEnv(port)), ...state }, cwd: dir });
  if (post.code !== 0) throw new Error(`action post exited ${post.code}: ${post.stdout.slice(-2000)}`);
}

const openssh = () => run(opensshArgv(env, h, 'docker ps'));

/** A TCP proxy to the host's sshd that records when its first connection arrives. */
async function countingProxy(): Promise<{ port: number; first: () => number | undefined; close: () => void }> {
  let first: number | undefined;
  const server = createServer((s) => {
    first ??= performance.now();
    const up = createConnection({ host: h.address, port: h.sshPort });
    s.pipe(up).pipe(s);
    s.on('error', () => up.destroy());
    up.on('error', () => s.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as { port: number }).port,
    first: () => first,
    close: () => server.close(),
  };
}

try {
  await actionRun(); // first deploy: the replicas exist from here on
  const noop = await sideBySide(actionRun, openssh, rounds);

  const cold: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const proxy = await countingProxy();
    const t0 = performance.now();
    await actionRun(proxy.port);
    const f = proxy.first();
    proxy.close();
    if (f === undefined) throw new Error('the action never connected');
    cold.push(f - t0);
    const b0 = performance.now();
    await run([node24, '-e', '']);
    bare.push(performance.now() - b0);
  }

  console.log(`deploy action bundle (Node 24, ${(bundleBytes / 1e6).toFixed(2)} MB), ${REPLICAS} replicas on vps1`);
  console.log(row('action bundle: no-op redeploy (main + post)', noop.a));
  console.log(row('ssh vps1 docker ps', noop.b));
  console.log(row('cold start: spawn -> first TCP at sshd', cold));
  console.log(row("bare node24 -e ''", bare));
  console.log(ratioRow('no-op redeploy, action as a process / ssh', noop.ratios, '≤ 1.3× (#14 row 1)'));
  console.log(
    ratioRow(
      'cold start / bare node start',
      cold.map((c, k) => c / bare[k]!),
    ),
  );
  console.log(`cold start beyond node's own start: median ${(median(cold) - median(bare)).toFixed(0)}ms`);
} finally {
  await runLocal(['docker', 'rm', '-f', ...Array.from({ length: REPLICAS }, (_, i) => `${APP}${i + 1}`)], {
    env: { ...process.env, DOCKER_HOST: h.dockerHost },
  });
  rmSync(dir, { recursive: true, force: true });
}
