import { type DeployActionInputs, hasImage, imageDeployInputs } from '../config/actions/deploy.js';
import { reportDeploy } from '../github/deploy-report.js';
import type { Reporter } from '../github/reporter.js';
import { type DeployConfig, deploySecrets, readDeployConfig } from './config.js';
import { checkConnectionInputs, connector, runConnector } from './connect.js';
import { type DeployOptions, type DeployResult, deployFleet } from './engine.js';
import type { PlaybookOutcome } from './playbook.js';
import { mutableTagWarning } from './pull.js';
import { appConfigFromInputs } from './settings.js';

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

/**
 * The image deploy: the configuration is assembled (and every per-host value checked) before any connection,
 * the secrets are registered, the engine runs, and one adapter writes the outputs and the summary, also when the
 * deploy fails. Throws the deploy's error after reporting it.
 */
export async function runDeploy(
  given: DeployActionInputs,
  reporter: Reporter,
  opts: DeployOptions = {},
): Promise<DeployResult> {
  const inputs = imageDeployInputs(given);
  const app = appConfigFromInputs(inputs);
  // Each secret value on its own: the runner masks the raw input text, but a log line may hold one value alone.
  for (const s of [...Object.values(app.secretEnv), ...Object.values(app.secretFiles)]) reporter.secret(s.reveal());
  let config: DeployConfig;
  try {
    config = await readDeployConfig(inputs);
    checkConnectionInputs(
      inputs,
      config.hosts.map((h) => h.host),
      opts.connect,
    );
  } catch (error) {
    reportDeploy(
      {
        version: app.version,
        app: app.app,
        dryRun: inputs['dry-run'],
        hosts: [],
        changed: false,
        failedHosts: [],
        ms: 0,
      },
      reporter,
    );
    throw error;
  }
  for (const s of deploySecrets(config)) reporter.secret(s);
  const tagWarning = mutableTagWarning(config.app.image, config.pull);
  if (tagWarning) reporter.warning(tagWarning);
  const result = await deployFleet(config, reporter, { ...opts, connect: opts.connect ?? connector(inputs, reporter) });
  reportDeploy(result, reporter);
  if (result.error !== undefined) throw result.error;
  return result;
}
