import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throwaway sshd on 127.0.0.1 for tests that need a server configured differently from the lab's
 * (several host keys, extra sshd_config lines). Needs root (sshd drops privileges to the logging-in user).
 */
export interface ThrowawaySshd {
  port: number;
  dir: string;
  log: string;
  /** Per host key type: the public key line and its known_hosts line for this port. */
  hostKeys: Record<string, { pub: string; knownHosts: string; fingerprint: string }>;
  stop(): Promise<void>;
}

export async function startSshd(opts: {
  hostKeyTypes: ('ed25519' | 'rsa' | 'ecdsa')[];
  /** user -> authorized public key lines */
  authorizedKeys: Record<string, string>;
  extraConfig?: string[];
  /** Run inside this network namespace (`ip netns exec`): reachable only from that namespace. */
  netns?: string;
  /** Default 127.0.0.1 (of the namespace, with `netns`). */
  listenAddress?: string;
}): Promise<ThrowawaySshd> {
  const address = opts.listenAddress ?? '127.0.0.1';
  const dir = mkdtempSync(join(tmpdir(), 'dyce-sshd-'));
  // sshd reads authorized_keys as the user logging in: a non-root user must be able to reach it.
  chmodSync(dir, 0o755);
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const ak = join(dir, 'authorized_keys');
  mkdirSync(ak, { mode: 0o755 });
  for (const [user, key] of Object.entries(opts.authorizedKeys))
    writeFileSync(join(ak, user), `${key}\n`, { mode: 0o644 });
  const port = await freePort(opts.netns ? '127.0.0.1' : address);
  const hostKeys: ThrowawaySshd['hostKeys'] = {};
  const keyLines: string[] = [];
  for (const t of opts.hostKeyTypes) {
    const f = join(dir, `host_${t}`);
    execFileSync('ssh-keygen', ['-q', '-t', t, ...(t === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-f', f]);
    const pub = readFileSync(`${f}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
    const fingerprint = execFileSync('ssh-keygen', ['-lf', `${f}.pub`], { encoding: 'utf8' }).split(' ')[1]!;
    hostKeys[t] = { pub, knownHosts: `[${address}]:${port} ${pub}`, fingerprint };
    keyLines.push(`HostKey ${f}`);
  }
  const cfg = join(dir, 'sshd_config');
  writeFileSync(
    cfg,
    [
      `Port ${port}`,
      `ListenAddress ${address}`,
      ...keyLines,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(ak, '%u')}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'UsePAM no',
      'StrictModes no',
      'LogLevel VERBOSE',
      ...(opts.extraConfig ?? []),
      '',
    ].join('\n'),
  );
  const log = join(dir, 'sshd.log');
  execFileSync('/usr/sbin/sshd', ['-t', '-f', cfg]);
  const argv = ['/usr/sbin/sshd', '-D', '-e', '-f', cfg, '-E', log];
  const child = opts.netns
    ? spawn('ip', ['netns', 'exec', opts.netns, ...argv], { stdio: 'ignore' })
    : spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  // Inside a namespace the port cannot be probed from here: sshd says in its log when it listens.
  if (opts.netns) await waitForLog(log, `Server listening on ${address} port ${port}`);
  else await waitForPort(port);
  return {
    port,
    dir,
    log,
    hostKeys,
    stop: async () => {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForLog(log: string, text: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (existsSync(log) && readFileSync(log, 'utf8').includes(text)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`throwaway sshd did not log "${text}"`);
}

function freePort(address = '127.0.0.1'): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, address, () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = createConnection({ host: '127.0.0.1', port });
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`throwaway sshd did not listen on ${port}`);
}
