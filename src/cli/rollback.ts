import { type HistoryEntry, rollbackTarget } from '../commands/history.js';
import { deployRules, deploySpec, imageDeployInputs } from '../config/actions/deploy.js';
import { parseInputs } from '../config/input-spec.js';
import { resolveAccess } from '../deploy/access.js';
import { connector, readTargetHosts } from '../deploy/connect.js';
import { runDeploy } from '../deploy/entry.js';
import { readAppHistory } from '../deploy/retention.js';
import { formatDuration } from '../util/duration.js';
import { UserError } from '../util/errors.js';
import { parseDeployFlags, runDeployCommand } from './deploy.js';
import { checkInputs } from './flags.js';
import type { CliReporter } from './reporter.js';

/** Stands for the image while the flags are checked, before the history names the real one. */
const PLACEHOLDER_IMAGE = 'rollback.invalid/placeholder:rollback';

/** `dyce rollback`: the previous version from each host's history, then an ordinary deploy of it (marked a rollback). */
export async function rollbackCommand(argv: string[], reporter: CliReporter): Promise<number> {
  const parsed = parseDeployFlags(argv, reporter, 'rollback');
  for (const name of ['image', 'version'])
    if (parsed.raw[name] !== undefined)
      parsed.issues.push(
        `dyce rollback takes --${name} from the hosts' deploy history: drop it (to deploy a given version, use dyce deploy --version)`,
      );
  const checked = imageDeployInputs(
    checkInputs(deploySpec, { ...parsed, raw: { ...parsed.raw, image: PLACEHOLDER_IMAGE } }, deployRules, {
      command: 'rollback',
    }),
  );
  const target = await findTarget(checked, reporter);
  reporter.info(`${checked.name}: rolling back to ${target.version} (${target.image})`);
  const inputs = imageDeployInputs(
    parseInputs(deploySpec, { ...parsed.raw, image: target.image, version: target.version }, deployRules),
  );
  return runDeployCommand(reporter, async (signal) => {
    const result = await runDeploy(inputs, reporter, { signal, rollback: true });
    reporter.info(
      `${result.app}: ${result.dryRun ? 'would roll back' : 'rolled back'} to ${result.version} in ${formatDuration(result.ms)}`,
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
