import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { historyPath, parseHistory } from '../../src/commands/history.js';
import { appDir } from '../../src/plan/desired.js';
import {
  type CliRun,
  labSecrets,
  nginxAppFlags,
  pushPrivateRepo,
  removeNginxApp,
  runDyce,
  viaNginx,
} from '../support/dyce-cli.js';
import { host, hostDocker, lab, uniqueName } from '../support/lab.js';

// Retention and redeploy on vps3, behind its real nginx, through `dyce deploy` / `dyce rollback` (the source).
// The images live in a repository of this test's own, so it can count them: no other test uses them.

const env = lab();
const vps3 = host(env, 'vps3');
const app = uniqueName('keep');
const serverName = `${app}.lab.test`;
// Below the ephemeral port range; host networking, so ports are the machine's.
const hostPort = 23_000 + 10 * Math.floor(Math.random() * 200);
const secrets = labSecrets(env);
let repo = '';

function flags(over: Record<string, string>): Record<string, string> {
  return {
    ...nginxAppFlags(env, vps3, { name: app, serverName, hostPort }),
    'drain-timeout': '10s',
    'keep-versions': '3',
    ...over,
  };
}

/** A deploy the way a `workflow_dispatch` run gives it: the untagged image and the version to deploy. */
const deploy = (version: string, over: Record<string, string> = {}) =>
  runDyce('deploy', flags({ image: repo, version, ...over }), secrets);
const rollback = () => runDyce('rollback', flags({}), secrets);

async function imagesOnHost(): Promise<string[]> {
  const r = await hostDocker(vps3, ['images', repo, '--format', '{{.Tag}}']);
  return r.stdout.trim().split('\n').filter(Boolean).sort();
}

async function runningVersions(): Promise<string[]> {
  const r = await hostDocker(vps3, [
    'ps',
    '--filter',
    `label=dyce.app=${app}`,
    '--format',
    '{{.Names}} {{.Label "dyce.version"}} {{.Image}}',
  ]);
  return r.stdout.trim().split('\n').filter(Boolean).sort();
}

function history(): string[] {
  return parseHistory(readFileSync(historyPath(appDir(vps3.stateDir, app)), 'utf8')).map(
    (e) => `${e.version}${e.state === 'ok' ? '' : ` ${e.state}`}`,
  );
}

function ok(r: CliRun): void {
  expect(r.code, r.stderr).toBe(0);
  expect(r.outputs.success).toBe('true');
}

beforeAll(async () => {
  repo = await pushPrivateRepo(env, uniqueName('keep-img'), ['v1', 'v2', 'v3', 'v4']);
}, 120_000);

afterAll(async () => {
  await removeNginxApp(vps3, app);
  const imgs = (await hostDocker(vps3, ['images', repo, '--format', '{{.Repository}}:{{.Tag}}'])).stdout.trim();
  if (imgs) await hostDocker(vps3, ['rmi', ...imgs.split('\n')]);
});

describe('retention and redeploy', { timeout: 300_000 }, () => {
  it('pruning keeps exactly keep-versions images: v1..v4 leave v2, v3, v4', async () => {
    for (const v of ['v1', 'v2', 'v3']) ok(await deploy(v));
    expect(await imagesOnHost()).toEqual(['v1', 'v2', 'v3']);
    const r = await deploy('v4');
    ok(r);
    expect(r.stderr).toContain(`removed images beyond keep-versions 3: ${repo}:v1`);
    expect(await imagesOnHost()).toEqual(['v2', 'v3', 'v4']);
    expect(history()).toEqual(['v2', 'v3', 'v4']);
    expect((await viaNginx(vps3, serverName, '/version')).body).toBe('v4');
  });

  it('a workflow_dispatch redeploy of an earlier retained version (image + version) goes through the rollout', async () => {
    const r = await deploy('v2');
    ok(r);
    expect(r.outputs.version).toBe('v2');
    expect(r.outputs['rolled-back']).toBe('false');
    // The rolling path: health gate, upstream switch, drain.
    expect(r.stderr).toMatch(/health gate: /);
    expect(r.stderr).toMatch(/upstream -> /);
    expect(await runningVersions()).toEqual([`${app}1 v2 ${repo}:v2`, `${app}2 v2 ${repo}:v2`]);
    expect((await viaNginx(vps3, serverName, '/version')).body).toBe('v2');
    // Nothing pruned: v2 was retained, so the three images are still v2, v3, v4.
    expect(await imagesOnHost()).toEqual(['v2', 'v3', 'v4']);
    expect(history()).toEqual(['v3', 'v4', 'v2']);
  });

  it('dyce rollback goes back one version at a time, then says there is none left', async () => {
    const first = await rollback();
    ok(first);
    expect(first.outputs.version).toBe('v4');
    expect(first.stderr).toContain(`rolling back to v4 (${repo}:v4)`);
    expect((await viaNginx(vps3, serverName, '/version')).body).toBe('v4');
    expect(history()).toEqual(['v2 rolled-back', 'v3', 'v4']);

    // Back again: to v3 (the version before v4), not forth to v2.
    const second = await rollback();
    ok(second);
    expect(second.outputs.version).toBe('v3');
    expect((await viaNginx(vps3, serverName, '/version')).body).toBe('v3');
    expect(history()).toEqual(['v4 rolled-back', 'v2 rolled-back', 'v3']);
    // The version rolled back from is the previous one: never pruned.
    expect(await imagesOnHost()).toEqual(['v2', 'v3', 'v4']);

    const none = await rollback();
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain(`no earlier version of ${app} to roll back to on vps3 (only v3 is recorded)`);
    expect(await runningVersions()).toEqual([`${app}1 v3 ${repo}:v3`, `${app}2 v3 ${repo}:v3`]);
  });

  it('a pruned version deploys again (pulled), and the rolled-back ones go first', async () => {
    ok(await deploy('v1'));
    expect((await viaNginx(vps3, serverName, '/version')).body).toBe('v1');
    // [v4 rb, v2 rb, v3, v1]: one over keep-versions; v4 (rolled back from) goes, v3 (previous) stays.
    expect(await imagesOnHost()).toEqual(['v1', 'v2', 'v3']);
    expect(history()).toEqual(['v2 rolled-back', 'v3', 'v1']);
  });

  it('refuses an untagged image without a version, and a version that is no Docker tag, before any host', async () => {
    const r = await runDyce('deploy', flags({ image: repo }), secrets);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--image needs a tag or digest');
    const bad = await runDyce('deploy', flags({ image: repo, version: 'v1+x' }), secrets);
    expect(bad.stderr).toContain('must be a Docker tag');
    const both = await runDyce('rollback', flags({ image: `${repo}:v1` }), secrets);
    expect(both.stderr).toContain('dyce rollback takes --image from the hosts');
  });
});
