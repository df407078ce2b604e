import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { host, hostDocker, lab, tempDir, uniqueName } from '../support/lab.js';
import { MELTON_HOSTS, meltonPlaybookFor, meltonRepo, pushMeltonImage } from '../support/melton.js';
import { ProcSampler } from '../support/proc-sampler.js';
import { type CopiedAction, copyAction, runAction } from './runner-protocol.js';

/**
 * The committed deploy bundle with `playbook:` (Node 24, the runner's file commands), as a workflow uses it:
 * the Melton playbook and its `hosts` checked out in the workspace, the registry password in
 * `secret-extra-vars` (an INPUT_* variable, never argv), masked before anything is printed.
 */
const env = lab();
const vps1 = host(env, 'vps1');
const TAG = uniqueName('t9b');
const prefix = uniqueName('t9bp');
const base = 26000 + Math.floor(Math.random() * 2000);
let action: CopiedAction;

const inputs = (over: Record<string, string> = {}) => ({
  inventory: 'deploy/hosts',
  playbook: 'deploy/playbook.yml',
  'known-hosts': vps1.knownHosts,
  'ssh-private-key': readFileSync(env.sshKey, 'utf8'),
  'extra-vars': [
    `REGISTRY=${env.registry.url} DOCKER_TAG=${TAG}`,
    `DOCKER_USERNAME=${env.registry.username}`,
    JSON.stringify({ default_container_name: `${prefix}-app`, base_port: base }),
  ].join('\n'),
  'secret-extra-vars': `DOCKER_PASSWORD=${env.registry.password}`,
  ...over,
});

beforeAll(async () => {
  action = copyAction('deploy');
  await pushMeltonImage(env, TAG);
  // The workspace holds the repository's files: the playbook (unchanged when vps1 has the loki plugin) and hosts.
  mkdirSync(join(action.workspace, 'deploy'));
  copyFileSync(
    (await meltonPlaybookFor(vps1, tempDir('dyce-bundle-pb-'))).path,
    join(action.workspace, 'deploy/playbook.yml'),
  );
  copyFileSync(MELTON_HOSTS, join(action.workspace, 'deploy/hosts'));
}, 120_000);

afterAll(async () => {
  const ids = (await hostDocker(vps1, ['ps', '-aq', '--filter', `name=^${prefix}-`])).stdout
    .split('\n')
    .filter(Boolean);
  if (ids.length) await hostDocker(vps1, ['rm', '-f', ...ids]);
  await hostDocker(vps1, ['rmi', '--force', `${meltonRepo(env)}:${TAG}`]);
  action.cleanup();
});

describe('deploy bundle with playbook: under Node 24 and the runner protocol', () => {
  it('declares the playbook inputs; image and name are no longer required', () => {
    const declared = action.yml.inputs ?? {};
    expect(Object.keys(declared)).toEqual(expect.arrayContaining(['playbook', 'extra-vars', 'secret-extra-vars']));
    expect(declared.image?.required).toBeFalsy();
    expect(declared.name?.required).toBeFalsy();
  });

  it('runs the Melton playbook: outputs and recap, idempotent, the password masked first and never in argv', async () => {
    const sampler = new ProcSampler([env.registry.password]);
    await sampler.start();
    await sampler.proveItself(0);
    const { main, post } = await runAction(action, { inputs: inputs(), timeoutMs: 180_000 });
    const { main: again } = await runAction(action, { inputs: inputs(), timeoutMs: 180_000 });
    const report = await sampler.stop();

    expect(main.code, main.stdout.slice(-3000)).toBe(0);
    expect(main.outputs).toMatchObject({ success: 'true', changed: 'true', 'failed-hosts': '' });
    expect(JSON.parse(main.outputs.recap!).indenwolken).toMatchObject({ ok: 4, unreachable: 0, failed: 0 });
    expect(main.stdout).toContain('::group::playbook deploy/playbook.yml');
    expect(main.stdout).toMatch(/TASK \[Create default containers\][\s\S]*changed: \[indenwolken\] => \(item=2\)/);
    expect(main.summary).toContain('### Dyce playbook: deploy/playbook.yml');
    expect(main.summary).toMatch(/\| indenwolken \| 4 \| [12] \| 0 \| 0 \| 0 \| 0 \|/);
    expect(post!.code).toBe(0);
    const env1 = await hostDocker(vps1, ['inspect', '--format', '{{json .Config.Env}}', `${prefix}-app2`]);
    expect(env1.stdout).toContain(`PORT=${base + 2}`);

    expect(again.code, again.stdout.slice(-3000)).toBe(0);
    expect(again.outputs).toMatchObject({ success: 'true', changed: 'false' });

    expect(report.hits).toEqual([]);
    for (const step of [main, again]) {
      const lines = step.stdout.split('\n');
      const leaks = lines.filter((l) => l.includes(env.registry.password));
      expect(leaks.length).toBeGreaterThan(0);
      expect(leaks.every((l) => l.startsWith('::add-mask::'))).toBe(true);
      expect(lines.findIndex((l) => l.includes(env.registry.password))).toBeLessThan(
        lines.findIndex((l) => !l.startsWith('::add-mask::') && l !== ''),
      );
      expect(step.summary + step.stderr).not.toContain(env.registry.password);
    }
  }, 400_000);

  it('a playbook refused before any host is touched fails the step with file:line and the outputs written', async () => {
    const { main } = await runAction(action, {
      inputs: inputs({ 'extra-vars': `REGISTRY=${env.registry.url}` }),
      timeoutMs: 60_000,
    });
    expect(main.code).not.toBe(0);
    expect(main.outputs).toMatchObject({ success: 'false', changed: 'false', recap: '{}' });
    expect(main.errors.join('\n')).toMatch(/deploy\/playbook\.yml:\d+: .*'DOCKER_TAG' is undefined/);
    expect(main.stdout).not.toContain('TASK [');
  }, 120_000);
});
