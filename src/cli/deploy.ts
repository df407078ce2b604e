import { deployRules, deploySpec } from '../config/actions/deploy.js';
import { cliRunConnector } from '../deploy/connect.js';
import { runDeployInputs } from '../deploy/entry.js';
import { abortOnSignals } from '../deploy/signals.js';
import { formatDuration } from '../util/duration.js';
import { checkInputs, parseFlags } from './flags.js';
import type { CliReporter } from './reporter.js';
import { DEPLOY_EXTRA_FLAGS } from './usage.js';

/** `dyce deploy` and `dyce plan` (a dry run): the action's engine, with the action's inputs as flags. */
export function deployCommand(mode: 'deploy' | 'plan') {
  return async (argv: string[], reporter: CliReporter): Promise<number> => {
    const parsed = parseDeployFlags(argv, reporter, mode);
    if (mode === 'plan') parsed.raw['dry-run'] = 'true';
    refuseActionOnly(parsed);
    const inputs = checkInputs(deploySpec, parsed, deployRules, { command: mode });
    // One SSH login per host for the run, with this machine's OpenSSH defaults where the flags say nothing.
    const connect = await cliRunConnector(inputs, reporter, knownHostsFile(parsed));
    return runDeployCommand(reporter, async (signal) => {
      const { playbook, deploy: result } = await runDeployInputs(inputs, reporter, { signal, connect }).finally(() =>
        connect.close(),
      );
      if (playbook)
        reporter.info(
          `playbook ${playbook.file}${playbook.check ? ' (check mode)' : ''}: ${playbook.changed ? 'changed' : 'nothing changed'} in ${formatDuration(playbook.ms)}`,
        );
      if (result)
        reporter.info(
          result.dryRun
            ? `plan for ${result.app} ${result.version}: ${result.hosts.some((h) => h.plan?.changed) ? 'changes' : 'no changes'}`
            : `${result.app} ${result.version}: ${result.changed ? 'deployed' : 'nothing changed'} in ${formatDuration(result.ms)}`,
        );
    });
  };
}

export type DeployFlags = ReturnType<typeof parseDeployFlags>;

/** Inputs only the action acts on: on the CLI they would be silently ignored, so they are refused. */
export function refuseActionOnly(parsed: DeployFlags): void {
  for (const name of ['environment', 'environment-url'])
    if (parsed.raw[name] !== undefined)
      parsed.issues.push(
        `--${name}: GitHub deployments are recorded by the deploy action only (it knows the repository and the commit); drop it on the CLI`,
      );
}

export function knownHostsFile(parsed: DeployFlags): string | undefined {
  const v = parsed.extra['known-hosts-file'];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** The deploy action's inputs as flags (plus --json), every secret among them registered before any output. */
export function parseDeployFlags(argv: string[], reporter: CliReporter, command = 'deploy') {
  const parsed = parseFlags(deploySpec, argv, { command, extra: DEPLOY_EXTRA_FLAGS });
  for (const [name, f] of Object.entries(deploySpec.inputs))
    if (f.meta.secret && parsed.raw[name]) reporter.secret(parsed.raw[name]!);
  return parsed;
}

/**
 * Runs a deploy-like command: aborted by SIGINT/SIGTERM, and `success` written whatever happens (main.ts prints the
 * outputs with --json). Exit code 0 when `work` returns; a throw is the caller's error.
 */
export async function runDeployCommand(
  reporter: CliReporter,
  work: (signal: AbortSignal) => Promise<void>,
): Promise<number> {
  const { signal, dispose } = abortOnSignals();
  let ok = false;
  try {
    await work(signal);
    ok = true;
    return 0;
  } finally {
    dispose();
    reporter.output('success', ok);
  }
}
