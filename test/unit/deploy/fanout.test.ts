import { describe, expect, it } from 'vitest';
import { batchSizes, budgetExceeded, fanOut, parseSerial } from '../../../src/deploy/fanout.js';

describe('parseSerial', () => {
  it('reads numbers, percentages and lists', () => {
    expect(parseSerial('1')).toEqual([{ kind: 'count', n: 1 }]);
    expect(parseSerial(' 30% ')).toEqual([{ kind: 'percent', p: 30 }]);
    expect(parseSerial('1, 50%')).toEqual([
      { kind: 'count', n: 1 },
      { kind: 'percent', p: 50 },
    ]);
  });
  it('refuses zero, fractions, words and percentages over 100', () => {
    for (const bad of ['0', '1.5', 'all', '101%', '-1', '', '0%'])
      expect(parseSerial(bad), bad).toHaveProperty('error');
  });
});

describe('batchSizes', () => {
  it('is one batch of every host without serial', () => {
    expect(batchSizes(undefined, 3)).toEqual([3]);
    expect(batchSizes(undefined, 0)).toEqual([]);
  });
  it('cuts by count, the last size repeating', () => {
    expect(batchSizes([{ kind: 'count', n: 1 }], 3)).toEqual([1, 1, 1]);
    expect(batchSizes([{ kind: 'count', n: 2 }], 5)).toEqual([2, 2, 1]);
    expect(batchSizes([{ kind: 'count', n: 10 }], 3)).toEqual([3]);
  });
  it('takes percentages of all hosts, rounded down, at least one', () => {
    expect(batchSizes([{ kind: 'percent', p: 30 }], 10)).toEqual([3, 3, 3, 1]);
    expect(batchSizes([{ kind: 'percent', p: 10 }], 3)).toEqual([1, 1, 1]);
    expect(batchSizes([{ kind: 'percent', p: 100 }], 4)).toEqual([4]);
  });
  it('runs a canary first with a list', () => {
    expect(batchSizes(parseSerial('1, 50%') as never, 7)).toEqual([1, 3, 3]);
  });
});

describe('budgetExceeded', () => {
  it('with 0 any failure exceeds; otherwise more than the share of all hosts', () => {
    expect(budgetExceeded(0, 3, 0)).toBe(false);
    expect(budgetExceeded(1, 3, 0)).toBe(true);
    expect(budgetExceeded(1, 3, 50)).toBe(false);
    expect(budgetExceeded(2, 4, 50)).toBe(false);
    expect(budgetExceeded(3, 4, 50)).toBe(true);
    expect(budgetExceeded(3, 3, 100)).toBe(false);
  });
});

/** Fake hosts: each task resolves when the test says so, and the log records starts and ends. */
function fakeHosts(names: string[]) {
  const log: string[] = [];
  let running = 0;
  let peak = 0;
  const pending = new Map<string, (ok: boolean) => void>();
  const work = (h: string) =>
    new Promise<{ host: string; ok: boolean }>((resolve) => {
      running++;
      peak = Math.max(peak, running);
      log.push(`start ${h}`);
      pending.set(h, (ok) => {
        running--;
        log.push(`end ${h}`);
        resolve({ host: h, ok });
      });
    });
  const tick = () => new Promise((r) => setTimeout(r, 0));
  return {
    log,
    peak: () => peak,
    work,
    started: () => [...pending.keys()],
    /** Ends a host once it has started. */
    async finish(h: string, ok = true) {
      for (let i = 0; i < 50 && !pending.has(h); i++) await tick();
      const f = pending.get(h);
      if (!f) throw new Error(`${h} never started (log: ${log.join(', ')})`);
      f(ok);
      await tick();
    },
    names,
  };
}

const failedOf = (r: { ok: boolean }) => !r.ok;

