import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordingReporter } from '../../src/github/reporter.js';
import type { LabEnv, LabHost } from '../../src/lab/env.js';
import { type HostKeyPolicy, parseKnownHosts } from '../../src/remote/known-hosts.js';
import { type SshEndpoint, SshError, SshExecutor, type SshOptions, type SshTarget } from '../../src/remote/ssh.js';
import { Secret } from '../../src/util/secret.js';
import { host, lab, tempDir } from '../support/lab.js';
import { ProcSampler } from '../support/proc-sampler.js';
import { startSshd, type ThrowawaySshd } from '../support/sshd.js';

// Behaviour of the SSH Executor against the lab's real sshd ("VPS" vps1 on 127.0.0.1:2222, users root and deploy).

let env: LabEnv;
let vps: LabHost;
let key: Buffer;
let dir: string;
const open: SshExecutor[] = [];

beforeAll(() => {
  env = lab();
  vps = host(env, 'vps1');
  key = readFileSync(env.sshKey);
  dir = tempDir('dyce-ssh-');
});
afterAll(async () => {
  await Promise.all(open.map((e) => e.close()));
  rmSync(dir, { recursive: true, force: true });
});

const knownHosts = (text: string): HostKeyPolicy => ({ kind: 'known-hosts', entries: parseKnownHosts(text) });

function target(over: Partial<SshTarget> = {}): SshTarget {
  return {
    host: vps.name,
    address: vps.address,
    port: vps.sshPort,
    user: 'deploy',
    privateKey: key,
    hostKey: knownHosts(vps.knownHosts),
    ...over,
  };
}

function executor(over: Partial<SshTarget> = {}, opts: Partial<SshOptions> = {}) {
  const reporter = new RecordingReporter();
  const ex = new SshExecutor(target(over), {
    reporter,
    retry: { attempts: 3, initialDelayMs: 50, maxDelayMs: 100, factor: 2 },
    ...opts,
  });
  open.push(ex);
  return { ex, reporter };
}

async function connectError(ex: SshExecutor): Promise<SshError> {
  try {
    await ex.run(['true']);
  } catch (error) {
    expect(error).toBeInstanceOf(SshError);
    return error as SshError;
  }
  throw new Error('expected the connection to be refused');
}

function newKey(name: string, passphrase = ''): { file: string; pub: string } {
  const file = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', name, '-f', file]);
  return { file, pub: readFileSync(`${file}.pub`, 'utf8').trim() };
}

/** The sshd log lines of one TCP connection, identified by the client's port. */
/**
 * sshd's log lines of the connection from this local port: from its last "Connection from ... port P" line on, since
 * the log is shared by every test and an ephemeral port is reused by later connections.
 */
function sshdLines(localPort: number | undefined): string[] {
  expect(localPort).toBeTypeOf('number');
  const all = readFileSync(vps.sshdLog, 'utf8').split('\n');
  const start = all.findLastIndex((l) => new RegExp(`Connection from 127\\.0\\.0\\.1 port ${localPort}\\b`).test(l));
  if (start < 0) return [];
  return all.slice(start).filter((l) => new RegExp(`\\bport ${localPort}\\b`).test(l));
}

async function waitForLog(localPort: number | undefined, re: RegExp): Promise<string[]> {
  for (let i = 0; i < 50; i++) {
    const lines = sshdLines(localPort);
    if (lines.some((l) => re.test(l))) return lines;
    await new Promise((r) => setTimeout(r, 100));
  }
  return sshdLines(localPort);
}

const AUTH_ATTEMPT = /publickey|Accepted|Failed|authenticating user|Invalid user|userauth/i;

