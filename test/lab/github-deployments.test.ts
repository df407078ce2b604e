/**
 * The deploy action with `github-token` and `environment`, against the lab and a local stand-in for the GitHub REST
 * API at GITHUB_API_URL that records the calls: a deploy (success), a failed deploy (failure) and a deploy whose new
 * version failed its health gate and was rolled back (inactive). The action's source runs as the runner runs a
 * JavaScript action: INPUT_* variables and file commands.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploySpec } from '../../src/config/actions/deploy.js';
import { runLocal } from '../../src/remote/local.js';
import { inputEnvName, parseFileCommands, repoRoot } from '../bundle/runner-protocol.js';
import { nginxAppFlags, removeNginxApp } from '../support/dyce-cli.js';
import { callSummary, type GitHubApiStandIn, startGitHubApi } from '../support/github-api.js';
import { host, lab, tempDir, uniqueName } from '../support/lab.js';

const env = lab();
const vps = host(env, 'vps2');
const SHA = 'c0ffee0123456789c0ffee0123456789c0ffee01';
const app = { name: uniqueName('ghdep'), serverName: `${uniqueName('ghdep')}.test`, hostPort: 0 };
let api: GitHubApiStandIn;

beforeAll(async () => {
  api = await startGitHubApi();
  app.hostPort = 40000 + Math.floor(Math.random() * 5000) * 2;
});
afterAll(async () => {
  await api.close();
  await removeNginxApp(vps, app.name);
});

/** actions/deploy/main.ts from the source, with the runner's environment; returns exit code, outputs, stdout. */
async function deployStep(inputs: Record<string, string>) {
  const dir = tempDir('dyce-ghdep-');
  const output = join(dir, 'output');
  for (const f of ['output', 'state', 'summary']) writeFileSync(join(dir, f), '');
  const stepEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? dir,
    GITHUB_ACTIONS: 'true',
    RUNNER_TEMP: dir,
    GITHUB_OUTPUT: output,
    GITHUB_STATE: join(dir, 'state'),
    GITHUB_STEP_SUMMARY: join(dir, 'summary'),
    GITHUB_API_URL: api.url,
    GITHUB_SERVER_URL: 'https://github.example',
    GITHUB_REPOSITORY: 'acme/melton',
    GITHUB_SHA: SHA,
    GITHUB_RUN_ID: '7',
  };
  for (const [name, f] of Object.entries(deploySpec.inputs)) stepEnv[inputEnvName(name)] = f.meta.default ?? '';
  for (const [name, v] of Object.entries(inputs)) stepEnv[inputEnvName(name)] = v;
  try {
    const r = await runLocal([process.execPath, '--import', 'tsx', join(repoRoot, 'actions/deploy/main.ts')], {
      cwd: repoRoot,
      env: stepEnv,
      timeoutMs: 180_000,
    });
    return { ...r, outputs: parseFileCommands(readFileSync(output, 'utf8')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const TOKEN = `ghs_${uniqueName('token')}`;
const inputs = (image: string) => ({
  ...nginxAppFlags(env, vps, app),
  'ssh-private-key': readFileSync(env.sshKey, 'utf8'),
  'registry-password': env.registry.password,
  image,
  'github-token': TOKEN,
  environment: 'production',
  'environment-url': `https://${app.serverName}/`,
});

describe('GitHub deployments from the deploy action', () => {
  it('a deploy: deployment for the commit, in_progress, success with the URL; the token never printed', async () => {
    api.calls = [];
    const r = await deployStep(inputs(`${env.sampleApp.image}:v1`));
    expect(r.outputs.success, r.stdout + r.stderr).toBe('true');
    expect(callSummary(api.calls)).toEqual([
      'POST /repos/acme/melton/deployments',
      'POST /repos/acme/melton/deployments/1000/statuses in_progress',
      'POST /repos/acme/melton/deployments/1000/statuses success',
    ]);
    expect(api.calls[0]!.body).toMatchObject({ ref: SHA, environment: 'production' });
    expect(api.calls[0]!.authorization).toBe(`token ${TOKEN}`);
    expect(api.calls[2]!.body).toMatchObject({
      environment_url: `https://${app.serverName}/`,
      log_url: 'https://github.example/acme/melton/actions/runs/7',
    });
    expect(r.stdout).toContain(`::add-mask::${TOKEN}`);
    expect(r.stdout.replaceAll(`::add-mask::${TOKEN}`, '')).not.toContain(TOKEN);
  }, 200_000);

  it('a rolled-back deploy (the new version never healthy): inactive', async () => {
    api.calls = [];
    const r = await deployStep(inputs(`${env.sampleApp.image}:never-healthy`));
    expect(r.outputs).toMatchObject({ success: 'false', 'rolled-back': 'true' });
    expect(
      callSummary(api.calls)
        .slice(1)
        .map((c) => c.split(' ').at(-1)),
    ).toEqual(['in_progress', 'inactive']);
  }, 200_000);

  it('a failed deploy (the image does not exist): failure', async () => {
    api.calls = [];
    const r = await deployStep(inputs(`${env.sampleApp.image}:no-such-tag`));
    expect(r.outputs).toMatchObject({ success: 'false', 'rolled-back': 'false' });
    expect(
      callSummary(api.calls)
        .slice(1)
        .map((c) => c.split(' ').at(-1)),
    ).toEqual(['in_progress', 'failure']);
  }, 200_000);

  it('without environment: no call at all', async () => {
    api.calls = [];
    const r = await deployStep({ ...inputs(`${env.sampleApp.image}:v1`), environment: '', 'environment-url': '' });
    expect(r.outputs.success).toBe('true');
    expect(api.calls).toEqual([]);
  }, 200_000);
});
