/**
 * src/github/deployments.ts against a local stand-in for the GitHub REST API (GITHUB_API_URL): what GitHub is told
 * for a deploy, a failed deploy and a rolled-back deploy, and that a refusing API never stops the deploy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assembleDeploymentSettings,
  type DeploymentSettings,
  deploymentStateOf,
  withDeployment,
} from '../../src/github/deployments.js';
import { RecordingReporter } from '../../src/github/reporter.js';
import { callSummary, type GitHubApiStandIn, startGitHubApi } from '../support/github-api.js';

let api: GitHubApiStandIn;
beforeAll(async () => {
  api = await startGitHubApi();
});
afterAll(() => api.close());

const SHA = 'c0ffee0123456789c0ffee0123456789c0ffee01';
const settings = (): DeploymentSettings =>
  assembleDeploymentSettings(
    { 'github-token': 'ghs_token', environment: 'production', 'environment-url': 'https://melton.example' },
    {
      GITHUB_REPOSITORY: 'acme/melton',
      GITHUB_SHA: SHA,
      GITHUB_RUN_ID: '42',
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_API_URL: api.url,
    },
    'melton-app v1.4.2',
  )!;

describe('GitHub deployments', () => {
  it('is off unless both github-token and environment are given', () => {
    expect(assembleDeploymentSettings({ environment: 'production' }, {})).toBeUndefined();
    expect(assembleDeploymentSettings({ 'github-token': 't' }, {})).toBeUndefined();
    expect(assembleDeploymentSettings({ 'github-token': 't', environment: ' ' }, {})).toBeUndefined();
  });

  it('maps an outcome to a state', () => {
    expect(deploymentStateOf(false, false)).toBe('success');
    expect(deploymentStateOf(true, false)).toBe('failure');
    expect(deploymentStateOf(true, true)).toBe('inactive');
  });

  it('a deploy: the deployment for the commit, in_progress, then success with the URL', async () => {
    api.calls = [];
    const reporter = new RecordingReporter();
    const r = await withDeployment(settings(), reporter, async (rep) => {
      rep.output('rolled-back', false);
      return 'done';
    });
    expect(r).toBe('done');
    expect(callSummary(api.calls)).toEqual([
      'POST /repos/acme/melton/deployments',
      'POST /repos/acme/melton/deployments/1000/statuses in_progress',
      'POST /repos/acme/melton/deployments/1000/statuses success',
    ]);
    expect(api.calls[0]!.body).toMatchObject({
      ref: SHA,
      environment: 'production',
      required_contexts: [],
      auto_merge: false,
      description: 'melton-app v1.4.2',
    });
    expect(api.calls[0]!.authorization).toBe('token ghs_token');
    expect(api.calls[2]!.body).toMatchObject({
      environment_url: 'https://melton.example',
      log_url: 'https://github.com/acme/melton/actions/runs/42',
      auto_inactive: true,
    });
    // The outputs pass through to the real reporter.
    expect(reporter.outputs['rolled-back']).toBe('false');
  });

  it('a failed deploy: failure, and the deploy error is rethrown unchanged', async () => {
    api.calls = [];
    const boom = new Error('pull failed');
    await expect(
      withDeployment(settings(), new RecordingReporter(), async (rep) => {
        rep.output('rolled-back', false);
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(callSummary(api.calls).slice(1)).toEqual([
      expect.stringMatching(/statuses in_progress$/),
      expect.stringMatching(/statuses failure$/),
    ]);
    expect(api.calls[2]!.body.auto_inactive).toBe(false);
  });

  it('a rolled-back deploy: inactive (the new version never took over), no URL', async () => {
    api.calls = [];
    await expect(
      withDeployment(settings(), new RecordingReporter(), async (rep) => {
        rep.output('rolled-back', true);
        throw new Error('health gate failed; rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(callSummary(api.calls).at(-1)).toMatch(/statuses inactive$/);
    expect(api.calls.at(-1)!.body.environment_url).toBeUndefined();
  });

  it('an API that refuses (no deployments: write): a warning, and the deploy runs and succeeds', async () => {
    api.calls = [];
    api.fail = 403;
    try {
      const reporter = new RecordingReporter();
      let ran = false;
      await withDeployment(settings(), reporter, async () => {
        ran = true;
      });
      expect(ran).toBe(true);
      expect(api.calls).toHaveLength(1);
      expect(reporter.lines.join('\n')).toMatch(/warning: could not create the GitHub deployment.*deployments: write/);
    } finally {
      api.fail = undefined;
    }
  });
});
