import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import type { LabEnv, LabHost } from '../../src/lab/env.js';
import { runLocal } from '../../src/remote/local.js';
import { DOCKER_BIN, hostDocker, writeTemp } from './lab.js';

/** The Melton playbook and inventory, copied unchanged from the reference workload. */
export const MELTON_DIR = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/playbooks/melton');
export const MELTON_PLAYBOOK = join(MELTON_DIR, 'playbook.yml');
/** `indenwolken ansible_host=127.0.0.1 ansible_port=2222`, root: the lab's vps1. */
export const MELTON_HOSTS = join(MELTON_DIR, 'hosts');

/** The image the playbook pulls, `<registry>/meltondevops/melton-app-server`, in the lab registry. */
export function meltonRepo(env: LabEnv): string {
  return `${env.registry.url}/meltondevops/melton-app-server`;
}

/** Pushes the lab's sample app v1 as the Melton image with this tag (a tag per test file: no collisions). */
export async function pushMeltonImage(env: LabEnv, tag: string): Promise<void> {
  const runner = { ...process.env, DOCKER_CONFIG: env.runner.dockerConfig, DOCKER_HOST: env.runner.dockerHost };
  const src = `${env.sampleApp.image}:v1`;
  let r = await runLocal([DOCKER_BIN, 'image', 'inspect', src], { env: runner });
  if (r.code !== 0) await runLocal([DOCKER_BIN, 'pull', '-q', src], { env: runner });
  for (const argv of [
    ['tag', src, `${meltonRepo(env)}:${tag}`],
    ['push', '-q', `${meltonRepo(env)}:${tag}`],
  ]) {
    r = await runLocal([DOCKER_BIN, ...argv], { env: runner });
    if (r.code !== 0) throw new Error(`docker ${argv.join(' ')}: ${r.stderr}`);
  }
}

/**
 * The Melton playbook file to run on a lab host: the reference file itself when the host has the Loki
 * log-driver plugin, else a copy without `log_driver`/`log_options` (Docker refuses the driver without it).
 */
export async function meltonPlaybookFor(h: LabHost, dir: string): Promise<{ path: string; unchanged: boolean }> {
  const plugins = await hostDocker(h, ['plugin', 'ls', '--format', '{{.Name}} {{.Enabled}}']);
  if (/^loki(:\S+)? true$/m.test(plugins.stdout)) return { path: MELTON_PLAYBOOK, unchanged: true };
  const doc = parse(readFileSync(MELTON_PLAYBOOK, 'utf8')) as { tasks: Record<string, Record<string, unknown>>[] }[];
  const c = doc[0]!.tasks.find((t) => t.docker_container)!.docker_container!;
  delete c.log_driver;
  delete c.log_options;
  process.stderr.write(`[melton] no loki plugin on ${h.name}: running the Melton playbook without its log options\n`);
  return { path: writeTemp(dir, 'melton-playbook.yml', stringify(doc), 0o644), unchanged: false };
}
