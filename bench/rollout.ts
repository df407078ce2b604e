/**
 * Rollout bench on the lab's vps1, in one run, under the same load through the host's nginx (~200 requests per
 * second, each on a new connection, 10% POST /echo, 10% GET /sleep?ms=1500, the rest GET /version):
 *
 * - ansible-playbook (community.docker's docker_container, the Melton playbook's task) replacing the 4 replicas with
 *   a new image: each container is stopped, removed and created again on its port, one after the other, while nginx
 *   keeps routing to it (skipped when ansible-playbook is not installed);
 * - the same stop-and-recreate done by Dyce without a proxy (proxy: none), to separate Ansible's own overhead;
 * - Dyce's rolling replacement behind nginx (proxy: nginx) of the same 4 replicas.
 *
 * Prints both failure counts and both durations, their ratio, and the rollout's overhead over the sum of its
 * health-gate waits. Dyce runs in-process (what the action does after Node has started).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deployRules, deploySpec } from '../src/config/actions/deploy.js';
import { parseInputs } from '../src/config/input-spec.js';
import type { DeployResult } from '../src/deploy/engine.js';
import { runDeploy } from '../src/deploy/entry.js';
import { RecordingReporter } from '../src/github/reporter.js';
import { readLabEnv } from '../src/lab/env.js';
import { runLocal } from '../src/remote/local.js';
import { labHostLine, removeNginxApp } from '../test/support/dyce-cli.js';
import { describeLoad, type LoadResult, startLoad } from '../test/support/load.js';
import { ansibleInventory, ansiblePlaybook, fmtMs, run } from './support.js';

const env = readLabEnv();
const h = env.hosts[0]!;
const APP = 'bench-rollout-app';
const SERVER = `${APP}.lab.test`;
// The load; lower it (DYCE_ROLLOUT_RATE=100) on a machine where the busybox sample app cannot keep up.
const RATE = Number(process.env.DYCE_ROLLOUT_RATE ?? 200);

function inputs(tag: string, proxy: 'none' | 'nginx', over: Record<string, string> = {}) {
  return parseInputs(
    deploySpec,
    {
      hosts: labHostLine(h),
      'known-hosts': h.knownHosts,
      'ssh-private-key': readFileSync(env.sshKey, 'utf8'),
      image: `${env.sampleApp.image}:${tag}`,
      'registry-username': env.registry.username,
      'registry-password': env.registry.password,
      name: APP,
      replicas: '4',
      port: String(env.sampleApp.port),
      // Below the ephemeral port range, so that no client socket holds a replica's port.
      'host-port': String(FIRST_PORT),
      // Melton's shape (and the rollout test's): host networking, each replica told its port through PORT. With the
      // lab's bridge, Docker's userland proxy stalls connections in flight whenever a container starts or stops.
      'network-mode': 'host',
      proxy,
      'nginx-server-name': proxy === 'nginx' ? SERVER : '',
      'nginx-http-listen': `127.0.0.1:${h.nginx.httpPort}`,
      'health-interval': '100ms',
      'drain-timeout': '60s',
      ...over,
    },
    deployRules,
  );
}

async function deploy(tag: string, proxy: 'none' | 'nginx', over: Record<string, string> = {}): Promise<DeployResult> {
  const r = await runDeploy(inputs(tag, proxy, over), new RecordingReporter());
  if (!r.hosts[0] || r.hosts[0].error) throw new Error(`dyce deploy failed: ${r.hosts[0]?.error}`);
  return r;
}

async function underLoad<T>(fn: () => Promise<T>): Promise<{ result: T; ms: number; load: LoadResult }> {
  const load = startLoad({
    port: h.nginx.httpPort,
    hostHeader: SERVER,
    rate: RATE,
    durationMs: 300_000,
    timeoutMs: 120_000,
  });
  await new Promise((r) => setTimeout(r, 1000));
  const t = performance.now();
  const result = await fn();
  const ms = performance.now() - t;
  await new Promise((r) => setTimeout(r, 1000));
  return { result, ms, load: await load.stop() };
}

const FIRST_PORT = 22400;
const dir = mkdtempSync(join(tmpdir(), 'dyce-bench-rollout-'));
const hasAnsible = (await runLocal(['sh', '-c', 'command -v ansible-playbook'])).code === 0;
writeFileSync(join(dir, 'hosts'), ansibleInventory(env, [h]));
// The Melton playbook's container task, on the replicas' names and ports (host networking, PORT per replica), so
// that the upstream Dyce wrote for v1 routes to the containers Ansible recreates.
writeFileSync(
  join(dir, 'playbook.yml'),
  `- hosts: all
  gather_facts: false
  tasks:
    - name: Create default containers
      community.docker.docker_container:
        name: "${APP}{{ item }}"
        image: "{{ IMAGE }}"
        network_mode: host
        env:
          PORT: "{{ ${FIRST_PORT - 1} + item | int }}"
        state: started
        restart_policy: unless-stopped
      with_sequence: count=4
`,
);

/** ansible-playbook replacing the replicas with the image TAG (already on the host). */
function ansible(tag: string): Promise<string> {
  return ansiblePlaybook(join(dir, 'hosts'), join(dir, 'playbook.yml'), [
    '--extra-vars',
    JSON.stringify({ IMAGE: `${env.sampleApp.image}:${tag}` }),
  ]);
}

