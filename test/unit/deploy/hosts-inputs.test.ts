import { describe, expect, it } from 'vitest';
import { deployRules, deploySpec } from '../../../src/config/actions/deploy.js';
import { parseInputs, type RawInputs } from '../../../src/config/input-spec.js';
import { readTargetHosts, sshCredentials } from '../../../src/deploy/connect.js';
import { RecordingReporter } from '../../../src/github/reporter.js';
import { sshTargetFor } from '../../../src/remote/connect.js';
import { JumpPool, type SshEndpoint, SshExecutor } from '../../../src/remote/ssh.js';

const TARGET = '[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICkk+PnRIQgh299GK72//1crBQ5O00IifLDhVbUSL5G8';
const BASTION = '[10.0.0.2]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMm6dqKN2jwHzAJv7YxPdCxelE1i68lVxtQARbZm86km';

const parse = (extra: RawInputs) =>
  parseInputs(
    deploySpec,
    {
      hosts: 'vps1 ansible_host=127.0.0.1 ansible_port=2222 ansible_user=deploy',
      image: 'reg/app:v1',
      name: 'app',
      'known-hosts': TARGET,
      'ssh-private-key': 'KEY',
      ...extra,
    },
    deployRules,
  );

describe('many-host inputs', () => {
  it('defaults: 5 hosts at a time, one batch, stop at the first failure', () => {
    const i = parse({});
    expect([i.parallel, i.serial, i['max-fail-percentage']]).toEqual([5, undefined, 0]);
  });

  it('refuses a bad serial, parallel, max-fail-percentage or jump-host, naming the input', () => {
    expect(() => parse({ serial: '0' })).toThrow(/input "serial" each batch size/);
    expect(() => parse({ serial: '1, lots' })).toThrow(/input "serial"/);
    expect(() => parse({ parallel: '0' })).toThrow(/parallel/);
    expect(() => parse({ 'max-fail-percentage': '101' })).toThrow(/max-fail-percentage/);
    expect(() => parse({ 'jump-host': 'a@b:99999' })).toThrow(/input "jump-host": bad port/);
    expect(() => parse({ 'jump-host': 'a@b,c@d' })).toThrow(/input "jump-host": only one jump host/);
    expect(parse({ serial: '1, 50%' }).serial).toBe('1, 50%');
  });
});

describe('jump host credentials', () => {
  it('tunnels through jump-host with its own key and known-hosts', async () => {
    const i = parse({ 'jump-host': 'bastion@10.0.0.2', 'jump-private-key': 'JUMPKEY', 'jump-known-hosts': BASTION });
    const [host] = await readTargetHosts(i);
    const t = sshTargetFor(host!, sshCredentials(i));
    expect(t.jump).toMatchObject({ address: '10.0.0.2', port: 22, user: 'bastion', privateKey: 'JUMPKEY' });
    expect(t.jump?.hostKey).toMatchObject({ kind: 'known-hosts', source: 'jump-known-hosts' });
    expect(t.hostKey).toMatchObject({ kind: 'known-hosts', source: 'known-hosts' });
  });

  it('defaults the jump key and known-hosts to the targets’, and the user to the host’s', async () => {
    const i = parse({ 'jump-host': '10.0.0.2:2200' });
    const [host] = await readTargetHosts(i);
    const t = sshTargetFor(host!, sshCredentials(i));
    expect(t.jump).toMatchObject({ address: '10.0.0.2', port: 2200, user: 'deploy', privateKey: 'KEY' });
    expect(t.jump?.hostKey).toMatchObject({ source: 'known-hosts' });
  });

  it('an inventory ProxyJump wins over jump-host and uses jump-private-key', async () => {
    const i = parse({
      hosts: "vps1 ansible_host=127.0.0.1 ansible_port=2222 ansible_ssh_common_args='-o ProxyJump=root@10.0.0.9:22'",
      'jump-host': 'bastion@10.0.0.2',
      'jump-private-key': 'JUMPKEY',
    });
    const [host] = await readTargetHosts(i);
    expect(sshTargetFor(host!, sshCredentials(i)).jump).toMatchObject({
      address: '10.0.0.9',
      user: 'root',
      privateKey: 'JUMPKEY',
    });
  });

  it('a pinned fingerprint does not vouch for the bastion: jump-known-hosts is asked for', async () => {
    const i = parse({
      'known-hosts': '',
      'host-fingerprint': 'SHA256:UAP46wM0guBqLtvowcYjZqKBXja+yB6DSCbjaTlCYEg',
      'jump-host': '10.0.0.2',
    });
    const [host] = await readTargetHosts(i);
    expect(() => sshTargetFor(host!, sshCredentials(i))).toThrow(/give input "jump-known-hosts"/);
  });

  it('jump-host-fingerprint pins the bastion (never together with jump-known-hosts); connect-timeout is a duration', async () => {
    const fp = 'SHA256:UAP46wM0guBqLtvowcYjZqKBXja+yB6DSCbjaTlCYEg';
    const i = parse({
      'host-fingerprint': fp,
      'known-hosts': '',
      'jump-host': '10.0.0.2',
      'jump-host-fingerprint': fp,
    });
    const [host] = await readTargetHosts(i);
    expect(sshTargetFor(host!, sshCredentials(i)).jump?.hostKey).toEqual({ kind: 'fingerprint', fingerprints: [fp] });
    expect(() => sshCredentials(parse({ 'jump-known-hosts': BASTION, 'jump-host-fingerprint': fp }))).toThrow(
      /"jump-known-hosts" and input "jump-host-fingerprint" exclude each other/,
    );
    expect(parse({})['connect-timeout']).toBe(20_000);
    expect(parse({ 'connect-timeout': '5s' })['connect-timeout']).toBe(5000);
  });

  it('hosts takes user@host:port lines', async () => {
    const [host] = await readTargetHosts(parse({ hosts: 'deploy@203.0.113.7:2201' }));
    expect(host).toMatchObject({ name: '203.0.113.7', address: '203.0.113.7', port: 2201, user: 'deploy' });
  });
});

describe('JumpPool', () => {
  const endpoint = (over: Partial<SshEndpoint> = {}): SshEndpoint => ({
    address: '10.0.0.2',
    port: 22,
    user: 'bastion',
    privateKey: 'KEY',
    hostKey: { kind: 'insecure' },
    ...over,
  });
  const make = (e: SshEndpoint) => () => new SshExecutor({ ...e, host: 'jump' }, { reporter: new RecordingReporter() });

  it('shares one bastion executor per endpoint, user and key; the last release closes it', async () => {
    const pool = new JumpPool();
    const a = pool.acquire(endpoint(), make(endpoint()));
    const b = pool.acquire(endpoint(), make(endpoint()));
    expect(b.exec).toBe(a.exec);
    const otherKey = pool.acquire(endpoint({ privateKey: 'OTHER' }), make(endpoint()));
    const otherUser = pool.acquire(endpoint({ user: 'root' }), make(endpoint()));
    expect(otherKey.exec).not.toBe(a.exec);
    expect(otherUser.exec).not.toBe(a.exec);
    expect(pool.size).toBe(3);
    await a.release();
    await a.release(); // a second release of the same reference changes nothing
    expect(pool.size).toBe(3);
    await b.release();
    expect(pool.size).toBe(2);
    const c = pool.acquire(endpoint(), make(endpoint()));
    expect(c.exec).not.toBe(a.exec);
  });
});
