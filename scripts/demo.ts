/**
 * The README's main job on the embedded default: bring up the lab (a disposable VPS on this machine), then run the
 * whole pipeline against it through the `dyce` CLI, the way a user would:
 *   build-push (tag v1.4.2 -> image tags, pushed to the private registry)
 *   -> deploy (4 replicas over SSH as the non-root `deploy` user, verified host key, runtime secret on stdin, Loki logs)
 *   -> deploy again (a no-op: nothing changes, and it says so)
 *   -> probe (every replica, blackbox http_2xx semantics): the pipeline ends by verifying the release.
 * The first failing stage stops the demo with its exit code.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readLabEnv } from '../src/lab/env.js';
import { writeSampleAppContext } from '../src/lab/lab.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const started = Date.now();
const say = (m: string) => process.stdout.write(`\n\x1b[1m${m}\x1b[0m\n`);

function dyce(args: string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
  process.stdout.write(`$ dyce ${args.map((a) => (/[\s'"]/.test(a) ? `'${a}'` : a)).join(' ')}\n`);
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [join(root, 'bin/dyce.js'), ...args], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, ...env },
    });
    c.on('close', (code) =>
      code === 0 ? resolve() : reject(Object.assign(new Error(`dyce ${args[0]} exited ${code}`), { code })),
    );
  });
}

try {
  say('1. lab: a disposable VPS on this machine (its own dockerd, sshd, nginx), a private registry, the Loki parts');
  await dyce(['lab', 'up']);
  const env = readLabEnv();
  const vps = env.hosts[0]!;
  const work = mkdtempSync(join(tmpdir(), 'dyce-demo-'));
  const app = join(work, 'app');
  writeSampleAppContext(app);
  const image = `${env.registry.url}/meltondevops/melton-app-server`;

  say('2. build-push: the release tag v1.4.2 becomes the image tags; the image goes to the private registry');
  await dyce([
    'build',
    app,
    '--image',
    image,
    '--registry-username',
    env.registry.username,
    '--registry-password-file',
    env.registry.passwordFile,
    '--ref',
    'refs/tags/v1.4.2',
    '--build-args',
    'APP_VERSION=v1.4.2',
  ]);

  say(
    `3. deploy: 4 replicas on ${vps.name} over SSH as the non-root user deploy, host key pinned, secrets on stdin only`,
  );
  const secretEnv = join(work, 'secret-env');
  writeFileSync(secretEnv, 'DJANGO_SECRET_KEY=demo-not-a-real-secret\n', { mode: 0o600 });
  const hosts = `${vps.name} ansible_host=${vps.address} ansible_port=${vps.sshPort} ansible_user=deploy dyce_state_dir=${vps.stateDir} dyce_port_base=${vps.portBase}`;
  const deployArgs = [
    '--hosts',
    hosts,
    '--known-hosts',
    vps.knownHosts,
    '--ssh-private-key-file',
    env.sshKey,
    '--image',
    `${image}:v1.4.2`,
    '--registry-username',
    env.registry.username,
    '--registry-password-file',
    env.registry.passwordFile,
    '--secret-env-file',
    secretEnv,
    '--name',
    'melton-app',
    '--replicas',
    '4',
    '--port',
    '8000',
    '--host-port',
    '8001',
    // Melton's Loki logging; Dyce merges its defaults that keep containers stoppable when Loki is down.
    '--log-driver',
    'loki',
    '--log-options',
    `loki-url=${env.loki?.pushUrl ?? 'http://127.0.0.1:3100/loki/api/v1/push'}\nloki-external-labels=tag=melton`,
  ];
  await dyce(['deploy', ...deployArgs]);

  say('4. deploy again: nothing changed, so nothing is touched');
  await dyce(['deploy', ...deployArgs]);

  say(
    '5. probe: the release is verified where it runs: every replica answers /version with v1.4.2 (blackbox http_2xx)',
  );
  const urls = [0, 1, 2, 3].map((i) => `http://127.0.0.1:${vps.portBase + 8001 + i}/version`);
  await dyce([
    'probe',
    ...urls,
    '--attempts',
    '10',
    '--interval',
    '500ms',
    '--fail-if-body-not-matches',
    '^v1\\.4\\.2$',
  ]);

  say(`demo done in ${((Date.now() - started) / 1000).toFixed(1)}s`);
} catch (e) {
  process.stderr.write(`\ndemo stopped: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = (e as { code?: number }).code ?? 1;
}
