/**
 * build-push bench, side by side in one run on the lab: the action against plain `docker build` + `docker push`
 * of the same context, with the same BuildKit client, the same secret and a fresh layer each time (a nonce build
 * arg), so every round really builds and uploads. Two contexts: a tiny one (4 MiB layer: the overhead shows at its
 * largest) and one closer to an app image (64 MiB layer, like a Python app's dependencies).
 *   A  the bundled action (actions/build-push/dist/index.js) as the runner starts it: a Node process with INPUT_*,
 *      probing the builder, logging in with its own config dir, building, pushing, reading the digest, logging out;
 *   A' the same engine called in-process (no Node start-up), to show where the overhead is;
 *   B  `DOCKER_BUILDKIT=1 docker build --secret ... -t REF` then `docker push REF`, with a docker config that is
 *      already logged in (the floor: no login, no probe, no digest read-back);
 *   B' the same with `docker login --password-stdin` into a fresh config dir first: what a workflow without the
 *      action runs for the same job (login, build, push).
 * Rounds alternate A, A', B; ratios are taken round by round; medians reported. Goal: A / B <= 1.10.
 * Run: npx tsx bench/build-push.ts [rounds] [layer MiB ...]   (default: 5 rounds, 4 and 64 MiB)
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPush } from '../src/build/build-push.js';
import { buildPushRules, buildPushSpec } from '../src/config/actions/build-push.js';
import { parseInputs } from '../src/config/input-spec.js';
import { RecordingReporter } from '../src/github/reporter.js';
import { readLabEnv } from '../src/lab/env.js';
import { median, ratioRow, row, run, timeIt } from './support.js';

const rounds = Number(process.argv[2] ?? '5');
const sizes = process.argv.length > 3 ? process.argv.slice(3).map(Number) : [4, 64];
const env = readLabEnv();
const root = fileURLToPath(new URL('..', import.meta.url));
const bundle = join(root, 'actions/build-push/dist/index.js');
const node24 = join(root, 'tools/node24/node_modules/node/bin/node');
if (!existsSync(bundle)) throw new Error('actions/build-push/dist/index.js is missing: npm run build');
const node = existsSync(node24) ? node24 : process.execPath;

const dir = mkdtempSync(join(tmpdir(), 'dyce-bench-build-'));
const ctx = join(dir, 'app');
mkdirSync(ctx);
writeFileSync(
  join(ctx, 'Dockerfile'),
  [
    'FROM dyce-lab/base:latest',
    'ARG NONCE',
    'ARG MIB',
    'RUN --mount=type=secret,id=token test -s /run/secrets/token && echo "$NONCE" > /nonce && head -c "$((MIB * 1048576))" /dev/urandom > /blob',
    '',
  ].join('\n'),
);
const secretFile = join(dir, 'token');
writeFileSync(secretFile, 'bench-secret', { mode: 0o600 });
const repo = `${env.registry.url}/bench/build-push`;
const dockerEnv = { ...process.env, DOCKER_HOST: env.runner.dockerHost };
let n = 0;
let mib = 4;
const nonce = () => `${process.pid}-${Date.now()}-${n++}`;

const inputs = (tag: string, nonceValue: string) => ({
  context: ctx,
  image: repo,
  tags: tag,
  'registry-username': env.registry.username,
  'registry-password': env.registry.password,
  secrets: 'token=bench-secret',
  'build-args': `NONCE=${nonceValue}\nMIB=${mib}`,
  ref: '',
  sha: '',
});

/** A: the bundle, as the runner starts it. */
async function actionProcess(): Promise<void> {
  const t = `a-${n}`;
  const e: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? dir,
    DOCKER_HOST: env.runner.dockerHost,
    RUNNER_TEMP: dir,
    GITHUB_OUTPUT: join(dir, 'out'),
    GITHUB_STATE: join(dir, 'state'),
    GITHUB_STEP_SUMMARY: join(dir, 'summary'),
  };
  for (const [name, f] of Object.entries(buildPushSpec.inputs)) e[`INPUT_${name.toUpperCase()}`] = f.meta.default ?? '';
  for (const [name, v] of Object.entries(inputs(t, nonce()))) e[`INPUT_${name.toUpperCase()}`] = v;
  for (const f of ['out', 'state', 'summary']) writeFileSync(join(dir, f), '');
  await new Promise<void>((resolve, reject) => {
    const c = spawn(node, [bundle], { env: e, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d) => {
      err += d;
    });
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`action exited ${code}: ${err}`))));
  });
}