describe('fanOut', () => {
  it('runs at most `parallel` hosts at a time, starting the next as soon as one ends', async () => {
    const f = fakeHosts(['a', 'b', 'c', 'd', 'e']);
    const done = fanOut(f.names, { parallel: 2, maxFailPercentage: 0 }, f.work, failedOf);
    await f.finish('b');
    expect(f.log).toEqual(['start a', 'start b', 'end b', 'start c']);
    for (const h of ['a', 'c', 'd', 'e']) await f.finish(h);
    const r = await done;
    expect(f.peak()).toBe(2);
    expect(r.runs.map((x) => x.status)).toEqual(['done', 'done', 'done', 'done', 'done']);
    expect(r.stopped).toBeUndefined();
  });

  it('starts every host of a batch at once when parallel allows', async () => {
    const f = fakeHosts(['a', 'b', 'c']);
    const done = fanOut(f.names, { parallel: 5, maxFailPercentage: 0 }, f.work, failedOf);
    await f.finish('a');
    expect(f.log.slice(0, 3)).toEqual(['start a', 'start b', 'start c']);
    await f.finish('b');
    await f.finish('c');
    expect((await done).batches).toEqual([3]);
  });

  it('serial 1: the next host starts only after the previous one ended; a failure skips the rest', async () => {
    const f = fakeHosts(['vps1', 'vps2', 'vps3']);
    const done = fanOut(
      f.names,
      { parallel: 5, serial: [{ kind: 'count', n: 1 }], maxFailPercentage: 0 },
      f.work,
      failedOf,
    );
    await f.finish('vps1');
    expect(f.log).toEqual(['start vps1', 'end vps1', 'start vps2']);
    await f.finish('vps2', false);
    const r = await done;
    expect(f.log).not.toContain('start vps3');
    expect(r.runs.map((x) => x.status)).toEqual(['done', 'done', 'skipped']);
    expect(r.runs[2]).toEqual({ status: 'skipped', batch: 2, reason: 'budget' });
    expect(r.failed).toBe(1);
    expect(r.stopped).toBe('budget');
  });

  it('within the budget, later batches still start', async () => {
    const f = fakeHosts(['a', 'b', 'c']);
    const done = fanOut(
      f.names,
      { parallel: 5, serial: [{ kind: 'count', n: 1 }], maxFailPercentage: 50 },
      f.work,
      failedOf,
    );
    await f.finish('a', false);
    await f.finish('b');
    await f.finish('c');
    const r = await done;
    expect(r.runs.map((x) => x.status)).toEqual(['done', 'done', 'done']);
    expect(r.failed).toBe(1);
    expect(r.stopped).toBeUndefined();
  });

  it('over the budget, hosts queued in the same batch do not start; running ones finish', async () => {
    const f = fakeHosts(['a', 'b', 'c', 'd']);
    const done = fanOut(f.names, { parallel: 2, maxFailPercentage: 0 }, f.work, failedOf);
    await f.finish('a', false);
    expect(f.log).toEqual(['start a', 'start b', 'end a']);
    await f.finish('b');
    const r = await done;
    expect(r.runs.map((x) => x.status)).toEqual(['done', 'done', 'skipped', 'skipped']);
  });

  it('a task that throws counts as failed', async () => {
    const r = await fanOut(
      ['a', 'b'],
      { parallel: 1, maxFailPercentage: 0 },
      async (h) => {
        if (h === 'a') throw new Error('boom');
        return { ok: true };
      },
      failedOf,
    );
    expect(r.runs[0]).toMatchObject({ status: 'error' });
    expect(r.runs[1]).toMatchObject({ status: 'skipped' });
  });

  it('once cancelled, no host starts', async () => {
    const ac = new AbortController();
    const f = fakeHosts(['a', 'b', 'c']);
    const done = fanOut(f.names, { parallel: 1, maxFailPercentage: 100, signal: ac.signal }, f.work, failedOf);
    ac.abort();
    await f.finish('a');
    const r = await done;
    expect(r.runs.map((x) => x.status)).toEqual(['done', 'skipped', 'skipped']);
    expect(r.stopped).toBe('cancelled');
  });
});
