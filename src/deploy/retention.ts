import { historyPath, parseHistory, parsePruneOutput, readHistory, recordDeploy } from '../commands/history.js';
import type { Reporter } from '../github/reporter.js';
import { appDir } from '../plan/desired.js';
import type { Executor } from '../remote/executor.js';
import { lastLines } from '../remote/executor.js';
import { errorMessage } from '../util/errors.js';

/**
 * Retention after a successful deploy: the host's history of the app records the image (src/commands/history.ts),
 * and the images beyond `keep-versions` are removed. Never fails the deploy (the replicas already serve): a
 * problem is a warning, and the next deploy tries again.
 */
export async function recordAndPrune(
  h: { name: string; exec: Executor; sudo: boolean; reporter: Reporter },
  o: { stateDir: string; app: string; image: string; version: string; keep: number; rollback: boolean },
): Promise<void> {
  try {
    const r = await h.exec.run(
      recordDeploy({
        path: historyPath(appDir(o.stateDir, o.app)),
        image: o.image,
        version: o.version,
        keep: o.keep,
        mode: o.rollback ? 'rollback' : 'deploy',
      }),
      { sudo: h.sudo, label: 'record the deploy and prune old images', timeoutMs: 120_000 },
    );
    if (r.code !== 0) {
      h.reporter.warning(`${h.name}: could not record the deploy in the host's history: ${lastLines(r.stderr, 3)}`);
      return;
    }
    const p = parsePruneOutput(r.stdout);
    if (p.pruned.length)
      h.reporter.info(`${h.name}: removed images beyond keep-versions ${o.keep}: ${p.pruned.join(', ')}`);
    for (const k of p.kept) h.reporter.warning(`${h.name}: kept the old image ${k.image}: ${k.why}`);
  } catch (error) {
    h.reporter.warning(`${h.name}: could not record the deploy in the host's history: ${errorMessage(error)}`);
  }
}

/** The app's history on one host (empty when Dyce never recorded a deploy there). */
export async function readAppHistory(
  exec: Executor,
  o: { stateDir: string; app: string; sudo: boolean },
): Promise<ReturnType<typeof parseHistory>> {
  const r = await exec.run(readHistory(historyPath(appDir(o.stateDir, o.app))), {
    sudo: o.sudo,
    label: 'read the deploy history',
  });
  return parseHistory(r.stdout);
}