describe('SshExecutor against the lab sshd', () => {
  it('runs commands as root and as deploy over ONE connection, judged by exit code', async () => {
    const { ex } = executor();
    const r = await ex.run(['id', '-un']);
    expect(r).toEqual({ code: 0, stdout: 'deploy\n', stderr: '' });
    const conns = await Promise.all(Array.from({ length: 6 }, () => ex.run(['sh', '-c', 'echo "$SSH_CONNECTION"'])));
    const ids = new Set(conns.map((c) => c.stdout.trim()));
    expect(ids.size).toBe(1);
    expect([...ids][0]).toMatch(/^127\.0\.0\.1 \d+ 127\.0\.0\.1 2222$/);
    // stderr output is not failure; the exit code is.
    expect(await ex.run(['sh', '-c', 'echo warn >&2; exit 0'])).toEqual({ code: 0, stdout: '', stderr: 'warn\n' });
    expect((await ex.run(['sh', '-c', 'exit 7'])).code).toBe(7);

    const root = executor({ user: 'root' }).ex;
    expect((await root.run(['id', '-un'])).stdout).toBe('root\n');
  });

  it('carries hostile bytes byte for byte through argv quoting and through stdin', async () => {
    const { ex } = executor();
    const hostile = `a'b"c \`id\` $(touch /tmp/dyce-pwned) \\ \n\ttab; rm -rf / # ${'é'}`;
    expect((await ex.run(['printf', '%s', hostile])).stdout).toBe(hostile);
    expect((await ex.run(['cat'], { stdin: hostile })).stdout).toBe(hostile);
    const bytes = Buffer.concat([Buffer.from(hostile), randomBytes(4096), Buffer.from([0, 255, 10, 13])]);
    const sum = (await ex.run(['sha256sum'], { stdin: bytes })).stdout.split(' ')[0];
    expect(sum).toBe(createHash('sha256').update(bytes).digest('hex'));
    // A command that reads stdin gets EOF when none is given (it must not hang).
    expect(await ex.run(['cat'])).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('runs through sudo -n for a non-root user with sudo: true, and not for root', async () => {
    const { ex } = executor();
    expect((await ex.run(['id', '-un'], { sudo: true })).stdout).toBe('root\n');
    expect((await ex.run(['cat'], { sudo: true, stdin: 'via sudo\n' })).stdout).toBe('via sudo\n');
    // `--` ends sudo's options: an argv starting with `-` is a command name, not a sudo flag.
    expect((await ex.run(['-l'], { sudo: true })).code).not.toBe(0);
    const root = executor({ user: 'root' }).ex;
    expect((await root.run(['sh', '-c', 'echo $SUDO_USER'], { sudo: true })).stdout).toBe('\n');
  });

  it('turns sudo\'s real "a password is required" into an error naming the user', async () => {
    // The lab's deploy has passwordless sudo for everything; a later sudoers rule demands a password for one
    // probe command only (checked with visudo first, removed afterwards), so sudo -n really refuses it.
    const probeDir = tempDir('dyce-sudo-');
    const probe = join(probeDir, 'probe');
    writeFileSync(probe, '#!/bin/sh\necho ran\n', { mode: 0o755 });
    chmodSync(probeDir, 0o755);
    const rule = `/etc/sudoers.d/zz-dyce-ssh-test-${randomBytes(4).toString('hex')}`;
    const staged = join(dir, 'sudoers-rule');
    writeFileSync(staged, `deploy ALL=(ALL:ALL) PASSWD: ${probe}\n`, { mode: 0o440 });
    execFileSync('visudo', ['-cf', staged], { stdio: 'ignore' });
    copyFileSync(staged, rule);
    chmodSync(rule, 0o440);
    try {
      const { ex } = executor();
      expect((await ex.run([probe])).stdout).toBe('ran\n');
      const err = await ex.run([probe], { sudo: true, label: 'docker ps' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SshError);
      expect((err as SshError).kind).toBe('sudo');
      expect((err as SshError).message).toContain(
        'vps1: user "deploy" cannot run `docker ps` through sudo without a password (sudo -n said: sudo: a password is required)',
      );
      // Other commands still run through sudo: the error is about this command, not the connection.
      expect((await ex.run(['id', '-un'], { sudo: true })).stdout).toBe('root\n');
    } finally {
      rmSync(rule, { force: true });
      rmSync(probeDir, { recursive: true, force: true });
    }
  });

  it('reconnects for the next command when the server drops the connection', async () => {
    const { ex } = executor();
    const first = (await ex.run(['sh', '-c', 'echo "$SSH_CONNECTION"'])).stdout;
    // Kill this session's sshd process (the parent of the remote shell, which is the parent of the command's
    // job): the connection dies under a running command, whose outcome is unknown.
    const err = await ex
      .run(['sh', '-c', 'kill -9 $(ps -o ppid= -p $(ps -o ppid= -p $PPID)); sleep 5'])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshError);
    expect((err as SshError).kind).toBe('closed');
    expect((err as SshError).message).toContain('its outcome is unknown');
    const second = (await ex.run(['sh', '-c', 'echo "$SSH_CONNECTION"'])).stdout;
    expect(second).toMatch(/^127\.0\.0\.1 \d+ 127\.0\.0\.1 2222\n$/);
    expect(second).not.toBe(first);
  });

  it('ends a command at timeoutMs', async () => {
    const { ex } = executor();
    const r = await ex.run(['sleep', '30'], { timeoutMs: 1000, label: 'sleep 30' });
    expect(r.code).toBe(124);
    expect(r.stderr).toContain('`sleep 30` timed out after 1s');
    expect((await ex.run(['true'])).code).toBe(0);
  });

  it('refuses a wrong key without retrying, naming the user and key type', async () => {
    const { ex, reporter } = executor({ privateKey: readFileSync(env.wrongSshKey) });
    const err = await connectError(ex);
    expect(err.kind).toBe('auth');
    expect(err.attempts).toBe(1);
    expect(err.message).toMatch(
      /authentication failed for user "deploy" at 127\.0\.0\.1:2222: the server refused the ssh-ed25519 key SHA256:/,
    );
    expect(reporter.lines.join('\n')).not.toContain('retrying');
    // The control for the host-key test below: an authentication attempt IS visible in sshd's log.
    expect((await waitForLog(err.localPort, AUTH_ATTEMPT)).some((l) => AUTH_ATTEMPT.test(l))).toBe(true);
  });

  it('refuses a mismatched host key before authentication: sshd logs no auth attempt for that connection', async () => {
    const other = newKey('not-the-host-key');
    const { ex } = executor({ hostKey: knownHosts(`[127.0.0.1]:2222 ${other.pub}`) });
    const err = await connectError(ex);
    expect(err.kind).toBe('host-key');
    expect(err.attempts).toBe(1);
    const expectedFp = execFileSync('ssh-keygen', ['-lf', `${other.file}.pub`], { encoding: 'utf8' }).split(' ')[1];
    expect(err.message).toContain(`expected ssh-ed25519 ${expectedFp}, got ssh-ed25519 ${vps.fingerprint}`);
    expect(err.message).toContain('No authentication was attempted and no command ran');
    const lines = await waitForLog(err.localPort, /Connection closed|Disconnected|disconnect/i);
    expect(lines.some((l) => /Connection from 127\.0\.0\.1 port/.test(l))).toBe(true);
    expect(lines.filter((l) => AUTH_ATTEMPT.test(l))).toEqual([]);
  });

  it('treats a key listed for port 22 as unknown on port 2222', async () => {
    const keyPart = vps.knownHosts.split(' ').slice(1).join(' ');
    for (const hostField of ['127.0.0.1', '[127.0.0.1]:22']) {
      const err = await connectError(executor({ hostKey: knownHosts(`${hostField} ${keyPart}`) }).ex);
      expect(err.kind).toBe('host-key');
      expect(err.message).toContain('no known_hosts entry for "[127.0.0.1]:2222"');
      expect(err.message).toContain(vps.fingerprint);
    }
  });

  it('pins a fingerprint; skipping the check works only when asked, and warns loudly', async () => {
    expect(
      (await executor({ hostKey: { kind: 'fingerprint', fingerprints: [vps.fingerprint] } }).ex.run(['true'])).code,
    ).toBe(0);
    const wrong = `SHA256:${'A'.repeat(43)}`;
    const err = await connectError(executor({ hostKey: { kind: 'fingerprint', fingerprints: [wrong] } }).ex);
    expect(err.kind).toBe('host-key');
    expect(err.message).toContain(`expected ${wrong}, the server presented ssh-ed25519 ${vps.fingerprint}`);

    const { ex, reporter } = executor({ hostKey: { kind: 'insecure' } });
    expect((await ex.run(['true'])).code).toBe(0);
    expect(reporter.lines.join('\n')).toMatch(/^warning: INSECURE: the host key of vps1 .* is NOT being verified/m);
  });

  it('gives distinct errors for a closed port (refused, retried) and a silent listener (timeout)', async () => {
    const closedPort = await freePort();
    const refused = executor({ port: closedPort });
    const e1 = await connectError(refused.ex);
    expect(e1.kind).toBe('refused');
    expect(e1.attempts).toBe(3);
    expect(e1.message).toContain(`connection refused: nothing is listening on port ${closedPort}`);
    expect(refused.reporter.lines.filter((l) => l.includes('retrying'))).toHaveLength(2);

    const silent = await silentListener();
    try {
      const t = executor(
        { port: silent.port },
        { handshakeTimeoutMs: 800, retry: { attempts: 2, initialDelayMs: 50 } },
      );
      const e2 = await connectError(t.ex);
      expect(e2.kind).toBe('handshake-timeout');
      expect(e2.attempts).toBe(2);
      expect(e2.message).toContain('timed out after 800ms waiting for the SSH handshake');
      expect(e2.message).not.toBe(e1.message);
      expect(silent.accepted()).toBe(2);
    } finally {
      silent.server.close();
    }
  });

  it('names a missing or wrong passphrase, and uses the right one', async () => {
    const k = newKey('with-passphrase', 'correct horse');
    const pk = readFileSync(k.file);
    const missing = await connectError(executor({ privateKey: pk }).ex);
    expect(missing.kind).toBe('key');
    expect(missing.message).toContain('is passphrase-protected: give its passphrase');
    const wrong = await connectError(executor({ privateKey: pk, passphrase: new Secret('wrong') }).ex);
    expect(wrong.kind).toBe('key');
    expect(wrong.message).toContain('wrong passphrase');
    expect(wrong.message).not.toContain('wrong\n');
    // Decrypted fine, then refused by sshd (the key is not authorised): the passphrase itself was right.
    const right = await connectError(executor({ privateKey: pk, passphrase: new Secret('correct horse') }).ex);
    expect(right.kind).toBe('auth');
  });

  it('reaches a port on the remote loopback through the SSH connection', async () => {
    const http = createHttpServer((_req, res) => res.end('replica ok'));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    const port = (http.address() as { port: number }).port;
    try {
      const { ex } = executor();
      const fwd = await ex.forwardLocalPort(port);
      const res = await fetch(`http://127.0.0.1:${fwd.port}/health`);
      expect(await res.text()).toBe('replica ok');
      await fwd.close();
      const stream = await ex.forwardOut(port);
      stream.write('GET / HTTP/1.0\r\n\r\n');
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).toString()).toMatch(/replica ok$/);
    } finally {
      http.close();
    }
  });

  it('keeps a secret given on stdin out of every /proc/*/cmdline (sampler proven by a planted process)', async () => {
    const secret = `dyce-secret-${randomBytes(12).toString('hex')}`;
    const sampler = new ProcSampler([secret]);
    await sampler.start();
    try {
      await sampler.proveItself(0);
      const { ex } = executor();
      const script = 'read -r s; sleep 1; printf %s "$s" | sha256sum';
      for (const sudo of [false, true]) {
        const r = await ex.run(['sh', '-c', script], { stdin: `${secret}\n`, sudo });
        expect(r.code).toBe(0);
        expect(r.stdout.split(' ')[0]).toBe(createHash('sha256').update(secret).digest('hex'));
      }
    } finally {
      const report = await sampler.stop();
      expect(report.hits).toEqual([]);
      expect(report.sweeps).toBeGreaterThan(50);
    }
  });

  it('tunnels through a jump host with its own verified key', async () => {
    const vps2 = host(env, 'vps2');
    const jump: SshEndpoint = {
      address: vps.address,
      port: vps.sshPort,
      user: 'deploy',
      privateKey: key,
      hostKey: knownHosts(vps.knownHosts),
    };
    const via = (j: SshEndpoint, over: Partial<SshTarget> = {}) =>
      executor({
        host: vps2.name,
        port: vps2.sshPort,
        hostKey: knownHosts(vps2.knownHosts),
        jump: j,
        ...over,
      });
    const { ex } = via(jump);
    expect((await ex.run(['sh', '-c', 'echo "$DYCE_LAB_HOST $SSH_CONNECTION"'])).stdout).toMatch(
      /^vps2 127\.0\.0\.1 \d+ 127\.0\.0\.1 2223\n$/,
    );

    const other = newKey('not-the-jump-key');
    const badJump = await connectError(via({ ...jump, hostKey: knownHosts(`[127.0.0.1]:2222 ${other.pub}`) }).ex);
    expect(badJump.kind).toBe('host-key');
    expect(badJump.message).toContain('jump host deploy@127.0.0.1:2222');

    // The target's own key is still checked, through the tunnel.
    const badTarget = await connectError(via(jump, { hostKey: knownHosts(`[127.0.0.1]:2223 ${other.pub}`) }).ex);
    expect(badTarget.kind).toBe('host-key');
    expect(badTarget.message).toMatch(/^vps2: refusing to connect/);

    const closed = await connectError(via(jump, { port: await freePort() }).ex);
    expect(closed.kind).toBe('refused');
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** Accepts TCP connections and never says a word: what a hung sshd or a wrong service looks like. */
async function silentListener(): Promise<{ server: Server; port: number; accepted: () => number }> {
  let n = 0;
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    n++;
    sockets.push(s);
    s.on('error', () => {});
  });
  server.on('close', () => {
    for (const s of sockets) s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as { port: number }).port, accepted: () => n };
}

describe('SshExecutor against a server with several host keys (throwaway sshd)', () => {
  let sshd: ThrowawaySshd;
  beforeAll(async () => {
    sshd = await startSshd({
      hostKeyTypes: ['ed25519', 'rsa'],
      authorizedKeys: { root: readFileSync(`${env.sshKey}.pub`, 'utf8').trim() },
    });
  });
  afterAll(() => sshd?.stop());

  const at = (hostKey: HostKeyPolicy) => executor({ host: 'multi', port: sshd.port, user: 'root', hostKey });

  it('asks for the key type known_hosts holds, so a server preferring another type is not a mismatch', async () => {
    const { ex } = at(knownHosts(sshd.hostKeys.rsa!.knownHosts));
    expect((await ex.run(['id', '-un'])).stdout).toBe('root\n');
  });

  it('finds a pinned RSA fingerprint behind the ed25519 key the server presents first', async () => {
    const { ex } = at({ kind: 'fingerprint', fingerprints: [sshd.hostKeys.rsa!.fingerprint] });
    expect((await ex.run(['id', '-un'])).stdout).toBe('root\n');
  });

  it('lists every presented key when no pinned fingerprint matches', async () => {
    const wrong = `SHA256:${'B'.repeat(43)}`;
    const before = readFileSync(sshd.log, 'utf8').length;
    const err = await connectError(at({ kind: 'fingerprint', fingerprints: [wrong] }).ex);
    expect(err.kind).toBe('host-key');
    expect(err.message).toContain(
      `expected ${wrong}, the server presented ssh-ed25519 ${sshd.hostKeys.ed25519!.fingerprint}, ssh-rsa ${sshd.hostKeys.rsa!.fingerprint}`,
    );
    // One handshake per key type asked for (ed25519, rsa, then ecdsa which this server lacks), and no
    // authentication attempt in any of them: this sshd has no other client.
    await new Promise((r) => setTimeout(r, 300));
    const lines = readFileSync(sshd.log, 'utf8').slice(before).split('\n');
    expect(lines.filter((l) => /^Connection from 127\.0\.0\.1/.test(l))).toHaveLength(3);
    expect(lines.filter((l) => AUTH_ATTEMPT.test(l))).toEqual([]);
  });
});
