import { describe, expect, it } from 'vitest';
import { LOCK_HELD } from '../../../src/commands/host-state.js';
import { acquireLock, describeHolder, type LockOptions, newHolder } from '../../../src/deploy/lock.js';
import { RecordingReporter } from '../../../src/github/reporter.js';
import { type ExecResult, RecordingExecutor } from '../../../src/remote/executor.js';

const holder = newHolder('app', 'v2', {
  GITHUB_ACTOR: 'octocat',
  GITHUB_SERVER_URL: 'https://github.com',
  GITHUB_REPOSITORY: 'acme/app',
  GITHUB_RUN_ID: '42',
});
const other = JSON.stringify({ id: 'other', who: 'alice@laptop', version: 'v1', since: '2026-01-01T00:00:00Z' });

/** Answers the lock commands from a script: the n-th take gets answers[n]. */
function host(answers: ExecResult[]) {
  let takes = 0;
  return new RecordingExecutor('vps1', (argv) => {
    const script = argv[2] ?? '';
    if (script.includes('mkdir "$1"')) return answers[Math.min(takes++, answers.length - 1)]!;
    return { code: 0, stdout: '', stderr: '' };
  });
}
const held = (age: number): ExecResult => ({ code: LOCK_HELD, stdout: `${other}\n${age}\n`, stderr: '' });
const ok: ExecResult = { code: 0, stdout: '', stderr: '' };
const noSleep = async () => {};
/** The lock at /l on vps1, taken without waiting and without sudo, unless OVER says otherwise. */
const lockOptions = (over: Partial<LockOptions> = {}): LockOptions => ({
  dir: '/l',
  holder,
  waitMs: 0,
  staleMs: 60_000,
  sudo: false,
  host: 'vps1',
  reporter: new RecordingReporter(),
  sleep: noSleep,
  ...over,
});

describe('deploy lock', () => {
  it('records who holds it, with the run URL', () => {
    expect(holder).toMatchObject({
      who: 'octocat (GitHub Actions)',
      app: 'app',
      version: 'v2',
      run: 'https://github.com/acme/app/actions/runs/42',
    });
    expect(describeHolder(JSON.parse(other))).toBe('alice@laptop deploying v1 since 2026-01-01T00:00:00Z');
  });

  it('sends the holder details on stdin, never in argv', async () => {
    const ex = host([ok]);
    const lock = await acquireLock(ex, lockOptions({ dir: '/s/locks/app.lock', sudo: true }));
    expect(ex.calls[0]!.opts).toMatchObject({ sudo: true, stdin: `${JSON.stringify(holder)}\n` });
    expect(ex.calls[0]!.argv.join(' ')).not.toContain('octocat');
    await lock.release();
    expect(ex.calls.at(-1)!.argv).toContain(holder.id);
  });

  it('waits while another deploy holds it, naming the holder once, then takes it', async () => {
    const ex = host([held(1), held(2), held(3), ok]);
    const reporter = new RecordingReporter();
    const lock = await acquireLock(ex, lockOptions({ waitMs: 60_000, reporter }));
    expect(reporter.lines).toEqual([
      'vps1: waiting for the deploy lock held by alice@laptop deploying v1 since 2026-01-01T00:00:00Z',
    ]);
    expect(ex.calls).toHaveLength(4);
    await lock.release();
  });

  it('gives up after lock-wait with a message naming the holder', async () => {
    const ex = host([held(1)]);
    await expect(acquireLock(ex, lockOptions())).rejects.toThrow(
      'vps1: another deploy of app holds the lock: alice@laptop deploying v1 since 2026-01-01T00:00:00Z; gave up after waiting 0ms (lock-wait)',
    );
  });

  it('reports a stale lock, takes it over (only if still the stale holder), then takes it', async () => {
    const ex = host([held(90), ok]);
    const reporter = new RecordingReporter();
    const lock = await acquireLock(ex, lockOptions({ reporter }));
    expect(reporter.lines[0]).toBe(
      'warning: vps1: the deploy lock of app held by alice@laptop deploying v1 since 2026-01-01T00:00:00Z was not refreshed for 1m30s (lock-stale 1m): taking it over',
    );
    const takeover = ex.calls[1]!.argv;
    expect(takeover.slice(-2)).toEqual(['/l', 'other']);
    await lock.release();
  });

  it('fails on any other exit of the take', async () => {
    const ex = host([{ code: 1, stdout: '', stderr: 'mkdir: Permission denied' }]);
    await expect(acquireLock(ex, lockOptions())).rejects.toThrow(
      'vps1: `take the deploy lock` exited 1: mkdir: Permission denied',
    );
  });
});
