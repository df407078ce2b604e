import { historyPath, parseHistory, parsePruneOutput, readHistory, recordDeploy } from '../commands/history.js';
import type { Reporter } from '../github/reporter.js';
import { appDir } from '../plan/desired.js';
import type { Executor } from '../remote/executor.js';
import { lastLines } from '../remote/executor.js';

export interface RecordHost {
  name: string;
  exec: Executor;
  sudo: boolean;
  reporter: Reporter;
}

export interface RecordOptions {
  stateDir: string;
  app: string;
  image: string;
  version: string;
  keep: number;
  rollback: boolean;
}

/** Pure: the command recordAndPrune runs (the deploy's end may run it in the same round trip as the audit). */
export function recordArgv(o: RecordOptions): string[] {
  return recordDeploy({
    path: historyPath(appDir(o.stateDir, o.app)),
    image: o.image,
    version: o.version,
    keep: o.keep,
    mode: o.rollback ? 'rollback' : 'deploy',
  });
}

/** Reports what recordArgv did (warnings only: retention never fails a deploy). */
export function reportRecord(
  h: Pick<RecordHost, 'name' | 'reporter'>,
  o: Pick<RecordOptions, 'keep'>,
  r: { code: number; stdout: string; stderr: string },
): void {
  if (r.code !== 0) {
    h.reporter.warning(`${h.name}: could not record the deploy in the host's history: ${lastLines(r.stderr, 3)}`);
    return;
  }
  const p = parsePruneOutput(r.stdout);
  if (p.pruned.length)
    h.reporter.info(`${h.name}: removed images beyond keep-versions ${o.keep}: ${p.pruned.join(', ')}`);
  for (const k of p.kept) h.reporter.warning(`${h.name}: kept the old image ${k.image}: ${k.why}`);
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
