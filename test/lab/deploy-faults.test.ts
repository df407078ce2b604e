import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nginxLayout, parseUpstreamPorts, upstreamPath } from '../../src/commands/nginx.js';
import { lockDir } from '../../src/plan/desired.js';
import { runLocal } from '../../src/remote/local.js';
import {
  type CliRun,
  labSecrets,
  nginxAppFlags,
  type RunningCli,
  removeNginxApp,
  runDyce,
  startDyce,
  viaNginx,
} from '../support/dyce-cli.js';
import { host, hostDocker, lab, uniqueName } from '../support/lab.js';
import { describeLoad, type RunningLoad, startLoad } from '../support/load.js';

// Faults in the middle of a rolling replacement behind vps2's real nginx, through `dyce deploy` (the source).
// After each: the old version still serves (a light load runs through nginx the whole time, and none of its
// requests fails), the lock is released, and a rerun converges to the new version.

const env = lab();
const vps2 = host(env, 'vps2');
const app = uniqueName('fault');
const serverName = `${app}.lab.test`;
// Below the ephemeral port range; host networking, so ports are the machine's.
const hostPort = 24_000 + 10 * Math.floor(Math.random() * 200);
const layout = nginxLayout(vps2.nginx.prefix);
const secrets = labSecrets(env);
const lock = lockDir(vps2.stateDir, app);
const image = (tag: string) => `${env.sampleApp.image}:${tag}`;
/** The version serving now; each test deploys the other one. */
let current = 'v1';
const other = (v: string) => (v === 'v1' ? 'v2' : 'v1');

function flags(over: Record<string, string> = {}): Record<string, string> {
  return {
    ...nginxAppFlags(env, vps2, { name: app, serverName, hostPort }),
    image: image(other(current)),
    'drain-timeout': '10s',
    // A lock left behind would make the rerun wait: fail fast instead, so the test says so.
    'lock-wait': '5s',
    ...over,
  };
}

function lightLoad(): RunningLoad {
  return startLoad({
    port: vps2.nginx.httpPort,
    hostHeader: serverName,
    rate: 20,
    durationMs: 300_000,
    timeoutMs: 60_000,
  });
}

/** Resolves once the running dyce has written a stderr line matching RE. */
async function waitForLine(run: RunningCli, re: RegExp): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    if (re.test(run.stderr())) return;
    if (run.child.exitCode !== null) throw new Error(`dyce exited before ${re}:\n${run.stderr()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no line matching ${re} in:\n${run.stderr()}`);
}

async function replicas(): Promise<string[]> {
  const r = await hostDocker(vps2, [
    'ps',
    '-a',
    '--filter',
    `label=dyce.app=${app}`,
    '--format',
    '{{.Names}} {{.State}} {{.Label "dyce.version"}} {{.Label "dyce.port"}}',
  ]);
  return r.stdout.trim().split('\n').filter(Boolean).sort();
}

/** The old version serves, through nginx, from exactly its replicas; nothing else of the app is left; no lock. */
async function expectServing(version: string): Promise<void> {
  const rs = await replicas();
  expect(rs.map((l) => l.split(' ').slice(0, 3).join(' '))).toEqual([
    `${app}1 running ${version}`,
    `${app}2 running ${version}`,
  ]);
  const ports = rs.map((l) => Number(l.split(' ')[3])).sort();
  expect(parseUpstreamPorts(readFileSync(upstreamPath(layout, app), 'utf8')).sort()).toEqual(ports);
  for (let i = 0; i < 4; i++)
    expect(await viaNginx(vps2, serverName, '/version')).toEqual({ status: 200, body: version });
  expect(existsSync(lock), `the lock ${lock} was left behind`).toBe(false);
}

async function rerunConverges(over: Record<string, string> = {}): Promise<void> {
  const next = other(current);
  const r = await runDyce('deploy', flags(over), secrets);
  expect(r.code, r.stderr).toBe(0);
  expect(r.outputs.version).toBe(next);
  current = next;
  await expectServing(current);
}

function failedWithRollback(r: CliRun): void {
  expect(r.code).not.toBe(0);
  expect(r.outputs.success).toBe('false');
}

/** The sshd processes serving the TCP connection that process PID holds to the host's sshd. */
async function sshdServing(pid: number): Promise<number[]> {
  const ss = await runLocal(['ss', '-tnpH', 'state', 'established']);
  const lines = ss.stdout.split('\n');
  const mine = lines
    .filter((l) => l.includes(`pid=${pid},`) && new RegExp(`\\s127\\.0\\.0\\.1:${vps2.sshPort}\\s`).test(l))
    .map((l) => l.trim().split(/\s+/)[2]!);
  const pids = new Set<number>();
  for (const local of mine) {
    for (const l of lines) {
      const cols = l.trim().split(/\s+/);
      if (cols[2] === `127.0.0.1:${vps2.sshPort}` && cols[3] === local)
        for (const m of l.matchAll(/pid=(\d+)/g)) pids.add(Number(m[1]));
    }
  }
  return [...pids];
}

