import type { Argv } from './docker.js';

/**
 * Docker commands a rollout needs beyond create/stop/remove, as data (see docker.ts for the conventions).
 */

/** Renames a container (running or not): a rollout moves the old replica out of its name while its successor starts. */
export function dockerRename(from: string, to: string): Argv {
  return ['docker', 'rename', from, to];
}

/** The last LINES lines of a container's log, stdout and stderr interleaved as the container wrote them. */
export function dockerLogsTail(name: string, lines: number): Argv {
  return ['sh', '-c', 'docker logs --tail "$1" "$2" 2>&1', 'sh', String(lines), name];
}
