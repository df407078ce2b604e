/**
 * deploy's source (not the bundle) under @github/local-action, which stubs @actions/core and runs the exported
 * `run()` of actions/deploy/run.ts: a real one-replica deploy to a lab host, host key verified, the registry password
 * masked. Where the tool comes from: ./local-action.ts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hostDocker, lab, uniqueName } from '../support/lab.js';
import { localActionDir, runLocalAction } from './local-action.js';

const pkg = localActionDir();

describe.skipIf(!pkg)('deploy source under @github/local-action', () => {
  const env = lab();
  const h = env.hosts[1] ?? env.hosts[0]!;
  const name = uniqueName('la-deploy');
  const dir = mkdtempSync(join(tmpdir(), 'dyce-local-action-deploy-'));
  afterAll(async () => {
    await hostDocker(h, ['rm', '-f', `${name}1`]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs actions/deploy/run.ts with inputs from a dotenv file, and deploys', async () => {
    const summary = join(dir, 'summary.md');
    writeFileSync(summary, '');
    const dotenv = join(dir, 'action.env');
    writeFileSync(
      dotenv,
      [
        `GITHUB_STEP_SUMMARY=${summary}`,
        `INPUT_HOSTS=${h.name} ansible_host=${h.address} ansible_port=${h.sshPort} ansible_user=root ansible_ssh_private_key_file=${env.sshKey} dyce_state_dir=${h.stateDir} dyce_port_base=${h.portBase}`,
        `INPUT_KNOWN-HOSTS=${h.knownHosts}`,
        `INPUT_IMAGE=${env.sampleApp.image}:v1`,
        `INPUT_REGISTRY-USERNAME=${env.registry.username}`,
        `INPUT_REGISTRY-PASSWORD=${env.registry.password}`,
        `INPUT_NAME=${name}`,
        'INPUT_REPLICAS=1',
        'INPUT_PORT=8000',
        'INPUT_HOST-PORT=8760',
        '',
      ].join('\n'),
    );
    const out = await runLocalAction(pkg!, 'deploy', dotenv, 150_000);
    expect(out).toContain('::set-output name=success::true');
    expect(out).toContain('::set-output name=version::v1');
    expect(out).not.toContain(env.registry.password);
    const inspect = await hostDocker(h, [
      'inspect',
      '--format',
      '{{.Config.Image}} {{index .Config.Labels "dyce.app"}}',
      `${name}1`,
    ]);
    expect(inspect.stdout.trim()).toBe(`${env.sampleApp.image}:v1 ${name}`);
    expect(readFileSync(summary, 'utf8')).toContain(name);
  }, 180_000);
});
