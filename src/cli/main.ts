import { errorMessage, isUserError } from '../util/errors.js';
import { CliReporter } from './reporter.js';

const USAGE = `dyce: deploy a release to your own VPS

usage:
  dyce lab up [--hosts N]     bring up the lab: a disposable VPS on this machine (dockerd, registry, sshd, nginx)
  dyce lab down               stop everything the lab started, and nothing else
  dyce lab status             what is running
  dyce lab env [--json]       hosts, ports, users, key path, known_hosts line, registry credentials
  dyce build [CONTEXT] --image REPO …   build and push an image like the build-push action (dyce build --help)
  dyce deploy --hosts … --image REF --name APP [--replicas N] …   run replicas on your hosts (dyce deploy --help)
  dyce plan …                 the same flags: print what deploy would do, change nothing
  dyce rollback …             the same flags without --image: go back one version, from the hosts' deploy history
  dyce probe URL... [--json]  probe URLs like the probe action (conditions, retries, TLS, alerts; dyce probe --help)
  dyce play -i HOSTS PLAYBOOK [-e VARS]... [--check] [--json]  run an Ansible playbook on Dyce's engine (dyce play --help)

Secrets are never taken as flag values: use DYCE_<NAME>, --<name>-file PATH or --<name>-file - (stdin).`;

export type Command = (argv: string[], reporter: CliReporter) => Promise<number>;

// Each command is loaded only when it runs: a no-op `dyce deploy` should not pay for parsing the playbook engine.
const commands: Record<string, () => Promise<Command>> = {
  lab: async () => (await import('./lab.js')).labCommand,
  play: async () => (await import('./play.js')).playCommand,
  build: async () => (await import('./build.js')).buildCommand,
  deploy: async () => (await import('./deploy.js')).deployCommand('deploy'),
  plan: async () => (await import('./deploy.js')).deployCommand('plan'),
  rollback: async () => (await import('./rollback.js')).rollbackCommand,
  probe: async () => (await import('./probe.js')).probeCommand,
};

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return cmd ? 0 : 2;
  }
  const load = commands[cmd];
  if (!load) {
    process.stderr.write(`dyce: unknown command "${cmd}"\n\n${USAGE}\n`);
    return 2;
  }
  const reporter = new CliReporter().install();
  try {
    const run = await load();
    return await run(rest, reporter);
  } catch (error) {
    if (isUserError(error)) {
      reporter.error(error.message + (error.details.length ? `\n${error.details.join('\n')}` : ''));
      return 1;
    }
    process.stderr.write(
      `dyce: internal error: ${error instanceof Error ? (error.stack ?? errorMessage(error)) : String(error)}\n`,
    );
    return 70;
  }
}

process.exitCode = await main(process.argv.slice(2));
