import { type HistoryEntry, rollbackTarget } from '../commands/history.js';
import { deployRules, deploySpec, imageDeployInputs } from '../config/actions/deploy.js';
import { parseInputs } from '../config/input-spec.js';
import { resolveAccess } from '../deploy/access.js';
import { connector, readTargetHosts } from '../deploy/connect.js';
import { runDeploy } from '../deploy/engine.js';
import { readAppHistory } from '../deploy/retention.js';
import { UserError } from '../util/errors.js';
import { parseDeployFlags, runDeployCommand } from './deploy.js';
import type { CliReporter } from './reporter.js';

export const ROLLBACK_USAGE = `usage: dyce rollback --hosts … | --inventory FILE --name APP [the deploy's other flags]
  goes back one version: redeploys the version that ran before the current one, as the hosts' deploy history
  records it (the last keep-versions images are kept on each host), through the same rolling path as a deploy.
  A second rollback goes one version further back. Give the same flags as \`dyce deploy\` except --image and
  --version: they come from the history.`;

/** Stands for the image while the flags are checked, before the history names the real one. */
const PLACEHOLDER_IMAGE = 'rollback.invalid/placeholder:rollback';

/** `dyce rollback`: the previous version from each host's history, then an ordinary deploy of it (marked a rollback). */
export async function rollbackCommand(argv: string[], reporter: CliReporter): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${ROLLBACK_USAGE}\n`);
    return 0;
  }
  const parsed = parseDeployFlags(argv, reporter);
  for (const name of ['image', 'version'])
    if (parsed.raw[name] !== undefined)
      throw new UserError(
        `dyce rollback takes --${name} from the hosts' deploy history: drop it (to deploy a given version, use dyce deploy --version)`,
      );
  const checked = imageDeployInputs(parseInputs(deploySpec, { ...parsed.raw, image: PLACEHOLDER_IMAGE }, deployRules));
  const target = await findTarget(checked, reporter);
  reporter.info(`${checked.name}: rolling back to ${target.version} (${target.image})`);
  const inputs = imageDeployInputs(
    parseInputs(deploySpec, { ...parsed.raw, image: target.image, version: target.version }, deployRules),
  );
  return runDeployCommand(parsed, reporter, async (signal) => {
    const result = await runDeploy(inputs, reporter, { signal, rollback: true });
    reporter.info(
      `${result.app}: ${result.dryRun ? 'would roll back' : 'rolled back'} to ${result.version} in ${(result.ms / 1000).toFixed(1)}s`,
    );
  });
}

/** Reads the app's history on every target host; they must agree on the version to go back to. */
async function findTarget(inputs: ReturnType<typeof imageDeployInputs>, reporter: CliReporter): Promise<HistoryEntry> {
  const hosts = await readTargetHosts(inputs);
  const connect = connector(inputs, reporter);
  const targets: { host: string; target: HistoryEntry | undefined; current: string | undefined }[] = [];
  for (const host of hosts) {
    const exec = await connect(host);
    try {
      const access = await resolveAccess(exec, host);
      const entries = await readAppHistory(exec, { stateDir: access.stateDir, app: inputs.name, sudo: access.sudo });
      targets.push({ host: host.name, target: rollbackTarget(entries), current: entries.at(-1)?.version });
    } finally {
      await exec.close().catch(() => {});
    }
  }
  const missing = targets.filter((t) => !t.target);
  if (missing.length)
    throw new UserError(
      `no earlier version of ${inputs.name} to roll back to on ${missing.map((t) => `${t.host} (${t.current ? `only ${t.current} is recorded` : 'no deploy recorded'})`).join(', ')}; nothing was changed`,
    );
  const images = new Set(targets.map((t) => t.target!.image));
  if (images.size > 1)
    throw new UserError(
      `the hosts disagree on the previous version of ${inputs.name}: ${targets.map((t) => `${t.host}: ${t.target!.version}`).join(', ')}; roll back host by host (--limit) or deploy a version (dyce deploy --version); nothing was changed`,
    );
  return targets[0]!.target!;
}
