/**
 * `dyce play` vs `ansible-playbook` on the Melton playbook against lab host vps1, side by side in one run:
 * the first run (no containers, image not on the host) and the no-op run (everything already in place).
 * Goal: ≥ 10× faster on the no-op run. Each round resets the host, then runs Ansible (first, no-op) and Dyce
 * (first, no-op); ratios are taken round by round. Dyce runs from its CLI bundle (build/cli.js, rebuilt here).
 * The deploy action's `playbook:` path (`dyce deploy --playbook`, the same engine behind deploy's inputs) is timed
 * on the no-op run too.
 *
 * A second row times a playbook that uses the language around modules (roles with dependencies, defaults, vars,
 * handlers and a template lookup; block/rescue/always; include_tasks with a loop; include_vars; flush_handlers;
 * run_once; delegate_to: test/fixtures/playbooks/language) on vps1, under both tools.
 *
 *   npm run bench -- play            (DYCE_BENCH_ROUNDS=3 by default)
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { readLabEnv } from '../src/lab/env.js';
import { labDockerBin } from '../src/lab/lab.js';
import { fmtMs, median, ratioRow, row, run, timeIt } from './support.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const env = readLabEnv();
const vps1 = env.hosts.find((h) => h.name === 'vps1');
if (!vps1 || vps1.sshPort !== 2222)
  throw new Error('bench/play needs lab host vps1 on port 2222 (the Melton hosts file points there)');
const melton = join(root, 'test/fixtures/playbooks/melton');
const hosts = join(melton, 'hosts');
const dir = mkdtempSync(join(tmpdir(), 'dyce-bench-play-'));
const tag = `bench-${process.pid}`;
const repo = `${env.registry.url}/meltondevops/melton-app-server`;
const prefix = `bench${process.pid}`;
const basePort = 23000 + (process.pid % 1000) * 4;
const rounds = Number(process.env.DYCE_BENCH_ROUNDS ?? '3');

const hostEnv = { ...process.env, DOCKER_HOST: vps1.dockerHost };
const runnerEnv = { ...process.env, DOCKER_HOST: env.runner.dockerHost, DOCKER_CONFIG: env.runner.dockerConfig };

async function setup(): Promise<string> {
  await run(['npx', 'tsx', join(root, 'scripts/build.ts'), '--cli']);
  const src = `${env.sampleApp.image}:v1`;
  await run([labDockerBin(), 'pull', '-q', src], { env: runnerEnv }).catch(() => '');
  await run([labDockerBin(), 'tag', src, `${repo}:${tag}`], { env: runnerEnv });
  await run([labDockerBin(), 'push', '-q', `${repo}:${tag}`], { env: runnerEnv });
  writeFileSync(join(dir, 'secrets.yml'), `DOCKER_PASSWORD: ${JSON.stringify(env.registry.password)}\n`, {
    mode: 0o600,
  });
  writeFileSync(join(dir, 'secret-extra-vars'), `DOCKER_PASSWORD=${env.registry.password}\n`, { mode: 0o600 });
  let playbook = join(melton, 'playbook.yml');
  const plugins = await run([labDockerBin(), 'plugin', 'ls', '--format', '{{.Name}} {{.Enabled}}'], { env: hostEnv });
  if (!/^loki(:\S+)? true$/m.test(plugins)) {
    const doc = parse(readFileSync(playbook, 'utf8')) as { tasks: Record<string, Record<string, unknown>>[] }[];
    const c = doc[0]!.tasks.find((t) => t.docker_container)!.docker_container!;
    delete c.log_driver;
    delete c.log_options;
    playbook = join(dir, 'playbook.yml');
    writeFileSync(playbook, stringify(doc));
    console.log('(no loki plugin on vps1: the playbook runs without its log options, for both tools)');
  }
  return playbook;
}

const vars = () => [
  '-e',
  `REGISTRY=${env.registry.url} DOCKER_TAG=${tag} DOCKER_USERNAME=${env.registry.username}`,
  '-e',
  `@${join(dir, 'secrets.yml')}`,
  '-e',
  JSON.stringify({ default_container_name: `${prefix}-app`, base_port: basePort }),
];

async function reset(): Promise<void> {
  await run([labDockerBin(), 'rm', '--force', `${prefix}-app1`, `${prefix}-app2`], { env: hostEnv }).catch(() => '');
  await run([labDockerBin(), 'rmi', '--force', `${repo}:${tag}`], { env: hostEnv }).catch(() => '');
}

function ansible(playbook: string): Promise<string> {
  return run(['ansible-playbook', '-i', hosts, playbook, '--private-key', env.sshKey, ...vars()], {
    env: {
      ...process.env,
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_RETRY_FILES_ENABLED: '0',
      ANSIBLE_SSH_ARGS: `-o UserKnownHostsFile=${env.knownHostsFile} -o StrictHostKeyChecking=yes -o ControlMaster=auto -o ControlPersist=60s`,
    },
  });
}

function dyce(playbook: string): Promise<string> {
  return run(
    [
      process.execPath,
      join(root, 'build/cli.js'),
      'play',
      '-i',
      hosts,
      playbook,
      '--known-hosts-file',
      env.knownHostsFile,
      ...vars(),
    ],
    { env: { ...process.env, DYCE_SSH_PRIVATE_KEY: readFileSync(env.sshKey, 'utf8') } },
  );
}

/** The deploy action's entry with `playbook:`, as `dyce deploy --playbook` (secret extra vars from a 0600 file). */
function dyceDeploy(playbook: string): Promise<string> {
  return run(
    [
      process.execPath,
      join(root, 'build/cli.js'),
      'deploy',
      '--inventory',
      hosts,
      '--known-hosts',
      readFileSync(env.knownHostsFile, 'utf8'),
      '--playbook',
      playbook,
      '--extra-vars',
      `REGISTRY=${env.registry.url} DOCKER_TAG=${tag} DOCKER_USERNAME=${env.registry.username}`,
      '--extra-vars',
      JSON.stringify({ default_container_name: `${prefix}-app`, base_port: basePort }),
      '--secret-extra-vars-file',
      join(dir, 'secret-extra-vars'),
    ],
    { env: { ...process.env, DYCE_SSH_PRIVATE_KEY: readFileSync(env.sshKey, 'utf8') } },
  );
}

