import { getOctokit } from '@actions/github';
import { errorMessage } from '../util/errors.js';
import type { Reporter } from './reporter.js';

/**
 * GitHub Deployments for a deploy: the deploy shows in the repository's Deployments and its environment, with its
 * URL. One deployment for the commit, `in_progress` while the deploy runs, then `success`, `failure`, or `inactive`
 * when the new version was rolled back (it never took over; the previous one still serves).
 *
 * The Deployments API is reporting, not the deploy: when GitHub refuses a call (no `deployments: write`, say), the
 * deploy still runs and the step warns.
 */
export interface DeploymentSettings {
  token: string;
  environment: string;
  environmentUrl?: string | undefined;
  /** `owner/repo` (GITHUB_REPOSITORY). */
  repository: string;
  /** The commit deployed (GITHUB_SHA). */
  sha: string;
  /** The run's page, linked from each status (GITHUB_SERVER_URL/owner/repo/actions/runs/GITHUB_RUN_ID). */
  logUrl?: string | undefined;
  /** What is deployed, for the deployment's description (e.g. the version). */
  description?: string | undefined;
  /** GITHUB_API_URL; @actions/github's default when unset. */
  apiUrl?: string | undefined;
}

export type DeploymentState = 'in_progress' | 'success' | 'failure' | 'inactive';

/** Pure: the settings from the action's inputs and the runner's environment; undefined when not asked for. */
export function assembleDeploymentSettings(
  inputs: {
    'github-token'?: string | undefined;
    environment?: string | undefined;
    'environment-url'?: string | undefined;
  },
  env: NodeJS.ProcessEnv,
  description?: string,
): DeploymentSettings | undefined {
  const token = inputs['github-token'];
  const environment = inputs.environment?.trim();
  if (!token || !environment) return undefined;
  const repository = env.GITHUB_REPOSITORY ?? '';
  const server = env.GITHUB_SERVER_URL ?? 'https://github.com';
  return {
    token,
    environment,
    environmentUrl: inputs['environment-url']?.trim() || undefined,
    repository,
    sha: env.GITHUB_SHA ?? '',
    logUrl: env.GITHUB_RUN_ID && repository ? `${server}/${repository}/actions/runs/${env.GITHUB_RUN_ID}` : undefined,
    description,
    apiUrl: env.GITHUB_API_URL || undefined,
  };
}

/** Pure: how a finished deploy shows in GitHub. A deploy that failed and was rolled back never took over. */
export function deploymentStateOf(failed: boolean, rolledBack: boolean): DeploymentState {
  if (!failed) return 'success';
  return rolledBack ? 'inactive' : 'failure';
}

/**
 * Runs `deploy` inside a GitHub deployment. `deploy` gets a reporter that passes everything through and lets this
 * function see the `rolled-back` output; its result or error is returned or rethrown unchanged.
 */
export async function withDeployment<T>(
  settings: DeploymentSettings,
  reporter: Reporter,
  deploy: (reporter: Reporter) => Promise<T>,
): Promise<T> {
  const [owner, repo] = settings.repository.split('/');
  const octokit = getOctokit(settings.token, settings.apiUrl ? { baseUrl: settings.apiUrl } : {});
  let id: number | undefined;
  try {
    if (!owner || !repo || !settings.sha) throw new Error('GITHUB_REPOSITORY and GITHUB_SHA must be set');
    const created = await octokit.rest.repos.createDeployment({
      owner,
      repo,
      ref: settings.sha,
      environment: settings.environment,
      // The commit's checks already ran (this is the deploy job); and no merge of the default branch into it.
      required_contexts: [],
      auto_merge: false,
      description: truncate(settings.description ?? 'Dyce deploy'),
    });
    if (created.status !== 201 || !('id' in created.data))
      throw new Error(`GitHub answered ${created.status} without a deployment`);
    id = created.data.id;
    await setStatus(octokit, settings, owner, repo, id, 'in_progress');
    reporter.info(`GitHub deployment ${id} to ${settings.environment}: in progress`);
  } catch (error) {
    reporter.warning(
      `could not create the GitHub deployment for environment ${settings.environment} (the deploy goes on): ${errorMessage(error)}. The workflow needs "permissions: deployments: write"`,
    );
  }

  let rolledBack = false;
  const observing: Reporter = {
    secret: (v) => reporter.secret(v),
    info: (m) => reporter.info(m),
    warning: (m, w) => reporter.warning(m, w),
    error: (m, w) => reporter.error(m, w),
    debug: (m) => reporter.debug(m),
    group: (name, fn) => reporter.group(name, fn),
    output: (name, value) => {
      if (name === 'rolled-back') rolledBack = value === true || value === 'true';
      reporter.output(name, value);
    },
    summary: (md) => reporter.summary(md),
  };

  let failed = false;
  try {
    return await deploy(observing);
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    if (id !== undefined && owner && repo) {
      const state = deploymentStateOf(failed, rolledBack);
      try {
        await setStatus(octokit, settings, owner, repo, id, state);
        reporter.info(`GitHub deployment ${id} to ${settings.environment}: ${state}`);
      } catch (error) {
        reporter.warning(`could not set the GitHub deployment ${id} to ${state}: ${errorMessage(error)}`);
      }
    }
  }
}

async function setStatus(
  octokit: ReturnType<typeof getOctokit>,
  s: DeploymentSettings,
  owner: string,
  repo: string,
  id: number,
  state: DeploymentState,
): Promise<void> {
  await octokit.rest.repos.createDeploymentStatus({
    owner,
    repo,
    deployment_id: id,
    state,
    environment: s.environment,
    ...(s.environmentUrl && state !== 'inactive' ? { environment_url: s.environmentUrl } : {}),
    ...(s.logUrl ? { log_url: s.logUrl } : {}),
    description: truncate(
      state === 'inactive'
        ? 'rolled back: the new version failed, the previous one still serves'
        : state === 'failure'
          ? 'the deploy failed'
          : state === 'success'
            ? 'deployed'
            : 'deploying',
    ),
    // Only a successful deploy replaces the environment's previous deployments.
    auto_inactive: state === 'success',
  });
}

/** GitHub refuses descriptions over 140 characters. */
function truncate(text: string): string {
  return text.length > 140 ? `${text.slice(0, 139)}…` : text;
}
