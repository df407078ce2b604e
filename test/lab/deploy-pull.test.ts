import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditLog, lockDir } from '../../src/plan/desired.js';
import { runLocal } from '../../src/remote/local.js';
import { type CliRun, labSecrets, nginxAppFlags, removeNginxApp, runDyce, viaNginx } from '../support/dyce-cli.js';
import { DOCKER_BIN, host, hostDocker, lab, uniqueName } from '../support/lab.js';

// A tag rebuilt and pushed again under the same name (build-push's `main` on every push to main), deployed to vps3
// behind its real nginx through `dyce deploy` (the source). The repository is this test's own: it pushes the lab's
// sample app v1, then v2, then v3 as `<repo>:main`, so the tag really names another build each time.

const env = lab();
const vps3 = host(env, 'vps3');
const app = uniqueName('pull');
const serverName = `${app}.lab.test`;
// Below the ephemeral port range and the other deploy tests' ranges; host networking, so ports are the machine's.
const hostPort = 19_000 + 10 * Math.floor(Math.random() * 90);
const secrets = labSecrets(env);
const registry = env.registry.url.replace(/^https?:\/\//, '').replace(/\/$/, '');
const repo = `${registry}/dyce/${uniqueName('pull-img')}`;
const image = `${repo}:main`;

/** Pushes the lab's sample app SAMPLE_TAG as `<repo>:main` from the runner's Docker (what a CI build-push does). */
async function pushAsMain(sampleTag: string): Promise<void> {
  const denv = { ...process.env, DOCKER_HOST: env.runner.dockerHost, DOCKER_CONFIG: env.runner.dockerConfig };
  for (const argv of [
    [DOCKER_BIN, 'tag', `${env.sampleApp.image}:${sampleTag}`, image],
    [DOCKER_BIN, 'push', '--quiet', image],
    [DOCKER_BIN, 'rmi', image],
  ]) {
    const r = await runLocal(argv, { env: denv });
    if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  }
}

const deploy = (pull: 'always' | 'missing') =>
  runDyce(
    'deploy',
    { ...nginxAppFlags(env, vps3, { name: app, serverName, hostPort }), image, pull, 'drain-timeout': '5s' },
    secrets,
  );

/** The image ID each replica runs, and the one `<repo>:main` names on the host now. */
async function imageIds(): Promise<{ replicas: string[]; tag: string }> {
  const ps = await hostDocker(vps3, ['ps', '-q', '--filter', `label=dyce.app=${app}`]);
  const ids = ps.stdout.trim().split('\n').filter(Boolean);
  const replicas = ids.length
    ? (await hostDocker(vps3, ['inspect', '--format', '{{.Image}}', ...ids])).stdout.trim().split('\n')
    : [];
  const tag = (await hostDocker(vps3, ['image', 'inspect', '--format', '{{.Id}}', image])).stdout.trim();
  return { replicas, tag };
}

/** What the app answers through nginx, twice (two replicas behind a round-robin upstream). */
async function served(): Promise<string[]> {
  const a = await viaNginx(vps3, serverName, '/version');
  const b = await viaNginx(vps3, serverName, '/version');
  return [a.body, b.body];
}

function ok(r: CliRun): void {
  expect(r.code, r.stderr).toBe(0);
  expect(r.outputs.success).toBe('true');
}

const rebuiltWarnings = (r: CliRun) => r.stderr.split('\n').filter((l) => /^warning: .*can be rebuilt/.test(l));

beforeAll(async () => {
  await pushAsMain('v1');
}, 120_000);

afterAll(async () => {
  await removeNginxApp(vps3, app);
  // The tag and the builds it named before (dangling since).
  await hostDocker(vps3, ['rmi', image]);
  const dangling = (await hostDocker(vps3, ['images', '-q', '--filter', 'dangling=true', repo])).stdout.trim();
  if (dangling) await hostDocker(vps3, ['rmi', ...dangling.split('\n')]);
});

describe('a tag rebuilt under the same name', { timeout: 300_000 }, () => {
  it('pull: always replaces the replicas through the rolling path once the tag names another build', async () => {
    const first = await deploy('always');
    ok(first);
    expect(first.outputs.changed).toBe('true');
    expect(await served()).toEqual(['v1', 'v1']);
    const before = await imageIds();

    await pushAsMain('v2');
    const r = await deploy('always');
    ok(r);
    expect(r.outputs.changed).toBe('true');
    expect(r.outputs['rolled-back']).toBe('false');
    expect(JSON.parse(r.outputs['host-states'] ?? '{}')).toEqual({ vps3: { state: 'changed' } });
    expect(r.stderr).toContain(`image ${image} was rebuilt: `);
    // The rolling path: health gate, upstream switch.
    expect(r.stderr).toMatch(/health gate: /);
    expect(r.stderr).toMatch(/upstream -> /);
    expect(await served()).toEqual(['v2', 'v2']);
    const after = await imageIds();
    expect(after.tag).not.toBe(before.tag);
    expect(after.replicas).toEqual([after.tag, after.tag]);
    expect(rebuiltWarnings(r)).toEqual([]);
  });

  it('a second pull: always run of the same build changes nothing', async () => {
    const before = await imageIds();
    const r = await deploy('always');
    ok(r);
    expect(r.outputs.changed).toBe('false');
    expect(r.stderr).toContain(`vps3: ${app} is up to date (2 replicas unchanged)`);
    expect(r.stderr).toContain(`vps3: pull ${image}`);
    expect(await imageIds()).toEqual(before);
    // No host-side verdict with pull: always: the engine itself audited the run and released the lock.
    expect(existsSync(lockDir(vps3.stateDir, app))).toBe(false);
    const last = readFileSync(auditLog(vps3.stateDir), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { app: string; result: string; steps: string[] })
      .filter((e) => e.app === app)
      .pop();
    expect(last).toMatchObject({ result: 'unchanged', steps: [`pull ${image}`] });
  });

  it('pull: missing warns once about the movable tag and keeps the replicas on the build the host has', async () => {
    await pushAsMain('v3');
    const before = await imageIds();
    const r = await deploy('missing');
    ok(r);
    expect(r.outputs.changed).toBe('false');
    expect(rebuiltWarnings(r)).toHaveLength(1);
    expect(rebuiltWarnings(r)[0]).toContain('pull: always');
    expect(r.stderr).not.toContain(`pull ${image}`);
    expect(await imageIds()).toEqual(before);
    expect(await served()).toEqual(['v2', 'v2']);
  });
});
