/**
 * Many-host bench on the lab's three hosts, side by side in one run:
 *
 * - first deploy (2 replicas per host, containers removed before each run, the image already on the hosts) with
 *   `parallel: 5` against `parallel: 1`: the fan-out should bring three hosts down to about one host's time
 *   (goal ≤ 0.5×);
 * - no-op rerun: Dyce against `ansible-playbook` with its default forks (5) doing the same job with
 *   community.docker (login, pull, two containers per host) on the same three hosts (goal ≥ 10× faster).
 *   Dyce runs in-process (what the action does once Node is up) and as the CLI bundle (a process per run, like
 *   ansible-playbook).
 *
 * The lab's hosts share this machine's CPUs: where the work is CPU-bound (docker run), three hosts at once
 * cannot take one host's time here, as they would on three machines; the no-op (round trips) shows the fan-out's
 * own effect.
 *
 * Host keys are verified on both sides. Every host has its own ports (dyce_port_base / base_port). Both tools log
 * in as the lab's `deploy` user and reach docker through sudo, as on a VPS where root cannot log in.
 *
 *   npm run bench -- hosts            (DYCE_BENCH_ROUNDS=3 by default)
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deployRules, deploySpec } from '../src/config/actions/deploy.js';
import { parseInputs } from '../src/config/input-spec.js';
import { runDeploy } from '../src/deploy/entry.js';
import { RecordingReporter } from '../src/github/reporter.js';
import { readLabEnv } from '../src/lab/env.js';
import { labDockerBin } from '../src/lab/lab.js';
import { runLocal } from '../src/remote/local.js';
import { ansibleInventory, ansiblePlaybook, median, ratioRow, row, run, timeIt, writeAnsibleVars } from './support.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const env = readLabEnv();
const hosts = env.hosts.slice(0, 3);
if (hosts.length < 3) throw new Error('bench/hosts needs the lab with 3 hosts (dyce lab up --hosts 3)');
const rounds = Number(process.env.DYCE_BENCH_ROUNDS ?? '3');
const REPLICAS = 2;
const image = `${env.sampleApp.image}:v1`;
const dir = mkdtempSync(join(tmpdir(), 'dyce-bench-hosts-'));
const DYCE = `bench-hosts-${process.pid}`;
const ANS = `bench-hosts-ans-${process.pid}`;
const dycePort = 25000 + (process.pid % 100) * 4;
const ansPort = dycePort + 400;
const stateDir = (name: string) => join(dir, 'state', name);

// ---- Dyce ----
const hostsIni = hosts
  .map(
    (h) =>
      `${h.name} ansible_host=${h.address} ansible_port=${h.sshPort} ansible_user=deploy dyce_state_dir=${stateDir(h.name)} dyce_port_base=${h.portBase}`,
  )
  .join('\n');
const raw = {
  hosts: hostsIni,
  'known-hosts': hosts.map((h) => h.knownHosts).join('\n'),
  'ssh-private-key': readFileSync(env.sshKey, 'utf8'),
  image,
  'registry-username': env.registry.username,
  'registry-password': env.registry.password,
  name: DYCE,
  replicas: String(REPLICAS),
  port: String(env.sampleApp.port),
  'host-port': String(dycePort),
};
const dyce = async (parallel: number) => {
  const r = await runDeploy(
    parseInputs(deploySpec, { ...raw, parallel: String(parallel) }, deployRules),
    new RecordingReporter(),
  );
  if (r.failedHosts.length) throw new Error(`dyce deploy failed on ${r.failedHosts.join(', ')}`);
  return r;
};
const dyceCli = () =>
  run(
    [
      process.execPath,
      join(root, 'build/cli.js'),
      'deploy',
      ...Object.entries(raw)
        .filter(([k]) => k !== 'ssh-private-key' && k !== 'registry-password')
        .flatMap(([k, v]) => [`--${k}`, v]),
    ],
    {
      env: {
        ...process.env,
        DYCE_SSH_PRIVATE_KEY: raw['ssh-private-key'],
        DYCE_REGISTRY_PASSWORD: raw['registry-password'],
      },
    },
  );

// ---- Ansible: the same job with community.docker, default forks ----
writeFileSync(
  join(dir, 'hosts'),
  ansibleInventory(env, hosts, { user: 'deploy', hostVars: (h) => `base_port=${ansPort + h.portBase}` }),
);
writeFileSync(
  join(dir, 'playbook.yml'),
  `- hosts: all
  become: true
  gather_facts: false
  tasks:
    - name: Log into the private registry
      community.docker.docker_login:
        registry_url: "{{ REGISTRY }}"
        username: "{{ DOCKER_USERNAME }}"
        password: "{{ DOCKER_PASSWORD }}"
    - name: Pull the image
      community.docker.docker_image:
        name: "${image}"
        source: pull
    - name: Run the replicas
      community.docker.docker_container:
        name: "${ANS}{{ item }}"
        image: "${image}"
        published_ports:
          - "127.0.0.1:{{ base_port | int + item | int - 1 }}:${env.sampleApp.port}"
        state: started
        restart_policy: unless-stopped
      with_sequence: count=${REPLICAS}
`,
);
const vars = writeAnsibleVars(join(dir, 'vars.json'), {
  REGISTRY: env.registry.url,
  DOCKER_USERNAME: env.registry.username,
  DOCKER_PASSWORD: env.registry.password,
});
const ansible = () => ansiblePlaybook(join(dir, 'hosts'), join(dir, 'playbook.yml'), ['--extra-vars', `@${vars}`]);

async function clean(prefix: string): Promise<void> {
  const names = Array.from({ length: REPLICAS }, (_, i) => `${prefix}${i + 1}`);
  await Promise.all(
    hosts.map((h) =>
      runLocal([labDockerBin(), 'rm', '-f', ...names], { env: { ...process.env, DOCKER_HOST: h.dockerHost } }),
    ),
  );
}

await run(['npx', 'tsx', join(root, 'scripts/build.ts'), '--cli']);
const t = {
  p5: [] as number[],
  p1: [] as number[],
  ans: [] as number[],
  dNoop: [] as number[],
  dNoop1: [] as number[],
  cliNoop: [] as number[],
};
try {
  // Warm-up: the image on every host, both apps in place.
  await dyce(5);
  await ansible();
  for (let i = 0; i < rounds; i++) {
    await clean(DYCE);
    t.p5.push(await timeIt(() => dyce(5)));
    await clean(DYCE);
    t.p1.push(await timeIt(() => dyce(1)));
    t.ans.push(await timeIt(ansible));
    const noop = await dyce(5);
    if (noop.changed) throw new Error('the dyce no-op rerun changed something');
    t.dNoop.push(await timeIt(() => dyce(5)));
    t.dNoop1.push(await timeIt(() => dyce(1)));
    t.cliNoop.push(await timeIt(dyceCli));
  }
} finally {
  await clean(DYCE);
  await clean(ANS);
  rmSync(dir, { recursive: true, force: true });
}
const ratios = (a: number[], b: number[]) => a.map((x, i) => x / b[i]!);
console.log(`hosts bench (lab ${hosts.map((h) => h.name).join(', ')}, ${REPLICAS} replicas of ${image} per host)`);
console.log(row('dyce first deploy, parallel 5', t.p5));
console.log(row('dyce first deploy, parallel 1', t.p1));
console.log(row('ansible-playbook no-op (forks 5)', t.ans));
console.log(row('dyce no-op, in-process', t.dNoop));
console.log(row('dyce no-op, in-process, parallel 1', t.dNoop1));
console.log(row('dyce no-op, CLI bundle (a process)', t.cliNoop));
console.log(ratioRow('first deploy: parallel 5 / parallel 1', ratios(t.p5, t.p1), '≤ 0.6× (#14 row 6)'));
console.log(ratioRow('no-op: parallel 5 / parallel 1', ratios(t.dNoop, t.dNoop1)));
console.log(ratioRow('no-op: ansible / dyce in-process', ratios(t.ans, t.dNoop), '≥ 10×'));
console.log(ratioRow('no-op: ansible / dyce CLI', ratios(t.ans, t.cliNoop), '≥ 15× (#14 row 5)'));
if (median(ratios(t.p5, t.p1)) > 0.5) console.log('(parallel 5 above the 0.5× goal on this run)');
if (median(ratios(t.ans, t.dNoop)) < 10) console.log('(no-op below the 10× goal on this run)');
