import * as core from '@actions/core';
import { lockRelease } from '../commands/host-state.js';
import { type DeployActionInputs, deployRules, deploySpec } from '../config/actions/deploy.js';
import { parseInputs } from '../config/input-spec.js';
import { readActionInputs } from '../github/action-runner.js';
import type { Reporter } from '../github/reporter.js';
import { errorMessage } from '../util/errors.js';
import { connector, readTargetHosts } from './connect.js';
import type { LockRecord } from './engine.js';
import { runDeployInputs } from './entry.js';
import { abortOnSignals } from './signals.js';

const LOCKS_STATE = 'deploy_locks';

/**
 * The action's main step: the playbook, the image deploy, or both (src/deploy/playbook.ts). Locks taken are
 * saved as state, so the post step can clean up after a hard kill.
 */
export async function deployMain(inputs: DeployActionInputs, reporter: Reporter): Promise<void> {
  const { signal, dispose } = abortOnSignals();
  const locks: LockRecord[] = [];
  try {
    await withGitHubDeployment(inputs, reporter, (reporter) =>
      runDeployInputs(inputs, reporter, {
        signal,
        onLock: (l) => {
          locks.push(l);
          core.saveState(LOCKS_STATE, JSON.stringify(locks));
        },
      }),
    );
    // A clean main step released its locks itself: the post step has nothing to check and does not reconnect.
    if (locks.length > 0) core.saveState(LOCKS_STATE, '[]');
  } finally {
    dispose();
  }
}

/**
 * With `github-token` and `environment`, the deploy is recorded as a GitHub deployment (src/github/deployments.ts);
 * otherwise it just runs. The module (and @actions/github) loads only when asked for.
 */
async function withGitHubDeployment<T>(
  inputs: DeployActionInputs,
  reporter: Reporter,
  deploy: (reporter: Reporter) => Promise<T>,
): Promise<T> {
  if (!inputs['github-token'] || !inputs.environment?.trim()) return deploy(reporter);
  const { assembleDeploymentSettings, withDeployment } = await import(
    /* webpackMode: "eager" */ '../github/deployments.js'
  );
  const what = [inputs.name, inputs.version ?? inputs.image].filter(Boolean).join(' ');
  const settings = assembleDeploymentSettings(inputs, process.env, what || undefined);
  return settings ? withDeployment(settings, reporter, deploy) : deploy(reporter);
}

/**
 * The post step: removes a lock only if it is still this run's (the holder id inside matches), for the case
 * where the main step was killed before its `finally` ran. Warns instead of failing.
 */
export async function deployPost(reporter: Reporter): Promise<void> {
  const saved = core.getState(LOCKS_STATE);
  if (!saved) return;
  const locks = JSON.parse(saved) as LockRecord[];
  if (locks.length === 0) return;
  const inputs = parseInputs(deploySpec, readActionInputs(deploySpec), deployRules);
  const hosts = await readTargetHosts(inputs);
  const connect = connector(inputs, reporter);
  for (const lock of locks) {
    const host = hosts.find((h) => h.name === lock.host);
    if (!host) continue;
    try {
      const exec = await connect(host);
      try {
        const r = await exec.run(lockRelease(lock.dir, lock.holderId), {
          sudo: lock.sudo,
          label: 'release the deploy lock',
          timeoutMs: 5000,
        });
        if (r.stdout.includes('released'))
          reporter.warning(`${lock.host}: removed the deploy lock this run had left behind`);
      } finally {
        await exec.close();
      }
    } catch (error) {
      reporter.warning(`${lock.host}: could not check the deploy lock: ${errorMessage(error)}`);
    }
  }
}
