import { describe, expect, it } from 'vitest';
import { everyFewSeconds, progressInterval } from '../../../src/util/progress.js';

describe('everyFewSeconds', () => {
  it('reports at most once per interval, the first time one interval after the start, with the time waited', () => {
    let t = 1_000;
    const lines: string[] = [];
    const tick = everyFewSeconds(
      5_000,
      (ms, n: number) => lines.push(`${n}@${ms}`),
      () => t,
    );
    for (const at of [1_200, 3_000, 6_000, 6_500, 10_999, 11_000, 20_000]) {
      t = at;
      tick(at);
    }
    expect(lines).toEqual(['6000@5000', '11000@10000', '20000@19000']);
  });

  it('a wait shorter than the interval prints nothing', () => {
    let t = 0;
    const lines: number[] = [];
    const tick = everyFewSeconds(
      1_000,
      (ms) => lines.push(ms),
      () => t,
    );
    t = 999;
    tick();
    expect(lines).toEqual([]);
  });

  it('reports every quarter of the wait, from 1 s to 5 s', () => {
    expect([progressInterval(60_000), progressInterval(8_000), progressInterval(2_000)]).toEqual([5_000, 2_000, 1_000]);
  });
});
