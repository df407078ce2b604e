import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bothInOneRoundTrip, splitFirstOutput } from '../../../src/commands/host-state.js';
import {
  awaitNoConnections,
  RETIRE_FAILED,
  removeNewReplicas,
  restoreName,
  retireAndRun,
  STOP_FAILED,
  STOPPED,
} from '../../../src/commands/replica.js';
import { runLocal } from '../../../src/remote/local.js';

/**
 * The rollout's combined scripts, run by a real shell against a stand-in `docker` on PATH that logs its argv and
 * fails the subcommands named in $FAIL (a docker daemon is not needed to check the scripts' control flow).
 */
let dir: string;
let log: string;
const env = (fail = '') => ({ ...process.env, PATH: `${dir}:${process.env.PATH}`, FAIL: fail, DOCKER_LOG: log });
const calls = () => readFileSync(log, 'utf8').trim().split('\n').filter(Boolean);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dyce-replica-'));
  log = join(dir, 'log');
  writeFileSync(
    join(dir, 'docker'),
    '#!/bin/sh\necho "$*" >> "$DOCKER_LOG"\ncase " $FAIL " in *" $1 "*) echo "docker $1 failed" >&2; exit 1;; esac\n[ "$1" = run ] && echo newid\nexit 0\n',
  );
  chmodSync(join(dir, 'docker'), 0o755);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('retireAndRun', () => {
  it('renames, then runs in the same round trip, printing the id', async () => {
    writeFileSync(log, '');
    const r = await runLocal(retireAndRun('web1', 'web1-old-abc', ['docker', 'run', '-d', '--name', 'web1', 'img']), {
      env: env(),
    });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('newid');
    expect(calls()).toEqual(['rename web1 web1-old-abc', 'run -d --name web1 img']);
  });

  it('a failed rename exits RETIRE_FAILED and starts nothing', async () => {
    writeFileSync(log, '');
    const r = await runLocal(retireAndRun('web1', 'web1-old-abc', ['docker', 'run', '-d', 'img']), {
      env: env('rename'),
    });
    expect(r.code).toBe(RETIRE_FAILED);
    expect(calls()).toEqual(['rename web1 web1-old-abc']);
  });

  it('a failed run keeps its own exit status (the rename happened)', async () => {
    writeFileSync(log, '');
    const r = await runLocal(retireAndRun('web1', 'web1-old-abc', ['docker', 'run', '-d', 'img']), {
      env: env('run'),
    });
    expect(r.code).toBe(1);
    expect(calls()).toEqual(['rename web1 web1-old-abc', 'run -d img']);
  });
});

describe('removeNewReplicas', () => {
  it('removes new replicas, but never a name whose predecessor was not renamed (it is still the old replica)', async () => {
    writeFileSync(log, '');
    const r = await runLocal(removeNewReplicas([{ name: 'web1', retired: 'web1-old-a' }, { name: 'web3' }]), {
      env: env(),
    });
    expect(r.code).toBe(0);
    expect(calls()).toEqual(['inspect --format x web1-old-a', 'rm -f web1', 'rm -f web3']);
    writeFileSync(log, '');
    // `inspect` fails: web1-old-a does not exist, so web1 was never renamed.
    expect(
      (await runLocal(removeNewReplicas([{ name: 'web1', retired: 'web1-old-a' }]), { env: env('inspect') })).code,
    ).toBe(0);
    expect(calls()).toEqual(['inspect --format x web1-old-a']);
    expect((await runLocal(removeNewReplicas([{ name: 'web3' }]), { env: env('rm') })).code).toBe(1);
  });
});

describe('restoreName', () => {
  it('renames back when the retired name exists, and does nothing when it does not', async () => {
    writeFileSync(log, '');
    expect((await runLocal(restoreName('web1-old-abc', 'web1'), { env: env() })).code).toBe(0);
    expect(calls()).toEqual(['inspect --format x web1-old-abc', 'rename web1-old-abc web1']);
    writeFileSync(log, '');
    expect((await runLocal(restoreName('web1-old-abc', 'web1'), { env: env('inspect') })).code).toBe(0);
    expect(calls()).toEqual(['inspect --format x web1-old-abc']);
  });
});

describe('awaitNoConnections', { skip: (await runLocal(['sh', '-c', 'command -v ss'])).code !== 0 }, () => {
  let server: Server;
  let port: number;
  const held: Socket[] = [];
  beforeAll(async () => {
    server = createServer((s) => held.push(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of held) s.destroy();
    await new Promise((r) => server.close(r));
  });

  it('drained ports: prints 0, then stops and removes the old replicas in the same round trip', async () => {
    writeFileSync(log, '');
    const r = await runLocal(awaitNoConnections([port], 200, ['web1-old-a', 'web2-old-b']), { env: env() });
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['0', STOPPED]);
    expect(calls()).toEqual(['stop web1-old-a web2-old-b', 'rm web1-old-a web2-old-b']);
  });

  it('an open connection: polls until its bound, prints the count and stops nothing', async () => {
    const client = netConnect(port, '127.0.0.1');
    await new Promise((r) => client.once('connect', r));
    writeFileSync(log, '');
    const r = await runLocal(awaitNoConnections([port], 200, ['web1-old-a']), { env: env() });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('1');
    expect(calls()).toEqual([]);
    client.destroy();
  });

  it('a failed stop exits STOP_FAILED', async () => {
    writeFileSync(log, '');
    const r = await runLocal(awaitNoConnections([port], 0, ['web1-old-a']), { env: env('stop') });
    expect(r.code).toBe(STOP_FAILED);
  });
});

describe('bothInOneRoundTrip', () => {
  it('runs both (stdin to the second only), and tells each its output and status', async () => {
    const hostile = `it's $(touch /tmp/dyce-pwned-${process.pid}) \`id\``;
    const r = await runLocal(
      bothInOneRoundTrip(['sh', '-c', 'printf "%s" "$1"; cat; exit 3', 'sh', hostile], ['sh', '-c', 'cat; exit 4']),
      { stdin: 'to the second\n' },
    );
    const { first, second } = splitFirstOutput(r);
    expect(first).toMatchObject({ code: 3, stdout: hostile });
    expect(second).toMatchObject({ code: 4, stdout: 'to the second\n' });
    expect((await runLocal(['test', '-e', `/tmp/dyce-pwned-${process.pid}`])).code).toBe(1);
    const lines = await runLocal(bothInOneRoundTrip(['echo', 'a'], ['true']));
    expect(splitFirstOutput(lines).first).toMatchObject({ code: 0, stdout: 'a\n' });
  });
});
