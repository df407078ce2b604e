import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLocal } from '../../src/remote/local.js';
import { type CliRun, runDyce } from '../support/dyce-cli.js';
import { host, hostDocker, lab, tempDir, uniqueName, writeTemp } from '../support/lab.js';
import { MELTON_HOSTS, meltonPlaybookFor, meltonRepo, pushMeltonImage } from '../support/melton.js';
import { ProcSampler } from '../support/proc-sampler.js';

/**
 * The Melton playbook, unchanged, through the deploy action's `playbook:` input as `dyce deploy --playbook`
 * runs it (the same entry the action's bundle calls; the bundle itself: test/bundle/deploy-playbook.test.ts),
 * with the reference `hosts` file as `inventory`. The registry password travels as a secret extra var from a
 * 0600 file, never in any argv.
 */
const env = lab();
const vps1 = host(env, 'vps1');
const TAG = uniqueName('t9p');
const dir = tempDir('dyce-deploy-pb-');
const prefixes: string[] = [];
let playbook = '';
let secretsFile = '';

/** `dyce deploy|plan` (the source) with ARGS; only the SSH key travels in the environment. */
const dyce = (args: string[], cmd: 'deploy' | 'plan' = 'deploy'): Promise<CliRun> =>
  runDyce(cmd, args, { DYCE_SSH_PRIVATE_KEY: readFileSync(env.sshKey, 'utf8') });

/** Deploy's flags for the Melton playbook: the reference inventory, vps1's pinned host key, per-test names. */
function flags(prefix: string, base: number, more: string[] = [], where = ['--inventory', MELTON_HOSTS]): string[] {
  return [
    ...where,
    '--known-hosts',
    vps1.knownHosts,
    '--playbook',
    playbook,
    '--extra-vars',
    `REGISTRY=${env.registry.url} DOCKER_TAG=${TAG} DOCKER_USERNAME=${env.registry.username}`,
    '--extra-vars',
    JSON.stringify({ default_container_name: `${prefix}-app`, base_port: base }),
    '--secret-extra-vars-file',
    secretsFile,
    ...more,
  ];
}

const port = () => 29000 + Math.floor(Math.random() * 3000);

async function removePrefixed(prefix: string): Promise<void> {
  const ids = await hostDocker(vps1, ['ps', '--all', '--quiet', '--filter', `name=^${prefix}-`]);
  const list = ids.stdout.split('\n').filter(Boolean);
  if (list.length) await hostDocker(vps1, ['rm', '--force', ...list]);
}

async function body(p: number): Promise<string> {
  let text = '';
  for (let i = 0; i < 50 && !text.includes('sample app'); i++) {
    text = (await runLocal(['curl', '-s', '--max-time', '1', `http://127.0.0.1:${p}/`])).stdout;
    if (!text.includes('sample app')) await new Promise((r) => setTimeout(r, 100));
  }
  return text;
}

beforeAll(async () => {
  expect(vps1.sshPort, 'the reference hosts file points at 127.0.0.1:2222, which must be vps1').toBe(2222);
  await pushMeltonImage(env, TAG);
  playbook = (await meltonPlaybookFor(vps1, dir)).path;
  secretsFile = writeTemp(dir, 'secret-extra-vars', `DOCKER_PASSWORD=${env.registry.password}\n`, 0o600);
}, 120_000);

afterAll(async () => {
  for (const p of prefixes) await removePrefixed(p);
  await hostDocker(vps1, ['rmi', '--force', `${meltonRepo(env)}:${TAG}`]);
});

