import { deployRules, deploySpec, imageDeployInputs } from '../config/actions/deploy.js';
import { parseInputs } from '../config/input-spec.js';
import { readDeployConfig } from '../deploy/config.js';
import { cliRunConnector } from '../deploy/connect.js';
import { runDeploy } from '../deploy/entry.js';
import { findRollbackTarget } from '../deploy/rollback.js';
import { formatDuration } from '../util/duration.js';
import { knownHostsFile, parseDeployFlags, refuseActionOnly, runDeployCommand } from './deploy.js';
import { checkInputs } from './flags.js';
import type { CliReporter } from './reporter.js';

/** Stands for the image while the flags are checked, before the history names the real one. */
const PLACEHOLDER_IMAGE = 'rollback.invalid/placeholder:rollback';

/** `dyce rollback`: the previous version from each host's history, then an ordinary deploy of it (marked a rollback). */
export async function rollbackCommand(argv: string[], reporter: CliReporter): Promise<number> {
  const parsed = parseDeployFlags(argv, reporter, 'rollback');
  refuseActionOnly(parsed);
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
  // One SSH login per host: the history read and the deploy share the run's connections (OpenSSH defaults apply).
  const connect = await cliRunConnector(checked, reporter, knownHostsFile(parsed));
  try {
    // The whole configuration is checked (every host's values) before the first host's history is read.
    const config = await readDeployConfig(checked);
    connect.check(config.hosts.map((h) => h.host));
    const target = await findRollbackTarget(config, connect);
    reporter.info(`${checked.name}: rolling back to ${target.version} (${target.image})`);
    const inputs = imageDeployInputs(
      parseInputs(deploySpec, { ...parsed.raw, image: target.image, version: target.version }, deployRules),
    );
    return await runDeployCommand(reporter, async (signal) => {
      const result = await runDeploy(inputs, reporter, { signal, rollback: true, connect });
      reporter.info(
        `${result.app}: ${result.dryRun ? 'would roll back' : 'rolled back'} to ${result.version} in ${formatDuration(result.ms)}`,
      );
    });
  } finally {
    await connect.close();
  }
}
