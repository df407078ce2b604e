import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInventory } from '../../src/config/inventory.js';
import { RecordingReporter } from '../../src/github/reporter.js';
import { executorFor, hostKeyPolicy, resolveSshTarget, sshTargetFor } from '../../src/remote/connect.js';
import { LocalExecutor } from '../../src/remote/local.js';
import {
  cliSshCredentials,
  parseSshConfig,
  readOpenSshDefaults,
  withSshConfig,
} from '../../src/remote/openssh-defaults.js';
import { DEFAULT_RETRY, loadPrivateKey, retryDelays, SshError, SshExecutor } from '../../src/remote/ssh.js';
import { InputError } from '../../src/util/errors.js';
import { Secret } from '../../src/util/secret.js';

let dir: string;
let plain: string;
let locked: string;
let hostLine: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dyce-sshu-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'plain')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'pass phrase', '-f', join(dir, 'locked')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-m', 'PEM', '-N', '', '-f', join(dir, 'pem')]);
  plain = readFileSync(join(dir, 'plain'), 'utf8');
  locked = readFileSync(join(dir, 'locked'), 'utf8');
  hostLine = `[10.0.0.1]:2222 ${readFileSync(join(dir, 'plain.pub'), 'utf8').split(' ').slice(0, 2).join(' ')}`;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('private keys', () => {
  it('loads OpenSSH and PEM keys, and names passphrase problems', () => {
    expect(loadPrivateKey({ privateKey: plain }, 'u@h').type).toBe('ssh-ed25519');
    expect(loadPrivateKey({ privateKey: readFileSync(join(dir, 'pem')) }, 'u@h').type).toBe('ssh-rsa');
    expect(loadPrivateKey({ privateKey: locked, passphrase: new Secret('pass phrase') }, 'u@h').type).toBe(
      'ssh-ed25519',
    );
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(SshError);
        return (e as SshError).message;
      }
      throw new Error('expected an error');
    };
    expect(err(() => loadPrivateKey({ privateKey: locked }, 'u@h'))).toBe(
      'the SSH private key for u@h is passphrase-protected: give its passphrase (ssh-passphrase)',
    );
    expect(err(() => loadPrivateKey({ privateKey: locked, passphrase: 'nope' }, 'u@h'))).toContain('wrong passphrase');
    expect(err(() => loadPrivateKey({ privateKey: readFileSync(join(dir, 'plain.pub')) }, 'u@h'))).toContain(
      'is a public key',
    );
    expect(err(() => loadPrivateKey({ privateKey: 'not a key' }, 'u@h'))).toContain('not a usable private key');
  });
});

describe('retry schedule', () => {
  it('backs off exponentially up to the cap', () => {
    expect(retryDelays(DEFAULT_RETRY)).toEqual([1000, 2000, 4000]);
    expect(retryDelays({ attempts: 6, initialDelayMs: 500, maxDelayMs: 3000, factor: 2 })).toEqual([
      500, 1000, 2000, 3000, 3000,
    ]);
    expect(retryDelays({ ...DEFAULT_RETRY, attempts: 1 })).toEqual([]);
  });
});

describe('host key policy from inputs', () => {
  it('is verified by default and refuses to guess', () => {
    expect(() => hostKeyPolicy({})).toThrow(/host keys are verified: give input "known-hosts"/);
    expect(hostKeyPolicy({ knownHosts: hostLine }).kind).toBe('known-hosts');
    expect(hostKeyPolicy({ hostFingerprints: [`SHA256:${'a'.repeat(43)}`] })).toEqual({
      kind: 'fingerprint',
      fingerprints: [`SHA256:${'a'.repeat(43)}`],
    });
    expect(hostKeyPolicy({ insecureSkipHostKeyCheck: true })).toEqual({ kind: 'insecure' });
    expect(() => hostKeyPolicy({ knownHosts: hostLine, hostFingerprints: [`SHA256:${'a'.repeat(43)}`] })).toThrow(
      /exclude each other/,
    );
    expect(() => hostKeyPolicy({ knownHosts: hostLine, insecureSkipHostKeyCheck: true })).toThrow(/exclude each other/);
    expect(() => hostKeyPolicy({ hostFingerprints: ['MD5:aa:bb'] })).toThrow(InputError);
    expect(() => hostKeyPolicy({ knownHosts: 'garbage' })).toThrow(/known-hosts:1/);
  });
});

