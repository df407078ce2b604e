/**
 * Deploying to many hosts, against the lab's three hosts: the fan-out, serial batches with a fault on the second
 * host, the failure budget with an unreachable host, and a host reachable only through a bastion.
 *
 * Every host gets a private dyce_state_dir (an inventory host var), so that the registry credentials this file
 * breaks on purpose on one host never touch the state other tests use.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployRules, deploySpec } from '../../src/config/actions/deploy.js';
import { parseInputs } from '../../src/config/input-spec.js';
import { runDeploy } from '../../src/deploy/entry.js';
import { RecordingReporter } from '../../src/github/reporter.js';
import type { LabHost } from '../../src/lab/env.js';
import { runLocal } from '../../src/remote/local.js';
import { type CliRun, labSecrets, runDyce } from '../support/dyce-cli.js';
import { host, hostDocker, lab, uniqueName } from '../support/lab.js';
import { startSshd, type ThrowawaySshd } from '../support/sshd.js';

const env = lab();
const hosts = ['vps1', 'vps2', 'vps3'].map((n) => host(env, n));
const [vps1, vps2, vps3] = hosts as [LabHost, LabHost, LabHost];
const KEY = readFileSync(env.sshKey, 'utf8');
const image = (tag: string) => `${env.sampleApp.image}:${tag}`;
const work = mkdtempSync(join(tmpdir(), 'dyce-hosts-'));
/** The apps this file made, per lab host whose docker ran them. */
const made = new Map<string, LabHost>();
const knownHosts = hosts.map((h) => h.knownHosts).join('\n');
const stateDir = (h: LabHost, app: string) => join(work, app, h.name);
// Host port of replica 1, per app; the lab's dyce_port_base (0, 1000, 2000) keeps the hosts apart.
let nextPort = 24000 + (process.pid % 150) * 6;
const ports = new Map<string, number>();

function hostLine(h: LabHost, app: string, over: { name?: string; port?: number; extra?: string } = {}): string {
  return [
    over.name ?? h.name,
    `ansible_host=${h.address}`,
    `ansible_port=${over.port ?? h.sshPort}`,
    'ansible_user=root',
    `dyce_state_dir=${stateDir(h, app)}`,
    ...(h.portBase ? [`dyce_port_base=${h.portBase}`] : []),
    ...(over.extra ? [over.extra] : []),
  ].join(' ');
}

function appInputs(app: string, tag: string, over: Record<string, string> = {}): Record<string, string> {
  return {
    hosts: hosts.map((h) => hostLine(h, app)).join('\n'),
    'known-hosts': knownHosts,
    image: image(tag),
    'registry-username': env.registry.username,
    name: app,
    replicas: '2',
    port: String(env.sampleApp.port),
    'host-port': String(ports.get(app)),
    ...over,
  };
}

function newApp(prefix: string, on: LabHost[] = hosts): string {
  const app = uniqueName(prefix);
  for (const h of on) made.set(`${app}@${h.name}`, h);
  ports.set(app, nextPort);
  nextPort += 2;
  return app;
}

interface Deployed {
  error: unknown;
  reporter: RecordingReporter;
  states: Record<string, { state: string; error?: string }>;
}

/** The engine in-process, as the action runs it (the outputs and the summary come back through the reporter). */
async function deploy(raw: Record<string, string>): Promise<Deployed> {
  const inputs = parseInputs(
    deploySpec,
    { 'ssh-private-key': KEY, 'registry-password': env.registry.password, ...raw },
    deployRules,
  );
  const reporter = new RecordingReporter();
  let error: unknown;
  try {
    await runDeploy(inputs, reporter);
  } catch (e) {
    error = e;
  }
  return { error, reporter, states: JSON.parse(reporter.outputs['host-states'] ?? '{}') };
}

/** `dyce deploy` from the source with flags; secrets through DYCE_* variables. */
const dyce = (flags: Record<string, string>): Promise<CliRun> => runDyce('deploy', flags, labSecrets(env));

interface Replica {
  name: string;
  id: string;
  version: string;
  started: string;
}