describe('dyce deploy --playbook: the Melton playbook through the deploy action', () => {
  it('deploys and serves, is idempotent, plans without changing, and never shows the password in any argv', async () => {
    const prefix = uniqueName('t9dp');
    prefixes.push(prefix);
    const base = port();
    const sampler = new ProcSampler([env.registry.password]);
    await sampler.start();
    await sampler.proveItself(0);

    const first = await dyce(flags(prefix, base));
    expect(first.code, first.stderr).toBe(0);
    expect(first.outputs).toMatchObject({ success: 'true', changed: 'true', 'failed-hosts': '' });
    expect(JSON.parse(first.outputs.recap!)).toEqual({
      indenwolken: expect.objectContaining({ ok: 4, unreachable: 0, failed: 0 }),
    });
    expect(first.stderr).toMatch(/TASK \[Create default containers\][\s\S]*changed: \[indenwolken\] => \(item=1\)/);
    for (const p of [base + 1, base + 2]) expect(await body(p)).toContain('sample app');

    const second = await dyce(flags(prefix, base));
    expect(second.code, second.stderr).toBe(0);
    expect(second.outputs.changed).toBe('false');
    expect(JSON.parse(second.outputs.recap!).indenwolken).toMatchObject({ ok: 4, changed: 0, failed: 0 });

    // dyce plan is check mode: a third container would be created, none is.
    const ids = (await hostDocker(vps1, ['ps', '-q', '--filter', `name=^${prefix}-`])).stdout;
    const planned = await dyce(flags(prefix, base, ['--extra-vars', '{"create_containers": 3}']), 'plan');
    expect(planned.code, planned.stderr).toBe(0);
    expect(planned.stderr).toContain('(check mode)');
    expect(planned.stderr).toMatch(/changed: \[indenwolken\] => \(item=3\)/);
    expect((await hostDocker(vps1, ['ps', '-q', '--filter', `name=^${prefix}-`])).stdout).toBe(ids);

    const report = await sampler.stop();
    expect(report.hits).toEqual([]);
    for (const r of [first, second, planned]) expect(r.stdout + r.stderr).not.toContain(env.registry.password);
  }, 240_000);

  it('with an image too: the playbook first, then the image; a failed playbook deploys nothing', async () => {
    const prefix = uniqueName('t9di');
    prefixes.push(prefix);
    const base = port();
    const image = [
      '--image',
      `${meltonRepo(env)}:${TAG}`,
      '--name',
      `${prefix}-img`,
      '--port',
      String(env.sampleApp.port),
      '--host-port',
      String(base + 50),
      '--registry-username',
      env.registry.username,
    ];
    // The image deploy's own registry login takes the password from its own secret input.
    // The image deploy keeps its state in the lab host's state dir, not this machine's /var/lib/dyce.
    const where = [
      '--hosts',
      `indenwolken ansible_host=${vps1.address} ansible_port=${vps1.sshPort} ansible_user=root dyce_state_dir=${vps1.stateDir}`,
    ];
    const withPassword = (args: string[]) => [
      ...args,
      '--registry-password-file',
      writeTemp(dir, 'registry-password', env.registry.password, 0o600),
    ];
    const failing = await dyce(
      withPassword(flags(prefix, base, [...image, '--extra-vars', `DOCKER_TAG=${TAG}-missing`], where)),
    );
    expect(failing.code).toBe(1);
    expect(failing.stderr).toContain(`playbook ${playbook} failed on 1 host: indenwolken`);
    expect(failing.outputs).toMatchObject({ success: 'false', 'failed-hosts': 'indenwolken' });
    expect((await hostDocker(vps1, ['ps', '-aq', '--filter', `label=dyce.app=${prefix}-img`])).stdout).toBe('');

    const both = await dyce(withPassword(flags(prefix, base, image, where)));
    expect(both.code, both.stderr).toBe(0);
    expect(both.outputs).toMatchObject({ success: 'true', changed: 'true', version: TAG });
    expect(both.stderr.indexOf('PLAY RECAP')).toBeLessThan(both.stderr.indexOf(`${prefix}-img ${TAG}: deployed`));
    expect(await body(base + 50)).toContain('sample app');
    expect(await body(base + 1)).toContain('sample app');
    await hostDocker(vps1, ['rm', '--force', `${prefix}-img1`]);
  }, 240_000);
});
