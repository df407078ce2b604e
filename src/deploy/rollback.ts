import { type HistoryEntry, rollbackTarget } from '../commands/history.js';
import { UserError } from '../util/errors.js';
import { resolveAccess } from './access.js';
import type { DeployConfig } from './config.js';
import type { Connect } from './connect.js';
import { readAppHistory } from './retention.js';

/**
 * `dyce rollback`'s target: reads the app's deploy history on every host of the config (one connection each,
 * nothing changed) and returns the version before the current one. The hosts must agree on it; otherwise, or when
 * a host has no earlier version, a UserError says which hosts and what they recorded.
 */
export async function findRollbackTarget(config: DeployConfig, connect: Connect): Promise<HistoryEntry> {
  const app = config.app.app;
  const targets: { host: string; target: HistoryEntry | undefined; current: string | undefined }[] = [];
  for (const { host } of config.hosts) {
    const exec = await connect(host);
    try {
      const access = await resolveAccess(exec, host);
      const entries = await readAppHistory(exec, { stateDir: access.stateDir, app, sudo: access.sudo });
      targets.push({ host: host.name, target: rollbackTarget(entries), current: entries.at(-1)?.version });
    } finally {
      await exec.close().catch(() => {});
    }
  }
  const missing = targets.filter((t) => !t.target);
  if (missing.length)
    throw new UserError(
      `no earlier version of ${app} to roll back to on ${missing.map((t) => `${t.host} (${t.current ? `only ${t.current} is recorded` : 'no deploy recorded'})`).join(', ')}; nothing was changed`,
    );
  const images = new Set(targets.map((t) => t.target!.image));
  if (images.size > 1)
    throw new UserError(
      `the hosts disagree on the previous version of ${app}: ${targets.map((t) => `${t.host}: ${t.target!.version}`).join(', ')}; roll back host by host (--limit) or deploy a version (dyce deploy --version); nothing was changed`,
    );
  return targets[0]!.target!;
}