async function replicas(h: LabHost, app: string): Promise<Replica[]> {
  const r = await hostDocker(h, [
    'ps',
    '-a',
    '--filter',
    `label=dyce.app=${app}`,
    '--format',
    '{{.Names}} {{.ID}} {{.Label "dyce.version"}} {{.State}}',
  ]);
  expect(r.code, r.stderr).toBe(0);
  const rows = r.stdout.trim().split('\n').filter(Boolean);
  const out: Replica[] = [];
  for (const l of rows.sort()) {
    const [name, id, version, state] = l.split(' ') as [string, string, string, string];
    expect(state, `${h.name} ${name}`).toBe('running');
    const started = (await hostDocker(h, ['inspect', '--format', '{{.State.StartedAt}}', id])).stdout.trim();
    out.push({ name, id, version, started });
  }
  return out;
}

const auditLines = (h: LabHost, app: string): number => {
  try {
    return readFileSync(join(stateDir(h, app), 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean).length;
  } catch {
    return 0;
  }
};

afterAll(async () => {
  for (const [key, h] of made) {
    const app = key.split('@')[0]!;
    const ids = (await hostDocker(h, ['ps', '-aq', '--filter', `label=dyce.app=${app}`])).stdout
      .trim()
      .split('\n')
      .filter(Boolean);
    if (ids.length) await hostDocker(h, ['rm', '-f', ...ids]);
  }
  rmSync(work, { recursive: true, force: true });
});

describe('deploy to three hosts', () => {
  const app = newApp('fan');

  it('runs the replicas on every host (CLI flags), then a rerun touches nothing', async () => {
    const flags = appInputs(app, 'v1', { parallel: '5' });
    const first = await dyce(flags);
    expect(first.stderr).not.toMatch(/internal error/);
    expect(first.code, first.stderr).toBe(0);
    expect(first.outputs).toMatchObject({ success: 'true', changed: 'true', 'failed-hosts': '' });
    expect(JSON.parse(first.outputs['host-states']!)).toEqual({
      vps1: { state: 'changed' },
      vps2: { state: 'changed' },
      vps3: { state: 'changed' },
    });
    const before = new Map<string, Replica[]>();
    for (const h of hosts) {
      const reps = await replicas(h, app);
      expect(
        reps.map((r) => [r.name, r.version]),
        h.name,
      ).toEqual([
        [`${app}1`, 'v1'],
        [`${app}2`, 'v1'],
      ]);
      before.set(h.name, reps);
      // Each host's replicas answer on its own ports (dyce_port_base).
      const port = Number(flags['host-port']) + h.portBase;
      const r = await fetch(`http://127.0.0.1:${port}/`);
      expect(r.status, `${h.name} :${port}`).toBeLessThan(500);
    }

    const again = await dyce(flags);
    expect(again.code, again.stderr).toBe(0);
    expect(again.outputs).toMatchObject({ success: 'true', changed: 'false', 'failed-hosts': '' });
    expect(Object.values(JSON.parse(again.outputs['host-states']!))).toEqual([
      { state: 'ok' },
      { state: 'ok' },
      { state: 'ok' },
    ]);
    for (const h of hosts) expect(await replicas(h, app), h.name).toEqual(before.get(h.name));
  });

  it('serial 1: the second host cannot log into the registry, so the third is never touched; a rerun converges', async () => {
    const before3 = await replicas(vps3, app);
    const before2 = await replicas(vps2, app);
    const audit3 = auditLines(vps3, app);
    expect(audit3).toBeGreaterThan(0);
    // Breaks docker login on vps2 only: its private docker config names a credential helper that does not exist.
    const config2 = join(stateDir(vps2, app), 'docker-config', 'config.json');
    const saved = readFileSync(config2, 'utf8');
    writeFileSync(config2, JSON.stringify({ credsStore: 'dyce-test-missing-helper' }));
    let r: Deployed;
    try {
      r = await deploy(appInputs(app, 'v2', { serial: '1' }));
    } finally {
      writeFileSync(config2, saved);
    }
    expect(r.error).toBeDefined();
    expect(String((r.error as Error).message)).toMatch(/1 of 3 hosts failed: vps2; 1 not started/);
    expect(r.reporter.outputs['failed-hosts']).toBe('vps2');
    expect(r.states.vps1).toEqual({ state: 'changed' });
    expect(r.states.vps2?.state).toBe('failed');
    expect(r.states.vps2?.error).toMatch(/registry login to .* failed/);
    expect(r.states.vps3?.state).toBe('skipped');

    // The first host keeps its new version; the second still runs the old one; the third was not even audited.
    expect((await replicas(vps1, app)).map((x) => x.version)).toEqual(['v2', 'v2']);
    expect(await replicas(vps2, app)).toEqual(before2);
    expect(await replicas(vps3, app)).toEqual(before3);
    expect(auditLines(vps3, app)).toBe(audit3);

    const summary = r.reporter.summaries.join('\n');
    expect(summary).toMatch(/\| vps2 \|.*\| \*\*failed\*\* \|/);
    expect(summary).toMatch(/\| vps3 \|.*\| not started \|.*\| skipped \|/);
    expect(summary).toMatch(/\*\*vps2\*\* failed: vps2: registry login/);

    const rerun = await deploy(appInputs(app, 'v2', { serial: '1' }));
    expect(rerun.error).toBeUndefined();
    expect(rerun.states).toEqual({ vps1: { state: 'ok' }, vps2: { state: 'changed' }, vps3: { state: 'changed' } });
    for (const h of hosts)
      expect(
        (await replicas(h, app)).map((x) => x.version),
        h.name,
      ).toEqual(['v2', 'v2']);
  });
});

describe('failure budget', () => {
  // A port nothing listens on: the third "host" is unreachable.
  const closedPort = 1; // tcpmux: never served here, refused at once

  it('max-fail-percentage 50 with one host of three unreachable deploys the other two and fails the step', async () => {
    const app = newApp('budget', [vps1, vps2]);
    const inputs = appInputs(app, 'v1', {
      'max-fail-percentage': '50',
      parallel: '1',
      // The unreachable host comes first, so that the budget decides whether the others start at all.
      hosts: [hostLine(vps3, app, { name: 'down3', port: closedPort }), hostLine(vps1, app), hostLine(vps2, app)].join(
        '\n',
      ),
    });
    const r = await deploy(inputs);
    expect(r.error).toBeDefined();
    expect((r.error as Error).message).toMatch(/1 of 3 hosts failed: down3 \(within max-fail-percentage 50%/);
    expect(r.reporter.outputs['failed-hosts']).toBe('down3');
    expect(r.states.down3?.state).toBe('failed');
    expect(r.states.down3?.error).toMatch(/connection refused/);
    expect(r.states.vps1).toEqual({ state: 'changed' });
    expect(r.states.vps2).toEqual({ state: 'changed' });
    for (const h of [vps1, vps2])
      expect(
        (await replicas(h, app)).map((x) => x.version),
        h.name,
      ).toEqual(['v1', 'v1']);
    const summary = r.reporter.summaries.join('\n');
    expect(summary).toMatch(/\| down3 \|.*\| \*\*failed\*\* \|/);
    expect(summary).toMatch(/\*\*down3\*\* failed: .*connection refused/);
  });

  it('the default budget (0) stops at the first failure: the other hosts are skipped and untouched (CLI, outputs written)', async () => {
    const app = newApp('budget0', [vps1, vps2]);
    const r = await dyce(
      appInputs(app, 'v1', {
        parallel: '1',
        hosts: [
          hostLine(vps3, app, { name: 'down3', port: closedPort }),
          hostLine(vps1, app),
          hostLine(vps2, app),
        ].join('\n'),
      }),
    );
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error: 1 of 3 hosts failed: down3; 2 not started \(left untouched\)/);
    expect(r.stderr).toMatch(/^vps1: skipped: not started: an earlier host failed/m);
    expect(r.outputs).toMatchObject({ success: 'false', changed: 'false', 'failed-hosts': 'down3' });
    const states = JSON.parse(r.outputs['host-states']!);
    expect([states.down3.state, states.vps1.state, states.vps2.state]).toEqual(['failed', 'skipped', 'skipped']);
    for (const h of [vps1, vps2]) expect(await replicas(h, app), h.name).toEqual([]);
  });
});

describe('through a bastion', () => {
  // A network namespace holds two sshds: the hidden host on the namespace's own loopback (nothing outside the
  // namespace can reach it) and the bastion on a veth address this side can reach. The hidden host runs vps3's
  // Docker engine, like vps3 itself; its only way in is through the bastion.
  const tag = Math.floor(Math.random() * 0xffff)
    .toString(16)
    .padStart(4, '0');
  const ns = `dyce-bst-${tag}`;
  const vethOut = `dyb${tag}o`;
  const vethIn = `dyb${tag}i`;
  const net = `10.231.${Number.parseInt(tag.slice(0, 2), 16) % 250}`;
  const bastionAddr = `${net}.2`;
  let hidden: ThrowawaySshd;
  let hidden2: ThrowawaySshd;
  let bastion: ThrowawaySshd;
  let bastionKey: string;
  const app = newApp('bastion', [vps3, vps2]);

  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });

  beforeAll(async () => {
    ip('netns', 'add', ns);
    ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
    ip('link', 'add', vethOut, 'type', 'veth', 'peer', 'name', vethIn);
    ip('link', 'set', vethIn, 'netns', ns);
    ip('addr', 'add', `${net}.1/30`, 'dev', vethOut);
    ip('link', 'set', vethOut, 'up');
    ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${bastionAddr}/30`, 'dev', vethIn);
    ip('netns', 'exec', ns, 'ip', 'link', 'set', vethIn, 'up');
    const keyFile = join(work, 'bastion_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile]);
    bastionKey = readFileSync(keyFile, 'utf8');
    hidden = await startSshd({
      hostKeyTypes: ['ed25519'],
      authorizedKeys: { root: readFileSync(`${env.sshKey}.pub`, 'utf8').trim() },
      netns: ns,
      extraConfig: [`SetEnv DOCKER_HOST=${vps3.dockerHost} DYCE_LAB_HOST=hidden`],
    });
    // A second hidden host, running vps2's Docker engine.
    hidden2 = await startSshd({
      hostKeyTypes: ['ed25519'],
      authorizedKeys: { root: readFileSync(`${env.sshKey}.pub`, 'utf8').trim() },
      netns: ns,
      extraConfig: [`SetEnv DOCKER_HOST=${vps2.dockerHost} DYCE_LAB_HOST=hidden2`],
    });
    // The bastion only lets its own key in, and only forwards: a separate key proves jump-private-key is used.
    bastion = await startSshd({
      hostKeyTypes: ['ed25519'],
      authorizedKeys: { root: readFileSync(`${keyFile}.pub`, 'utf8').trim() },
      netns: ns,
      listenAddress: bastionAddr,
    });
  });

  afterAll(async () => {
    await hidden?.stop();
    await hidden2?.stop();
    await bastion?.stop();
    await runLocal(['ip', 'netns', 'del', ns]);
    await runLocal(['ip', 'link', 'del', vethOut]);
  });

  const inventory = (extra?: string) =>
    hostLine(vps3, app, { name: 'hidden', port: hidden.port, ...(extra ? { extra } : {}) }).replace(
      `ansible_host=${vps3.address}`,
      'ansible_host=127.0.0.1',
    );
  const base = () =>
    appInputs(app, 'v1', {
      hosts: inventory(),
      'known-hosts': hidden.hostKeys.ed25519!.knownHosts,
    });

  it('the hidden host cannot be reached directly', async () => {
    const r = await deploy(base());
    expect(r.states.hidden?.state).toBe('failed');
    expect(r.states.hidden?.error).toMatch(/connection refused/);
    expect(await replicas(vps3, app)).toEqual([]);
  });

  it('deploys through jump-host, the bastion’s host key verified from jump-known-hosts', async () => {
    const r = await deploy({
      ...base(),
      'jump-host': `root@${bastionAddr}:${bastion.port}`,
      'jump-private-key': bastionKey,
      'jump-known-hosts': bastion.hostKeys.ed25519!.knownHosts,
    });
    expect(r.error).toBeUndefined();
    expect(r.states).toEqual({ hidden: { state: 'changed' } });
    expect((await replicas(vps3, app)).map((x) => x.version)).toEqual(['v1', 'v1']);
    // The hidden host's sshd saw the connection come from inside the namespace (the bastion), not from here.
    expect(readFileSync(hidden.log, 'utf8')).toMatch(/Accepted publickey for root from 127\.0\.0\.1/);
    expect(readFileSync(bastion.log, 'utf8')).toMatch(new RegExp(`Accepted publickey for root from ${net}\\.1 `));
  });

  it('honours the inventory’s ansible_ssh_common_args ProxyJump (a no-op rerun)', async () => {
    const r = await deploy({
      ...base(),
      hosts: inventory(`ansible_ssh_common_args='-o ProxyJump=root@${bastionAddr}:${bastion.port}'`),
      'known-hosts': [hidden.hostKeys.ed25519!.knownHosts, bastion.hostKeys.ed25519!.knownHosts].join('\n'),
    });
    // The bastion takes only its own key: without jump-private-key the lab key is offered and refused.
    expect(r.states.hidden?.state).toBe('failed');
    expect(r.states.hidden?.error).toMatch(/authentication failed for user "root"/);

    const ok = await deploy({
      ...base(),
      hosts: inventory(`ansible_ssh_common_args='-o ProxyJump=root@${bastionAddr}:${bastion.port}'`),
      'known-hosts': [hidden.hostKeys.ed25519!.knownHosts, bastion.hostKeys.ed25519!.knownHosts].join('\n'),
      'jump-private-key': bastionKey,
    });
    expect(ok.error).toBeUndefined();
    expect(ok.states).toEqual({ hidden: { state: 'ok' } });
  });

  it('hosts behind the same bastion share one connection to it', async () => {
    const logins = () => readFileSync(bastion.log, 'utf8').match(/Accepted publickey for root/g)?.length ?? 0;
    const before = logins();
    const r = await deploy({
      ...base(),
      hosts: [
        inventory(),
        hostLine(vps2, app, { name: 'hidden2', port: hidden2.port }).replace(
          `ansible_host=${vps2.address}`,
          'ansible_host=127.0.0.1',
        ),
      ].join('\n'),
      'known-hosts': [hidden.hostKeys.ed25519!.knownHosts, hidden2.hostKeys.ed25519!.knownHosts].join('\n'),
      'jump-host': `root@${bastionAddr}:${bastion.port}`,
      'jump-private-key': bastionKey,
      'jump-known-hosts': bastion.hostKeys.ed25519!.knownHosts,
    });
    expect(r.error).toBeUndefined();
    expect(r.states).toEqual({ hidden: { state: 'ok' }, hidden2: { state: 'changed' } });
    expect((await replicas(vps2, app)).map((x) => x.version)).toEqual(['v1', 'v1']);
    expect(logins() - before).toBe(1);
  });

  it('refuses a bastion whose host key does not match, before authenticating', async () => {
    const before = await replicas(vps3, app);
    const wrong = `[${bastionAddr}]:${bastion.port} ${hidden.hostKeys.ed25519!.pub}`;
    const r = await deploy({
      ...base(),
      image: image('v2'),
      'jump-host': `root@${bastionAddr}:${bastion.port}`,
      'jump-private-key': bastionKey,
      'jump-known-hosts': wrong,
    });
    expect(r.states.hidden?.state).toBe('failed');
    expect(r.states.hidden?.error).toMatch(
      new RegExp(
        `jump host root@${bastionAddr.replace(/\./g, '\\.')}:${bastion.port}: refusing to connect: .*host key`,
      ),
    );
    expect(r.states.hidden?.error).toMatch(/No authentication was attempted/);
    expect(await replicas(vps3, app)).toEqual(before);
  });
});
