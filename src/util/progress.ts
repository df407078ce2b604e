/**
 * Progress for long waits: `fn` runs at most once per `everyMs`, the first time `everyMs` after the start (a wait that
 * ends sooner prints nothing). Returns the callback to call on every event of the wait (e.g. each health check).
 */
export function everyFewSeconds<A extends unknown[]>(
  everyMs: number,
  fn: (elapsedMs: number, ...args: A) => void,
  now: () => number = () => performance.now(),
): (...args: A) => void {
  const started = now();
  let last = started;
  return (...args: A) => {
    const t = now();
    if (t - last < everyMs) return;
    last = t;
    fn(t - started, ...args);
  };
}

/** How often a wait of `totalMs` reports: a quarter of it, from 1 s to 5 s. */
export function progressInterval(totalMs: number): number {
  return Math.min(5_000, Math.max(1_000, Math.round(totalMs / 4)));
}
