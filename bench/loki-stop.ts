/**
 * `npx tsx bench/loki-stop.ts [--host vps2] [--cap 60]`: how long `docker stop` takes when Loki is hung, for a
 * container started with Melton's log options and one started with Dyce's defaults, side by side in the same run.
 * Needs the lab (`dyce lab up`). Uses the plugin from the lab registry under a temporary alias, so the host's own
 * `loki` plugin is left alone, and a receiver started here.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readLabEnv } from '../src/lab/env.js';
import { labDockerBin } from '../src/lab/lab.js';
import { type DockerTarget, ensureLokiPlugin, publishLokiPlugin, removeLokiPlugin } from '../src/lab/loki/plugin.js';
import { runLokiReceiver } from '../src/lab/loki/receiver.js';
import { ensureBusyboxImage, formatStopTimes, measureStopTimes } from '../src/lab/loki/stop-demo.js';
import { LOKI_LOG_DEFAULTS } from '../src/plan/desired.js';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const env = readLabEnv();
const host = env.hosts.find((h) => h.name === (flag('--host') ?? 'vps2')) ?? env.hosts[0]!;
const alias = `loki-bench-${process.pid}`;
const ref = `${env.registry.url}/dyce/loki-docker-driver:bench`;
const target: DockerTarget = { bin: labDockerBin(), host: host.dockerHost, config: env.runner.dockerConfig };
const work = mkdtempSync(join(tmpdir(), 'dyce-loki-bench-'));
const receiver = await runLokiReceiver({ port: 0 });
try {
  await publishLokiPlugin({
    docker: { bin: labDockerBin(), host: env.runner.dockerHost, config: env.runner.dockerConfig },
    ref,
    workDir: join(work, 'plugin'),
  });
  await ensureLokiPlugin({ docker: target, ref, alias });
  const image = 'dyce-lab/loki-logger:busybox';
  await ensureBusyboxImage(target, image);
  process.stdout.write(
    `host ${host.name}: Melton's options vs Dyce's defaults (${JSON.stringify(LOKI_LOG_DEFAULTS)})\n`,
  );
  const times = await measureStopTimes({
    docker: target,
    driver: alias,
    image,
    receiverUrl: receiver.url,
    dyceOpts: LOKI_LOG_DEFAULTS,
    capSeconds: Number(flag('--cap') ?? '60'),
    log: (m) => process.stdout.write(`  ${m}\n`),
  });
  process.stdout.write(`${formatStopTimes(times)}\n`);
} finally {
  await removeLokiPlugin({ docker: target, alias });
  await receiver.close();
  rmSync(work, { recursive: true, force: true });
}