describe('targets from inventory hosts', () => {
  const inv = parseInventory(
    [
      '[web]',
      'web1 ansible_host=10.0.0.1 ansible_port=2222 ansible_user=deploy',
      "web2 ansible_host=10.0.0.2 ansible_ssh_common_args='-o ProxyJump=ops@bastion:2200'",
      'me ansible_connection=local',
    ].join('\n'),
    { source: 'hosts' },
  );
  const [web1, web2, me] = inv.hosts as [(typeof inv.hosts)[0], (typeof inv.hosts)[0], (typeof inv.hosts)[0]];

  it('maps address, port and user, defaulting the user to root', () => {
    const hostKey = hostKeyPolicy({ knownHosts: hostLine });
    expect(sshTargetFor(web1, { privateKey: new Secret(plain), hostKey })).toMatchObject({
      host: 'web1',
      address: '10.0.0.1',
      port: 2222,
      user: 'deploy',
    });
    expect(sshTargetFor(web2, { privateKey: plain, hostKey }).user).toBe('root');
    expect(() => sshTargetFor(web1, { hostKey })).toThrow(/no SSH private key/);
  });

  it('takes the jump host from ProxyJump or the jump-host input, with its own host key policy', () => {
    const hostKey = hostKeyPolicy({ knownHosts: hostLine });
    const t = sshTargetFor(web2, { privateKey: plain, passphrase: 'x', hostKey });
    expect(t.jump).toMatchObject({ address: 'bastion', port: 2200, user: 'ops', passphrase: 'x', hostKey });
    const viaInput = sshTargetFor(web1, { privateKey: plain, hostKey, jump: { spec: 'bastion.example' } });
    expect(viaInput.jump).toMatchObject({ address: 'bastion.example', port: 22, user: 'deploy' });
    // A fingerprint pins the targets only: the bastion needs its own entry.
    const fp = hostKeyPolicy({ hostFingerprints: [`SHA256:${'a'.repeat(43)}`] });
    expect(() => sshTargetFor(web2, { privateKey: plain, hostKey: fp })).toThrow(/needs its own host key/);
  });

  it('reads ansible_ssh_private_key_file, and runs ansible_connection=local hosts locally', async () => {
    const keyed = parseInventory(
      `k ansible_ssh_private_key_file=${join(dir, 'plain')}\nmissing ansible_ssh_private_key_file=${join(dir, 'nope')}`,
      {
        source: 'hosts',
      },
    );
    const hostKey = hostKeyPolicy({ insecureSkipHostKeyCheck: true });
    expect((await resolveSshTarget(keyed.hosts[0]!, { hostKey })).privateKey).toBe(plain);
    await expect(resolveSshTarget(keyed.hosts[1]!, { hostKey })).rejects.toThrow(
      /cannot read ansible_ssh_private_key_file/,
    );
    const reporter = new RecordingReporter();
    expect(await executorFor(me, { hostKey }, { reporter })).toBeInstanceOf(LocalExecutor);
    expect(await executorFor(web1, { privateKey: plain, hostKey }, { reporter })).toBeInstanceOf(SshExecutor);
  });
});

describe('OpenSSH defaults for the CLI', () => {
  const config = parseSshConfig(
    [
      'Host web',
      '  HostName 10.0.0.9',
      '  Port 2200',
      '  User ops',
      '  IdentityFile ~/.ssh/web_key',
      '  ProxyJump bastion',
      'Host bastion',
      '  HostName 192.0.2.1',
      '  User jump',
      '  Port 2201',
      'Host *',
      '  User fallback',
    ].join('\n'),
    'config',
    '/home/me',
  );
  const inv = parseInventory(
    ['web', 'web-pinned ansible_host=web ansible_port=22 ansible_user=deploy', 'other'].join('\n'),
    { source: 'hosts', format: 'ini' },
  );

  it('applies Host aliases where the inventory says nothing, the first value winning, ProxyJump aliases resolved', () => {
    expect(withSshConfig(inv.hosts[0]!, config)).toMatchObject({
      address: '10.0.0.9',
      port: 2200,
      user: 'ops',
      privateKeyFile: '/home/me/.ssh/web_key',
      jump: { host: '192.0.2.1', port: 2201, user: 'jump' },
    });
    // The inventory's own port and user win.
    expect(withSshConfig(inv.hosts[1]!, config)).toMatchObject({ address: '10.0.0.9', port: 22, user: 'deploy' });
    expect(withSshConfig(inv.hosts[2]!, config)).toMatchObject({ address: 'other', port: 22, user: 'fallback' });
    expect(() => parseSshConfig('Host x\n  Port nope\n', 'cfg')).toThrow(/invalid cfg/);
  });

  it('takes known_hosts files, the agent and the first default key from HOME; pins nothing when there is none', async () => {
    const home = mkdtempSync(join(tmpdir(), 'dyce-home-'));
    try {
      const empty = await readOpenSshDefaults(home, {}, join(home, 'no-system-file'));
      await expect(cliSshCredentials({}, empty)).rejects.toThrow(/neither ~\/\.ssh\/known_hosts/);
      execFileSync('mkdir', ['-p', join(home, '.ssh')]);
      writeFileSync(join(home, '.ssh', 'known_hosts'), `${hostLine}\n`);
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(home, '.ssh', 'id_ecdsa')]);
      const d = await readOpenSshDefaults(home, { SSH_AUTH_SOCK: '/run/agent.sock' }, join(home, 'no-system-file'));
      expect(d.knownHosts.sources).toEqual([join(home, '.ssh', 'known_hosts')]);
      expect(d.key?.path).toBe(join(home, '.ssh', 'id_ecdsa'));
      const creds = await cliSshCredentials({}, d);
      expect(creds.hostKey.kind).toBe('known-hosts');
      expect(creds.agent).toBe('/run/agent.sock');
      expect(creds.privateKey).toContain('PRIVATE KEY');
      // Given lines win over the defaults; a path given as lines gets a hint.
      const kh = join(home, '.ssh', 'known_hosts');
      await expect(cliSshCredentials({ knownHosts: kh }, d)).rejects.toThrow(`use --known-hosts-file ${kh}`);
      expect((await cliSshCredentials({ knownHostsFile: kh }, d)).hostKey).toMatchObject({ source: kh });
      await expect(cliSshCredentials({ knownHostsFile: kh, insecureSkipHostKeyCheck: true }, d)).rejects.toThrow(
        /exclude each other/,
      );
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