/** A TCP relay to the lab registry that can be stopped and started again on the same port. */
class RegistryRelay {
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  port = 0;
  async start(): Promise<void> {
    const [rhost, rport] = env.registry.url.replace(/^https?:\/\//, '').split(':') as [string, string];
    this.#server = createServer((client) => {
      const upstream = tcpConnect({ host: rhost, port: Number(rport) });
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      this.#server!.once('error', reject);
      this.#server!.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (this.#server.address() as { port: number }).port;
  }
  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    this.#server = undefined;
  }
}

beforeAll(async () => {
  const r = await runDyce('deploy', flags({ image: image('v1') }), secrets);
  expect(r.code, r.stderr).toBe(0);
  current = 'v1';
  await expectServing('v1');
}, 180_000);

afterAll(() => removeNginxApp(vps2, app));

describe('faults in the middle of a rollout', { timeout: 300_000 }, () => {
  it('SIGTERM mid-rollout: nginx points back to the old replicas and the lock is released within 7 s', async () => {
    const load = lightLoad();
    const run = startDyce('deploy', flags(), secrets);
    // Mid-rollout: replica 1 is already switched to the new version, replica 2's successor is starting.
    await waitForLine(run, new RegExp(`${app}2: start ${other(current)} on port`));
    const sent = Date.now();
    run.child.kill('SIGTERM');
    const r = await run.done;
    const exitMs = Date.now() - sent;
    const result = await load.stop();
    failedWithRollback(r);
    expect(r.stderr).toMatch(/cancelled|interrupted/);
    expect(r.outputs['rolled-back']).toBe('true');
    expect(exitMs, 'dyce exits (nginx pointed back, lock released) within 7 s of SIGTERM').toBeLessThan(7000);
    expect(result.failed, describeLoad(result)).toBe(0);
    await expectServing(current);
    await rerunConverges();
  });

  it('the SSH connection is cut mid-rollout (its sshd process killed): reconnected, rolled back, lock released', async () => {
    const load = lightLoad();
    const run = startDyce('deploy', flags(), secrets);
    // Connected and locked: the plan is printed. Find the sshd serving this deploy's connection now, kill it later.
    await waitForLine(run, /plan/);
    const pids = await sshdServing(run.child.pid!);
    expect(pids.length, 'the sshd process serving dyce').toBeGreaterThan(0);
    // While replica 2's successor is being started (a docker run in flight), after replica 1 was switched.
    await waitForLine(run, new RegExp(`${app}2: start ${other(current)} on port`));
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    const r = await run.done;
    const result = await load.stop();
    expect(result.failed, describeLoad(result)).toBe(0);
    if (r.code === 0) {
      // The command had finished before the cut: the next one reconnected and the rollout completed.
      current = other(current);
      await expectServing(current);
      return;
    }
    failedWithRollback(r);
    expect(r.outputs['rolled-back'], r.stderr).toBe('true');
    await expectServing(current);
    await rerunConverges();
  });

  it('the registry is down before the pull: nothing is changed, the old version serves, the rerun pulls', async () => {
    // A relay of the shared registry, for this deploy alone: stopping it is stopping "its" registry.
    const relay = new RegistryRelay();
    await relay.start();
    const ref = `127.0.0.1:${relay.port}/dyce/sample-app:${other(current)}`;
    const over = { image: ref, registry: `127.0.0.1:${relay.port}`, pull: 'always' };
    await relay.stop();
    const load = lightLoad();
    const r = await runDyce('deploy', flags(over), secrets);
    const result = await load.stop();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/registry login to 127\.0\.0\.1:\d+ .* failed|cannot pull/);
    expect(r.stderr).toContain('nothing was changed');
    expect(r.outputs['rolled-back']).toBe('false');
    expect(result.failed, describeLoad(result)).toBe(0);
    await expectServing(current);
    await relay.start();
    try {
      await rerunConverges(over);
    } finally {
      await relay.stop();
      await hostDocker(vps2, ['rmi', ref]);
    }
  });

  it('nginx -t fails at the switch (a broken conf file in the include dir): rolled back, the old version serves', async () => {
    const broken = `${layout.confDir}/zz-${app}-broken.conf`;
    const load = lightLoad();
    const run = startDyce('deploy', flags(), secrets);
    try {
      // Just before the first switch, so that other deploys on this nginx are disturbed as briefly as possible.
      await waitForLine(run, new RegExp(`${app}1: start ${other(current)} on port`));
      writeFileSync(broken, 'this_is_not_an_nginx_directive on;\n');
      const r = await run.done;
      rmSync(broken, { force: true });
      const result = await load.stop();
      failedWithRollback(r);
      expect(r.outputs['rolled-back'], r.stderr).toBe('true');
      expect(r.stderr).toContain('nginx -t refused the configuration');
      expect(r.stderr).toContain('this_is_not_an_nginx_directive');
      expect(r.stderr).toContain('rolled back: the previous replicas serve');
      expect(result.failed, describeLoad(result)).toBe(0);
      await expectServing(current);
    } finally {
      rmSync(broken, { force: true });
    }
    await rerunConverges();
  });
});
