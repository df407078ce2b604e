import type { Argv } from './docker.js';

/**
 * Docker commands a rollout needs beyond create/stop/remove, as data (see docker.ts for the conventions).
 */

/** The last LINES lines of a container's log, stdout and stderr interleaved as the container wrote them. */
export function dockerLogsTail(name: string, lines: number): Argv {
  return ['sh', '-c', 'docker logs --tail "$1" "$2" 2>&1', 'sh', String(lines), name];
}

/** Exit code of awaitNoConnections when `ss` (iproute2) is not on the host. */
export const NO_SS = 9;

/** Exit code of awaitNoConnections when the containers to stop once drained could not be stopped or removed. */
export const STOP_FAILED = 41;

/** What awaitNoConnections prints on its last line once it stopped and removed the containers. */
export const STOPPED = 'stopped';

/**
 * Waits on the host, at most about MAX_MS, until no established TCP connection goes to any of PORTS (the proxy's
 * connections to replicas that left the upstream), polling every 50ms; prints the last count (0: drained). One
 * round trip however long it polls; the caller repeats it in short chunks so that a cancellation is seen quickly.
 * With STOP (container names): once drained, and only then, stops them (one `docker stop`, in parallel) and removes
 * them in the same round trip, printing STOPPED (exit STOP_FAILED when that fails). The filter is built from numbers
 * only.
 */
export function awaitNoConnections(ports: readonly number[], maxMs: number, stop: readonly string[] = []): Argv {
  for (const p of ports) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new RangeError(`invalid port ${p}`);
  const filter = `( ${ports.map((p) => `dport = :${p}`).join(' or ')} )`;
  return [
    'sh',
    '-c',
    [
      `command -v ss >/dev/null 2>&1 || exit ${NO_SS}`,
      'f="$1"; m="$2"; shift 2',
      'i=0',
      'while :; do',
      '  n=$(ss -Htn state established "$f" | wc -l)',
      '  [ "$n" -eq 0 ] || [ "$i" -ge "$m" ] && break',
      // Fractional sleep is GNU and busybox, not POSIX: a host without it polls every second.
      '  sleep 0.05 2>/dev/null || sleep 1',
      '  i=$((i + 1))',
      'done',
      'echo "$n"',
      '[ "$n" -eq 0 ] && [ $# -gt 0 ] || exit 0',
      `docker stop "$@" >/dev/null && docker rm "$@" >/dev/null || exit ${STOP_FAILED}`,
      `echo ${STOPPED}`,
    ].join('\n'),
    'sh',
    filter,
    String(Math.max(0, Math.ceil(maxMs / 50))),
    ...stop,
  ];
}

/** Exit code of retireAndRun when the rename failed: nothing was changed. */
export const RETIRE_FAILED = 40;

/**
 * Renames the old replica FROM out of its name (to TO) and runs its successor (RUN, a `docker run -d` argv that
 * takes the freed name), in one round trip. Exits RETIRE_FAILED when the rename failed (nothing was started);
 * otherwise with docker run's status, printing the new container's id.
 */
export function retireAndRun(from: string, to: string, run: Argv): Argv {
  return ['sh', '-c', `docker rename "$1" "$2" || exit ${RETIRE_FAILED}\nshift 2\nexec "$@"`, 'sh', from, to, ...run];
}

/**
 * Gives a retired replica its name back (a rollback). A retired name that does not exist means the rename never
 * happened (it failed, or the deploy stopped before it): nothing to restore.
 */
export function restoreName(from: string, to: string): Argv {
  return [
    'sh',
    '-c',
    'docker inspect --format x "$1" >/dev/null 2>&1 || exit 0\ndocker rename "$1" "$2"',
    'sh',
    from,
    to,
  ];
}

/**
 * A rollback's removal of new replicas: each NAME with the name its predecessor was retired to (empty for a new
 * slot). When that retired name does not exist, the rename never happened (e.g. the connection was lost before
 * retireAndRun ran), so NAME is still the old replica: it is left alone. Missing containers are fine. Exits 1 when
 * a removal failed (stderr says why).
 */
export function removeNewReplicas(pairs: readonly { name: string; retired?: string }[]): Argv {
  return [
    'sh',
    '-c',
    [
      'rc=0',
      'while [ $# -gt 1 ]; do',
      '  n=$1; r=$2; shift 2',
      '  if [ -n "$r" ] && ! docker inspect --format x "$r" >/dev/null 2>&1; then continue; fi',
      '  out=$(docker rm -f "$n" 2>&1) || case $out in *"No such container"*) ;; *) printf "%s\\n" "$out" >&2; rc=1 ;; esac',
      'done',
      'exit $rc',
    ].join('\n'),
    'sh',
    ...pairs.flatMap((p) => [p.name, p.retired ?? '']),
  ];
}

/**
 * Stops the containers (one `docker stop`: Docker stops them in parallel, each within its stop timeout) and
 * removes them, in one round trip.
 */
export function stopAndRemove(names: readonly string[]): Argv {
  return ['sh', '-c', 'docker stop "$@" >/dev/null && docker rm "$@" >/dev/null', 'sh', ...names];
}
