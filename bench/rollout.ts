/**
 * Rollout bench on the lab's vps1, in one run, under the same load through the host's nginx (~200 requests per
 * second, each on a new connection, 10% POST /echo, 10% GET /sleep?ms=1500, the rest GET /version):
 *
 * - stop-and-recreate of 4 replicas, one after the other (what Ansible's docker_container does, and Dyce without a
 *   proxy): each replica is stopped, removed and started again on its port while nginx keeps routing to it;
 * - Dyce's rolling replacement behind nginx (proxy: nginx) of the same 4 replicas.
 *
 * Prints both failure counts and both durations, their ratio, and the rollout's overhead over the sum of its
 * health-gate waits. Dyce runs in-process (what the action does after Node has started).
 */
import { readFileSync } from 'node:fs';
import { nginxLayout, sitePath, upstreamPath } from '../src/commands/nginx.js';
import { deployRules, deploySpec } from '../src/config/actions/deploy.js';
import { parseInputs } from '../src/config/input-spec.js';
import { type DeployResult, runDeploy } from '../src/deploy/engine.js';
import { RecordingReporter } from '../src/github/reporter.js';
import { readLabEnv } from '../src/lab/env.js';
import { runLocal } from '../src/remote/local.js';
import { describeLoad, type LoadResult, startLoad } from '../test/support/load.js';
import { fmtMs } from './support.js';

const env = readLabEnv();
const h = env.hosts[0]!;
const APP = 'bench-rollout-app';
const SERVER = `${APP}.lab.test`;
const layout = nginxLayout(h.nginx.prefix);
// The load; lower it (DYCE_ROLLOUT_RATE=100) on a machine where the busybox sample app cannot keep up.
const RATE = Number(process.env.DYCE_ROLLOUT_RATE ?? 200);

function inputs(tag: string, proxy: 'none' | 'nginx') {
  return parseInputs(
    deploySpec,
    {
      hosts: `${h.name} ansible_host=${h.address} ansible_port=${h.sshPort} ansible_user=root dyce_state_dir=${h.stateDir} dyce_nginx_prefix=${h.nginx.prefix}`,
      'known-hosts': h.knownHosts,
      'ssh-private-key': readFileSync(env.sshKey, 'utf8'),
      image: `${env.sampleApp.image}:${tag}`,
      'registry-username': env.registry.username,
      'registry-password': env.registry.password,
      name: APP,
      replicas: '4',
      port: String(env.sampleApp.port),
      // Below the ephemeral port range, so that no client socket holds a replica's port.
      'host-port': '22400',
      // Melton's shape (and the rollout test's): host networking, each replica told its port through PORT. With the
      // lab's bridge, Docker's userland proxy stalls connections in flight whenever a container starts or stops.
      'network-mode': 'host',
      proxy,
      'nginx-server-name': proxy === 'nginx' ? SERVER : '',
      'nginx-http-listen': `127.0.0.1:${h.nginx.httpPort}`,
      'health-interval': '100ms',
      'drain-timeout': '60s',
    },
    deployRules,
  );
}

async function deploy(tag: string, proxy: 'none' | 'nginx'): Promise<DeployResult> {
  const r = await runDeploy(inputs(tag, proxy), new RecordingReporter());
  if (!r.hosts[0] || r.hosts[0].error) throw new Error(`dyce deploy failed: ${r.hosts[0]?.error}`);
  return r;
}

async function underLoad(
  fn: () => Promise<DeployResult>,
): Promise<{ result: DeployResult; ms: number; load: LoadResult }> {
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

async function clean(): Promise<void> {
  const ids = (
    await runLocal(['docker', 'ps', '-aq', '--filter', `name=${APP}`], {
      env: { ...process.env, DOCKER_HOST: h.dockerHost },
    })
  ).stdout
    .trim()
    .split('\n')
    .filter(Boolean);
  if (ids.length)
    await runLocal(['docker', 'rm', '-f', ...ids], { env: { ...process.env, DOCKER_HOST: h.dockerHost } });
  await runLocal(['rm', '-f', sitePath(layout, APP), upstreamPath(layout, APP)]);
  await runLocal(['nginx', '-s', 'reload', '-p', `${layout.prefix}/`, '-c', layout.conf]);
}

try {
  await clean();
  // v1 behind nginx: the site and the upstream to the replicas' first ports.
  await deploy('v1', 'nginx');
  // Stop-and-recreate: replicas replaced in place, one after the other, nginx still routing to each.
  const recreate = await underLoad(() => deploy('v2', 'none'));
  // Back to v1 in place (no load), then the rolling replacement to v2.
  await deploy('v1', 'none');
  const rollout = await underLoad(() => deploy('v2', 'nginx'));

  const gates = rollout.result.hosts[0]!.steps.filter((s) => s.description.startsWith('health gate')).reduce(
    (sum, s) => sum + s.ms,
    0,
  );
  console.log(`load: ${RATE} requests/s through nginx, each on a new connection`);
  console.log(
    `stop-and-recreate (one at a time):   ${fmtMs(recreate.ms).padStart(9)}   ${describeLoad(recreate.load).slice(0, 160)}`,
  );
  console.log(
    `dyce rollout behind nginx:           ${fmtMs(rollout.ms).padStart(9)}   ${describeLoad(rollout.load).slice(0, 160)}`,
  );
  console.log(
    `failed requests: stop-and-recreate ${recreate.load.failed} of ${recreate.load.sent}, rollout ${rollout.load.failed} of ${rollout.load.sent} (goal 0)`,
  );
  console.log(`duration ratio stop-and-recreate / rollout: ${(recreate.ms / rollout.ms).toFixed(2)}× (goal >= 5×)`);
  for (const s of rollout.result.hosts[0]!.steps)
    console.log(`  rollout step ${fmtMs(s.ms).padStart(9)}  ${s.description}`);
  console.log(
    `rollout overhead over its health-gate waits: ${fmtMs(rollout.ms - gates)} (gates ${fmtMs(gates)}, total ${fmtMs(rollout.ms)})`,
  );
} finally {
  await clean();
}
