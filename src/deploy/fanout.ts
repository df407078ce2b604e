/**
 * Many hosts: which hosts run together and when the run stops starting hosts. No I/O here; the engine passes
 * the per-host work in as a function, so the schedule can be tested with fake tasks.
 *
 * - `serial` cuts the hosts into batches (sizes as numbers or percentages of all hosts, Ansible's `serial`;
 *   a list like `1, 50%` is a canary batch of one host, then batches of half the hosts: the last size repeats);
 * - inside a batch, at most `parallel` hosts run at a time;
 * - after each host ends, the failure budget is checked: once more than `max-fail-percentage` of ALL selected
 *   hosts have failed, no host starts any more (hosts already running finish). A later batch starts only when
 *   the budget still holds after the previous batch;
 * - hosts never started end as `skipped`: nothing was done to them, not even a connection.
 */

export type SerialSize = { kind: 'count'; n: number } | { kind: 'percent'; p: number };

/** Parses `serial`: `3`, `30%`, or a list of those (`1, 50%`). Returns the issue text on a bad value. */
export function parseSerial(text: string): SerialSize[] | { error: string } {
  const parts = text
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean);
  if (parts.length === 0) return { error: 'must be a number of hosts or a percentage (e.g. 1, 30% or "1, 50%")' };
  const sizes: SerialSize[] = [];
  for (const p of parts) {
    const m = /^(\d+)(%?)$/.exec(p);
    const n = m ? Number(m[1]) : Number.NaN;
    if (!m || n < 1 || (m[2] && n > 100))
      return {
        error: `each batch size must be a whole number ≥ 1 or a percentage 1%..100%, got ${JSON.stringify(p)}`,
      };
    sizes.push(m[2] ? { kind: 'percent', p: n } : { kind: 'count', n });
  }
  return sizes;
}

/**
 * The batch sizes for `total` hosts. A percentage is of all hosts, rounded down but at least 1 (as in Ansible);
 * the last size repeats until every host has a batch. No `serial`: one batch of every host.
 */
export function batchSizes(serial: readonly SerialSize[] | undefined, total: number): number[] {
  if (total <= 0) return [];
  if (!serial || serial.length === 0) return [total];
  const out: number[] = [];
  let left = total;
  for (let k = 0; left > 0; k++) {
    const s = serial[Math.min(k, serial.length - 1)]!;
    const size = s.kind === 'count' ? s.n : Math.max(1, Math.floor((total * s.p) / 100));
    const take = Math.min(size, left);
    out.push(take);
    left -= take;
  }
  return out;
}

/** True once more than `maxFailPercentage` percent of `total` hosts have failed (0: any failure). */
export function budgetExceeded(failed: number, total: number, maxFailPercentage: number): boolean {
  return failed > 0 && failed * 100 > maxFailPercentage * total;
}

export interface FanOutOptions {
  /** Hosts running at the same time (≥ 1). */
  parallel: number;
  serial?: readonly SerialSize[] | undefined;
  /** 0..100; 0 stops starting hosts at the first failure. */
  maxFailPercentage: number;
  /** Once aborted, no host starts (the running ones are told through their own signal by the caller). */
  signal?: AbortSignal | undefined;
}

export type HostRun<R> =
  | { status: 'done'; value: R; batch: number }
  | { status: 'error'; error: unknown; batch: number }
  | { status: 'skipped'; batch: number; reason: 'budget' | 'cancelled' };

export interface FanOutResult<R> {
  /** One entry per host, in the order given. */
  runs: HostRun<R>[];
  batches: number[];
  failed: number;
  /** Why hosts were skipped, if they were. */
  stopped?: 'budget' | 'cancelled';
}

/**
 * Runs `work` for every host under the schedule above. `failed(value)` says whether a finished host counts
 * against the budget (a rejected promise always does). Never rejects.
 */
export async function fanOut<H, R>(
  hosts: readonly H[],
  opts: FanOutOptions,
  work: (host: H, index: number) => Promise<R>,
  failed: (value: R) => boolean,
): Promise<FanOutResult<R>> {
  const parallel = Math.max(1, Math.floor(opts.parallel));
  const batches = batchSizes(opts.serial, hosts.length);
  const runs: (HostRun<R> | undefined)[] = hosts.map(() => undefined);
  const result: FanOutResult<R> = { runs: [], batches, failed: 0 };
  const stopReason = (): 'budget' | 'cancelled' | undefined =>
    opts.signal?.aborted
      ? 'cancelled'
      : budgetExceeded(result.failed, hosts.length, opts.maxFailPercentage)
        ? 'budget'
        : undefined;

  let start = 0;
  for (let b = 0; b < batches.length; b++) {
    const end = start + batches[b]!;
    let next = start;
    const worker = async (): Promise<void> => {
      for (;;) {
        if (next >= end) return;
        const reason = stopReason();
        if (reason) {
          result.stopped ??= reason;
          return;
        }
        const k = next++;
        try {
          const value = await work(hosts[k]!, k);
          runs[k] = { status: 'done', value, batch: b };
          if (failed(value)) result.failed++;
        } catch (error) {
          runs[k] = { status: 'error', error, batch: b };
          result.failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, end - start) }, worker));
    start = end;
    const reason = stopReason();
    if (reason) {
      result.stopped ??= reason;
      break;
    }
  }
  const batchOf = (k: number): number => {
    let acc = 0;
    for (let b = 0; b < batches.length; b++) {
      acc += batches[b]!;
      if (k < acc) return b;
    }
    return batches.length - 1;
  };
  result.runs = runs.map((r, k) => r ?? { status: 'skipped', batch: batchOf(k), reason: result.stopped ?? 'budget' });
  return result;
}