const language = join(root, 'test/fixtures/playbooks/language/playbook.yml');
const languageHosts = join(dir, 'language-hosts');
writeFileSync(
  languageHosts,
  'h1 ansible_host=127.0.0.1 ansible_port=2222 ansible_user=root ansible_python_interpreter=/usr/bin/python3\n',
);

function ansibleLanguage(): Promise<string> {
  return run(['ansible-playbook', '-i', languageHosts, language, '--private-key', env.sshKey], {
    env: {
      ...process.env,
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_RETRY_FILES_ENABLED: '0',
      ANSIBLE_SSH_ARGS: `-o UserKnownHostsFile=${env.knownHostsFile} -o StrictHostKeyChecking=yes -o ControlMaster=auto -o ControlPersist=60s`,
    },
  });
}

function dyceLanguage(): Promise<string> {
  return run(
    [
      process.execPath,
      join(root, 'build/cli.js'),
      'play',
      '-i',
      languageHosts,
      language,
      '--known-hosts-file',
      env.knownHostsFile,
    ],
    { env: { ...process.env, DYCE_SSH_PRIVATE_KEY: readFileSync(env.sshKey, 'utf8') } },
  );
}

const playbook = await setup();
const t = {
  aFirst: [] as number[],
  aNoop: [] as number[],
  dFirst: [] as number[],
  dNoop: [] as number[],
  deployNoop: [] as number[],
  aLang: [] as number[],
  dLang: [] as number[],
};
try {
  for (let i = 0; i < rounds; i++) {
    await reset();
    t.aFirst.push(await timeIt(() => ansible(playbook)));
    t.aNoop.push(await timeIt(() => ansible(playbook)));
    await reset();
    t.dFirst.push(await timeIt(() => dyce(playbook)));
    const out = await dyce(playbook).then((o) => o);
    if (!/changed=0\s/.test(out)) throw new Error(`the dyce no-op run changed something:\n${out}`);
    t.dNoop.push(await timeIt(() => dyce(playbook)));
    t.deployNoop.push(await timeIt(() => dyceDeploy(playbook)));
    t.aLang.push(await timeIt(() => ansibleLanguage()));
    t.dLang.push(await timeIt(() => dyceLanguage()));
    console.log(
      `round ${i + 1}: ansible ${fmtMs(t.aFirst[i]!)} / ${fmtMs(t.aNoop[i]!)}, dyce ${fmtMs(t.dFirst[i]!)} / ${fmtMs(t.dNoop[i]!)}, dyce deploy --playbook no-op ${fmtMs(t.deployNoop[i]!)}`,
    );
  }
} finally {
  await reset();
}
console.log(row('ansible-playbook, first run', t.aFirst));
console.log(row('dyce play, first run', t.dFirst));
console.log(row('ansible-playbook, no-op run', t.aNoop));
console.log(row('dyce play, no-op run', t.dNoop));
console.log(row('dyce deploy --playbook, no-op run', t.deployNoop));
console.log(row('ansible-playbook, blocks + handlers + role', t.aLang));
console.log(row('dyce play, blocks + handlers + role', t.dLang));
const ratios = (a: number[], b: number[]) => a.map((x, i) => x / b[i]!);
console.log(ratioRow('first run: ansible / dyce', ratios(t.aFirst, t.dFirst)));
console.log(ratioRow('no-op run: ansible / dyce', ratios(t.aNoop, t.dNoop), '≥ 10×'));
console.log(ratioRow('no-op run: ansible / dyce deploy --playbook', ratios(t.aNoop, t.deployNoop), '≥ 10×'));
console.log(ratioRow('blocks + handlers + role: ansible / dyce', ratios(t.aLang, t.dLang)));
if (median(ratios(t.aNoop, t.dNoop)) < 10) console.log('(below the 10× goal on this run)');
