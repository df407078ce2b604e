import { describe, expect, it } from 'vitest';
import { deployRules, deploySpec } from '../../../src/config/actions/deploy.js';
import { parseInputs, type RawInputs } from '../../../src/config/input-spec.js';
import type { Host } from '../../../src/config/inventory.js';
import { DeployFailed } from '../../../src/deploy/engine.js';
import { runDeploy } from '../../../src/deploy/entry.js';
import { RecordingReporter } from '../../../src/github/reporter.js';
import { UserError } from '../../../src/util/errors.js';

/**
 * The engine's host loop without hosts: every connection fails, so each started host ends `failed` and the
 * schedule, the outputs, the summary and the error can be checked. Which hosts were connected to is recorded.
 */
async function deployUnreachable(extra: RawInputs) {
  const inputs = parseInputs(
    deploySpec,
    {
      hosts: ['a', 'b', 'c', 'd'].map((h, i) => `${h} ansible_host=10.0.0.${i + 1}`).join('\n'),
      'known-hosts': '',
      'insecure-skip-host-key-check': 'true',
      image: 'reg/app:v1',
      name: 'app',
      ...extra,
    },
    deployRules,
  );
  const reporter = new RecordingReporter();
  const connected: string[] = [];
  const error = await runDeploy(inputs, reporter, {
    connect: async (h: Host) => {
      connected.push(h.name);
      throw new UserError(`${h.name}: connection refused`);
    },
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  return {
    error: error as DeployFailed,
    connected,
    outputs: reporter.outputs,
    states: JSON.parse(reporter.outputs['host-states'] ?? '{}') as Record<string, { state: string; error?: string }>,
    summary: reporter.summaries.join('\n'),
  };
}

describe('runDeploy over many hosts', () => {
  it('stops at the first failure by default: the rest are skipped, never connected to, and say why', async () => {
    const r = await deployUnreachable({ parallel: '1' });
    expect(r.connected).toEqual(['a']);
    expect(r.error).toBeInstanceOf(DeployFailed);
    expect(r.error.message).toBe('1 of 4 hosts failed: a; 3 not started (left untouched)');
    expect(r.error.details).toEqual([
      'a: failed: a: connection refused',
      'b: skipped: not started: an earlier host failed (max-fail-percentage 0)',
      'c: skipped: not started: an earlier host failed (max-fail-percentage 0)',
      'd: skipped: not started: an earlier host failed (max-fail-percentage 0)',
    ]);
    expect(r.outputs['failed-hosts']).toBe('a');
    expect(r.states).toEqual({
      a: { state: 'failed', error: 'a: connection refused' },
      b: { state: 'skipped', error: 'not started: an earlier host failed (max-fail-percentage 0)' },
      c: { state: 'skipped', error: 'not started: an earlier host failed (max-fail-percentage 0)' },
      d: { state: 'skipped', error: 'not started: an earlier host failed (max-fail-percentage 0)' },
    });
    expect(r.outputs.changed).toBe('false');
    expect(r.summary).toContain('| a |  |  | none (failed before planning) |');
    expect(r.summary).toContain('| d |  |  | not started |  | skipped |');
  });

  it('keeps starting hosts while the budget holds, then stops', async () => {
    const r = await deployUnreachable({ parallel: '1', 'max-fail-percentage': '50' });
    // a: 25% failed, b: 50% (not more than 50), c: 75% -> stop.
    expect(r.connected).toEqual(['a', 'b', 'c']);
    expect(r.outputs['failed-hosts']).toBe('a,b,c');
    expect(r.states.d?.state).toBe('skipped');
    expect(r.error.message).toBe(
      '3 of 4 hosts failed: a, b, c; 1 not started (left untouched) (more than max-fail-percentage 50% failed)',
    );
  });

  it('starts a whole batch at once; a failed batch keeps the next one from starting', async () => {
    const r = await deployUnreachable({ serial: '2' });
    expect(r.connected.sort()).toEqual(['a', 'b']);
    expect(Object.values(r.states).map((s) => s.state)).toEqual(['failed', 'failed', 'skipped', 'skipped']);
  });

  it('with a budget of 100 every host is tried, and the step still fails', async () => {
    const r = await deployUnreachable({ serial: '1', 'max-fail-percentage': '100' });
    expect(r.connected).toEqual(['a', 'b', 'c', 'd']);
    expect(r.error.message).toBe(
      '4 of 4 hosts failed: a, b, c, d (within max-fail-percentage 100%, the other hosts were deployed)',
    );
  });

  it('one host: its own error, as with a single-host deploy', async () => {
    const r = await deployUnreachable({ limit: 'c' });
    expect(r.error).not.toBeInstanceOf(DeployFailed);
    expect(r.error.message).toBe('c: connection refused');
    expect(r.outputs['failed-hosts']).toBe('c');
  });
});
