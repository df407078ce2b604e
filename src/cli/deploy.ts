import { deployRules, deploySpec } from '../config/actions/deploy.js';
import { parseInputs } from '../config/input-spec.js';
import { runDeployInputs } from '../deploy/entry.js';
import { abortOnSignals } from '../deploy/signals.js';
import { parseFlags } from './flags.js';
import type { CliReporter } from './reporter.js';

export const DEPLOY_USAGE = `usage: dyce deploy --hosts 'NAME ansible_host=… ansible_port=… ansible_user=…' | --inventory FILE
         --image REF --name APP [--replicas N] [--port P] [--known-hosts LINES | --host-fingerprint SHA256:…] …
       dyce deploy --hosts … | --inventory FILE --playbook PLAYBOOK.yml [--extra-vars 'k=v k2=v2' | '{…}' | @FILE]…
         runs the playbook (check mode with --dry-run); with --image/--name too, the playbook first, then the image
       dyce plan  (same flags: prints the plan, changes nothing)
  many hosts: [--parallel 5] [--serial 1|30%|'1, 50%'] [--max-fail-percentage 0] [--limit PATTERN]
    [--jump-host user@bastion:22 [--jump-known-hosts LINES]] (or ansible_ssh_common_args='-o ProxyJump=…')
  every input of actions/deploy is a flag of the same name; secrets (ssh-private-key, registry-password,
  secret-env, secret-files, secret-extra-vars, ssh-passphrase, jump-private-key, jump-passphrase) come from
  DYCE_<NAME> or --<name>-file PATH|-.
  --json prints the outputs (version, changed, replicas, ...) as JSON on standard output.`;

/** `dyce deploy` and `dyce plan` (a dry run): the action's engine, with the action's inputs as flags. */
export function deployCommand(mode: 'deploy' | 'plan') {
  return async (argv: string[], reporter: CliReporter): Promise<number> => {
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(`${DEPLOY_USAGE}\n`);
      return 0;
    }
    const parsed = parseDeployFlags(argv, reporter);
    if (mode === 'plan') parsed.raw['dry-run'] = 'true';
    const inputs = parseInputs(deploySpec, parsed.raw, deployRules);
    return runDeployCommand(parsed, reporter, async (signal) => {
      const { playbook, deploy: result } = await runDeployInputs(inputs, reporter, { signal });
      if (playbook)
        reporter.info(
          `playbook ${playbook.file}${playbook.check ? ' (check mode)' : ''}: ${playbook.changed ? 'changed' : 'nothing changed'} in ${(playbook.ms / 1000).toFixed(1)}s`,
        );
      if (result)
        reporter.info(
          result.dryRun
            ? `plan for ${result.app} ${result.version}: ${result.hosts.some((h) => h.plan?.changed) ? 'changes' : 'no changes'}`
            : `${result.app} ${result.version}: ${result.changed ? 'deployed' : 'nothing changed'} in ${(result.ms / 1000).toFixed(1)}s`,
        );
    });
  };
}

export type DeployFlags = ReturnType<typeof parseDeployFlags>;

/** The deploy action's inputs as flags (plus --json), every secret among them registered before any output. */
export function parseDeployFlags(argv: string[], reporter: CliReporter) {
  const parsed = parseFlags(deploySpec, argv, { extraBooleans: ['json'] });
  for (const [name, f] of Object.entries(deploySpec.inputs))
    if (f.meta.secret && parsed.raw[name]) reporter.secret(parsed.raw[name]!);
  return parsed;
}

/**
 * Runs a deploy-like command: aborted by SIGINT/SIGTERM, `success` written whatever happens, and the outputs printed
 * as JSON with --json. Exit code 0 when `work` returns; a throw is the caller's error.
 */
export async function runDeployCommand(
  parsed: DeployFlags,
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
    if (parsed.extra.json) process.stdout.write(`${JSON.stringify(reporter.outputs)}\n`);
  }
}
