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

/** Exit code of countConnections when `ss` (iproute2) is not on the host. */
export const NO_SS = 9;

/**
 * Prints how many established TCP connections go to any of PORTS on the host (the proxy's connections to replicas
 * that left the upstream): a drain ends when this reaches 0. The filter is built from numbers only.
 */
export function countConnections(ports: readonly number[]): Argv {
  for (const p of ports) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new RangeError(`invalid port ${p}`);
  const filter = `( ${ports.map((p) => `dport = :${p}`).join(' or ')} )`;
  return [
    'sh',
    '-c',
    `command -v ss >/dev/null 2>&1 || exit ${NO_SS}; ss -Htn state established "$1" | wc -l`,
    'sh',
    filter,
  ];
}