const clean = () => removeNginxApp(h, APP);

try {
  const line = (label: string, ms: number, load: LoadResult) =>
    console.log(`${label.padEnd(44)} ${fmtMs(ms).padStart(9)}   ${describeLoad(load).slice(0, 150)}`);
  console.log(`load: ${RATE} requests/s through nginx, each on a new connection, during each replacement`);
  let ansibleRun: { ms: number; load: LoadResult } | undefined;
  if (hasAnsible) {
    await clean();
    // v2 on the host beforehand (the playbook has no registry login), then v1 behind nginx (site and upstream).
    await run(['docker', '--config', env.runner.dockerConfig, 'pull', '--quiet', `${env.sampleApp.image}:v2`], {
      env: { ...process.env, DOCKER_HOST: h.dockerHost },
    });
    await deploy('v1', 'nginx');
    ansibleRun = await underLoad(() => ansible('v2'));
    line('ansible docker_container (stop, rm, create)', ansibleRun.ms, ansibleRun.load);
  } else console.log('ansible-playbook not installed: its baseline is skipped');
  await clean();
  await deploy('v1', 'nginx');
  // Dyce without a proxy: the same in-place stop-and-recreate, one replica after the other.
  const recreate = await underLoad(() => deploy('v2', 'none'));
  line('dyce proxy none (stop, rm, run in place)', recreate.ms, recreate.load);
  // Back to v1 in place (no load), then the rolling replacement to v2.
  await deploy('v1', 'none');
  const rollout = await underLoad(() => deploy('v2', 'nginx'));
  line('dyce rollout behind nginx (proxy nginx)', rollout.ms, rollout.load);
  // The same rollout in one batch: the old replicas serve until the switch either way (they stop only at the end),
  // so a batch of 4 costs memory for 4 more containers, not capacity.
  // Back to v1 behind nginx (in place the upstream would still list the rollout's ports).
  await deploy('v1', 'nginx', { 'max-unavailable': '4' });
  const batch = await underLoad(() => deploy('v2', 'nginx', { 'max-unavailable': '4' }));
  line('dyce rollout, max-unavailable 4', batch.ms, batch.load);

  const steps = rollout.result.hosts[0]!.steps;
  const gates = steps.filter((s) => s.description.startsWith('health gate')).reduce((sum, s) => sum + s.ms, 0);
  if (ansibleRun)
    console.log(
      `ansible / dyce rollout: ${(ansibleRun.ms / rollout.ms).toFixed(2)}× (goal >= 5×); failed requests: ansible ${ansibleRun.load.failed} of ${ansibleRun.load.sent}, rollout ${rollout.load.failed} of ${rollout.load.sent} (goal 0)`,
    );
  if (ansibleRun)
    console.log(
      `ansible / dyce rollout max-unavailable 4: ${(ansibleRun.ms / batch.ms).toFixed(2)}×; failed requests: ${batch.load.failed} of ${batch.load.sent}`,
    );
  console.log(
    `dyce proxy none / dyce rollout: ${(recreate.ms / rollout.ms).toFixed(2)}×; failed requests: proxy none ${recreate.load.failed} of ${recreate.load.sent}, rollout ${rollout.load.failed} of ${rollout.load.sent}`,
  );
  for (const s of steps) console.log(`  rollout step ${fmtMs(s.ms).padStart(9)}  ${s.description}`);
  console.log(
    `rollout overhead over its health-gate waits: ${fmtMs(rollout.ms - gates)} (gates ${fmtMs(gates)}, total ${fmtMs(rollout.ms)}, ${(rollout.ms / Math.max(gates, 1)).toFixed(1)}× the gates)`,
  );
} finally {
  await clean();
}