/** A': the engine in-process. */
async function actionInProcess(): Promise<void> {
  const parsed = parseInputs(buildPushSpec, inputs(`i-${n}`, nonce()), buildPushRules);
  await buildPush(parsed, { reporter: new RecordingReporter(), env: dockerEnv, tempRoot: dir });
}

/** B: plain docker build + docker push, already logged in; B': logging in first, into a fresh config dir. */
async function plain(withLogin = false): Promise<void> {
  const ref = `${repo}:p-${n}`;
  const config = withLogin ? mkdtempSync(join(dir, 'config-')) : env.runner.dockerConfig;
  const e = { ...dockerEnv, DOCKER_CONFIG: config, DOCKER_BUILDKIT: '1' };
  if (withLogin)
    await run([env.dockerBin, 'login', '-u', env.registry.username, '--password-stdin', env.registry.url], {
      env: e,
      stdin: env.registry.password,
    });
  await run(
    [
      env.dockerBin,
      'build',
      '--progress=plain',
      '--secret',
      `id=token,src=${secretFile}`,
      '--build-arg',
      `NONCE=${nonce()}`,
      '--build-arg',
      `MIB=${mib}`,
      '-t',
      ref,
      ctx,
    ],
    { env: e },
  );
  await run([env.dockerBin, 'push', ref], { env: e });
  if (withLogin) rmSync(config, { recursive: true, force: true });
}

try {
  for (const size of sizes) {
    mib = size;
    await actionProcess();
    await actionInProcess();
    await plain();
    await plain(true);
    const a: number[] = [];
    const ai: number[] = [];
    const b: number[] = [];
    const bl: number[] = [];
    for (let i = 0; i < rounds; i++) {
      a.push(await timeIt(actionProcess));
      ai.push(await timeIt(actionInProcess));
      b.push(await timeIt(() => plain()));
      bl.push(await timeIt(() => plain(true)));
    }
    console.log(`build-push bench: ${rounds} rounds, ${mib} MiB fresh layer per build, BuildKit secret, lab registry`);
    console.log(row('A  action bundle (node24 process)', a));
    console.log(row("A' engine in-process", ai));
    console.log(row('B  docker build + docker push', b));
    console.log(row("B' docker login + build + push", bl));
    console.log(
      ratioRow(
        'A / B  (action overhead)',
        a.map((x, i) => x / b[i]!),
        '<= 1.10x',
      ),
    );
    console.log(
      ratioRow(
        "A' / B (engine only)",
        ai.map((x, i) => x / b[i]!),
      ),
    );
    console.log(
      ratioRow(
        "A / B' (against login + build + push)",
        a.map((x, i) => x / bl[i]!),
      ),
    );
    console.log(
      ratioRow(
        "A' / B'",
        ai.map((x, i) => x / bl[i]!),
      ),
    );
    console.log(
      `overhead per run: ${(median(a) - median(b)).toFixed(0)}ms (action), ${(median(ai) - median(b)).toFixed(0)}ms (engine)\n`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
  // Drop the bench images from the runner's store (the registry keeps its copies; the lab is disposable).
  const ids = await run([env.dockerBin, 'images', '-q', repo], { env: dockerEnv }).catch(() => '');
  const list = [...new Set(ids.split('\n').filter(Boolean))];
  if (list.length) await run([env.dockerBin, 'rmi', '-f', ...list], { env: dockerEnv }).catch(() => '');
}
