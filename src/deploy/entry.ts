import { type DeployActionInputs, hasImage } from '../config/actions/deploy.js';
import type { Reporter } from '../github/reporter.js';
import { runConnector } from './connect.js';
import { type DeployOptions, type DeployResult, runDeploy } from './engine.js';
import type { PlaybookOutcome } from './playbook.js';

// The playbook engine (nunjucks, the modules) is imported only when `playbook` is given: a plain image deploy,
// the common case, does not pay for loading it.

export interface DeployRun {
  playbook?: PlaybookOutcome;
  deploy?: DeployResult;
  changed: boolean;
}

/**
 * The deploy action's entry: the playbook, the image deploy, or the playbook then the image deploy (only if
 * the playbook succeeded everywhere). `changed` is true when either changed something.
 */
export async function runDeployInputs(
  i: DeployActionInputs,
  reporter: Reporter,
  opts: DeployOptions = {},
): Promise<DeployRun> {
  // One connection per host for the whole run: the playbook and the image deploy share it.
  const own = opts.connect ? undefined : runConnector(i, reporter);
  const shared: DeployOptions = own ? { ...opts, connect: own } : opts;
  try {
    return await runPhases(i, reporter, shared);
  } finally {
    await own?.close();
  }
}

async function runPhases(i: DeployActionInputs, reporter: Reporter, opts: DeployOptions): Promise<DeployRun> {
  let playbook: PlaybookOutcome | undefined;
  if (i.playbook?.trim()) {
    // `eager`: ncc (webpack) keeps the module in the action's one-file bundle (evaluated only here); esbuild, which
    // bundles the CLI, ignores the comment and splits it into a chunk of its own.
    const { runDeployPlaybook } = await import(/* webpackMode: "eager" */ './playbook.js');
    playbook = await runDeployPlaybook(i, reporter, {
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.connect ? { connect: opts.connect } : {}),
    });
    if (!hasImage(i)) return { playbook, changed: playbook.changed };
  }
  let deployChanged = false;
  try {
    const deploy = await runDeploy(i, reporter, opts);
    deployChanged = deploy.changed;
    return { ...(playbook ? { playbook } : {}), deploy, changed: deploy.changed || (playbook?.changed ?? false) };
  } finally {
    // runDeploy writes its own `changed`; the playbook's changes count too.
    if (playbook?.changed && !deployChanged) reporter.output('changed', true);
  }
}
