import { createHash } from 'node:crypto';
import { createServer, connect as netConnect, type Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import ssh2, { type ConnectConfig, type ParsedKey, type Client as Ssh2Client } from 'ssh2';

// ssh2 is CommonJS; its named exports are not all visible to Node's ESM loader, so take them from the default.
const { Client, utils } = ssh2;
type Client = Ssh2Client;

import { shellQuote } from '../commands/quote.js';
import type { Reporter } from '../github/reporter.js';
import { UserError } from '../util/errors.js';
import { Secret } from '../util/secret.js';
import type { ExecOptions, ExecResult, Executor } from './executor.js';
import {
  checkHostKey,
  describeVerdict,
  fingerprintSha256,
  type HostKeyPolicy,
  type HostKeyVerdict,
  hostKeyAlgorithms,
} from './known-hosts.js';
import { RemoteShell, ShellLost, ShellRefused } from './shell.js';

/**
 * SSH Executor over ssh2: one connection per host, reused for every command, with keep-alive.
 *
 * Security decisions, in order of the connection:
 * - the host key is judged in ssh2's hostVerifier, i.e. during key exchange and BEFORE any authentication
 *   request is sent: an unknown or mismatched key ends the connection with no user name or key offered;
 * - skipping the check needs `hostKey: { kind: 'insecure' }` and always warns through the Reporter;
 * - commands are argv, turned into one shell string by shellQuote (the only quoting function);
 * - secrets travel only on stdin (ExecOptions.stdin): never in the command string, which sshd and the
 *   remote shell can expose in process listings.
 */

export interface SshAuth {
  /** A private key, OpenSSH or PEM text. At least one of privateKey and agent is given. */
  privateKey?: string | Buffer | undefined;
  passphrase?: Secret | string;
  /** An ssh-agent socket (SSH_AUTH_SOCK): its keys are offered first (the CLI's default, as OpenSSH does). */
  agent?: string | undefined;
}

export interface SshEndpoint extends SshAuth {
  address: string;
  port: number;
  user: string;
  hostKey: HostKeyPolicy;
}

export interface SshTarget extends SshEndpoint {
  /** The inventory name, for messages. */
  host: string;
  /** A bastion every connection to this host is tunnelled through (ssh2 forwardOut), with its own verified key. */
  jump?: SshEndpoint;
}

export interface RetryPolicy {
  /** Total connection attempts (1 = no retry). */
  attempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  factor: number;
}

export interface SshOptions {
  reporter: Reporter;
  /** TCP connect timeout. */
  connectTimeoutMs?: number;
  /** From TCP connected to authenticated (ssh2 readyTimeout). */
  handshakeTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  retry?: Partial<RetryPolicy>;
  /** Injected for tests of the retry schedule. */
  sleep?: (ms: number) => Promise<void>;
  /**
   * Shares one connection to each bastion among the executors given the same pool (a many-host deploy): one login
   * at the bastion instead of one per host, and no burst of handshakes against its sshd's MaxStartups.
   */
  jumps?: JumpPool;
}

/**
 * Bastion connections shared by key (endpoint, user and private key): each target executor holds a reference while
 * it uses one; the last to close it closes the connection. Owned by the caller, never module-level.
 */
export class JumpPool {
  readonly #entries = new Map<string, { exec: SshExecutor; refs: number }>();

  /** Takes a reference to the bastion connection for `jump`, creating the executor if needed. */
  acquire(jump: SshEndpoint, create: () => SshExecutor): { exec: SshExecutor; release: () => Promise<void> } {
    const key = jumpKey(jump);
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { exec: create(), refs: 0 };
      this.#entries.set(key, entry);
    }
    entry.refs++;
    const held = entry;
    let released = false;
    return {
      exec: held.exec,
      release: async () => {
        if (released) return;
        released = true;
        held.refs--;
        if (held.refs > 0) return;
        if (this.#entries.get(key) === held) this.#entries.delete(key);
        await held.exec.close();
      },
    };
  }

  /** How many bastion connections are held (for tests). */
  get size(): number {
    return this.#entries.size;
  }
}

function jumpKey(j: SshEndpoint): string {
  const key = `${j.privateKey === undefined ? '' : j.privateKey.toString()}\0${j.agent ?? ''}`;
  const pass = passphraseOf(j) ?? '';
  return JSON.stringify([
    j.user,
    j.address,
    j.port,
    createHash('sha256').update(key).update('\0').update(pass).digest('hex'),
  ]);
}

export type SshErrorKind =
  | 'refused'
  | 'connect-timeout'
  | 'handshake-timeout'
  | 'unreachable'
  | 'dns'
  | 'host-key'
  | 'auth'
  | 'key'
  | 'sudo'
  | 'shell'
  | 'closed';

/** A connection problem the user can act on. `kind` is for code; the message is for people. */
export class SshError extends UserError {
  override readonly name = 'SshError';
  constructor(
    readonly kind: SshErrorKind,
    message: string,
    options: { cause?: unknown; details?: string[]; attempts?: number; verdict?: HostKeyVerdict } = {},
  ) {
    super(message, options);
    this.attempts = options.attempts ?? 1;
    this.verdict = options.verdict;
  }
  /** How many connection attempts were made before giving up. */
  attempts: number;
  /** This side's TCP port of the last attempt (direct connections only): to find it in the server's log. */
  localPort: number | undefined;
  readonly verdict: HostKeyVerdict | undefined;
}

const RETRYABLE: ReadonlySet<SshErrorKind> = new Set([
  'refused',
  'connect-timeout',
  'handshake-timeout',
  'unreachable',
  'closed',
]);

const ALL_HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
] as const;

/** Host key algorithms of one key: ssh-rsa keys sign as rsa-sha2-512/256 too. */
function keyFamily(algorithmOrKeyType: string): string {
  if (algorithmOrKeyType.startsWith('ecdsa-')) return 'ecdsa';
  if (algorithmOrKeyType === 'ssh-rsa' || algorithmOrKeyType.startsWith('rsa-')) return 'rsa';
  return algorithmOrKeyType;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, initialDelayMs: 1000, maxDelayMs: 8000, factor: 2 };

/** The delays before attempts 2..n: initial, initial*factor, ... capped at max. Pure, for tests and docs. */
export function retryDelays(policy: RetryPolicy): number[] {
  const out: number[] = [];
  let d = policy.initialDelayMs;
  for (let i = 1; i < policy.attempts; i++) {
    out.push(Math.min(d, policy.maxDelayMs));
    d *= policy.factor;
  }
  return out;
}

function passphraseOf(auth: SshAuth): string | undefined {
  const pass = auth.passphrase instanceof Secret ? auth.passphrase.reveal() : auth.passphrase;
  return pass === '' ? undefined : pass;
}

/** Parses the private key up front, so that a passphrase problem is named as such and never retried. */
export function loadPrivateKey(auth: SshAuth & { privateKey: string | Buffer }, who: string): ParsedKey {
  const parsed = utils.parseKey(auth.privateKey, passphraseOf(auth));
  if (parsed instanceof Error) {
    const m = parsed.message;
    if (/no passphrase given/i.test(m))
      throw new SshError(
        'key',
        `the SSH private key for ${who} is passphrase-protected: give its passphrase (ssh-passphrase)`,
        {
          cause: parsed,
        },
      );
    if (/bad passphrase|integrity check failed|bad decrypt/i.test(m))
      throw new SshError(
        'key',
        `the SSH private key for ${who} could not be decrypted: wrong passphrase (ssh-passphrase)`,
        {
          cause: parsed,
        },
      );
    throw new SshError(
      'key',
      `the SSH private key for ${who} is not a usable private key (${m}); give an OpenSSH or PEM private key`,
      {
        cause: parsed,
      },
    );
  }
  const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed;
  if (!key.isPrivateKey()) throw new SshError('key', `the SSH key for ${who} is a public key; give the private key`);
  return key;
}

interface Connection {
  client: Client;
  closed: boolean;
  /** The one long-lived remote shell of this connection, opened by the first command. */
  shell?: Promise<RemoteShell>;
}

export class SshExecutor implements Executor {
  readonly host: string;
  readonly #target: SshTarget;
  readonly #opts: Required<Omit<SshOptions, 'retry' | 'sleep' | 'jumps'>> & {
    retry: RetryPolicy;
    sleep: (ms: number) => Promise<void>;
    jumps?: JumpPool | undefined;
  };
  #connecting: Promise<Connection> | undefined;
  #jump: { exec: SshExecutor; release: () => Promise<void> } | undefined;
  readonly #servers = new Set<Server>();
  #closing = false;

  constructor(target: SshTarget, options: SshOptions) {
    this.host = target.host;
    this.#target = target;
    this.#opts = {
      reporter: options.reporter,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 20_000,
      keepaliveIntervalMs: options.keepaliveIntervalMs ?? 15_000,
      keepaliveCountMax: options.keepaliveCountMax ?? 4,
      retry: { ...DEFAULT_RETRY, ...options.retry },
      sleep: options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
      jumps: options.jumps,
    };
  }

  /** The remote user commands run as (before sudo). */
  get user(): string {
    return this.#target.user;
  }

  /** Connects now (otherwise the first command does). Safe to call repeatedly. */
  async connect(): Promise<void> {
    await this.#connection();
  }

  async run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (argv.length === 0) throw new Error('SshExecutor.run: empty argv');
    const sudo = opts.sudo === true && this.#target.user !== 'root';
    // `--` ends sudo's options, so a command starting with `-` can never be read as one.
    const command = shellQuote(sudo ? ['sudo', '-n', '--', ...argv] : [...argv]);
    const label = opts.label ?? argv.slice(0, 3).join(' ');
    const shell = await this.#shell();
    let result: ExecResult;
    try {
      result = await shell.run(command, { ...opts, label });
    } catch (error) {
      if (error instanceof ShellLost) throw new SshError('closed', `${this.host}: ${error.message}`, { cause: error });
      throw error;
    }
    if (
      sudo &&
      result.code === 1 &&
      /^sudo: (a password is required|a terminal is required|.*may not run sudo)/m.test(result.stderr)
    ) {
      throw new SshError(
        'sudo',
        `${this.host}: user "${this.#target.user}" cannot run \`${label}\` through sudo without a password ` +
          `(sudo -n said: ${result.stderr.trim().split('\n')[0]}). Give "${this.#target.user}" passwordless sudo ` +
          `for it, or connect as a user that does not need sudo (root, or a member of the docker group for docker).`,
      );
    }
    return result;
  }

  /** The connection's one remote shell: opened (and probed for a POSIX sh) once, reopened if it was lost. */
  async #shell(): Promise<RemoteShell> {
    for (;;) {
      const conn = await this.#connection();
      conn.shell ??= RemoteShell.open(conn.client, this.host).catch((error: unknown) => {
        conn.shell = undefined;
        if (error instanceof ShellRefused) throw new SshError('shell', `${error.message}`, { cause: error });
        throw new SshError('closed', `${this.host}: ${(error as Error).message}`, { cause: error });
      });
      const shell = await conn.shell;
      if (!shell.closed) return shell;
      if (conn.shell) conn.shell = undefined;
      if (conn.closed) continue;
    }
  }

  /**
   * Opens a TCP connection from the remote host to `host:port` (default: the remote host's own loopback),
   * carried inside the SSH connection. Deploy's health gate uses it to reach replicas bound to 127.0.0.1.
   */
  async forwardOut(port: number, host = '127.0.0.1'): Promise<Duplex> {
    const conn = await this.#connection();
    return forwardOut(conn.client, host, port, this.#opts.connectTimeoutMs, this.host);
  }

  /**
   * Listens on 127.0.0.1:<random> on this machine and forwards every connection to `host:port` as seen from
   * the remote host, so that ordinary HTTP clients can reach a port that is only open on the remote loopback.
   */
  async forwardLocalPort(port: number, host = '127.0.0.1'): Promise<{ port: number; close: () => Promise<void> }> {
    await this.#connection();
    const sockets = new Set<Socket>();
    const server = createServer((local) => {
      sockets.add(local);
      local.on('close', () => sockets.delete(local));
      this.forwardOut(port, host).then(
        (remote) => {
          local.pipe(remote).pipe(local);
          const end = () => {
            local.destroy();
            remote.destroy();
          };
          local.on('error', end).on('close', end);
          remote.on('error', end).on('close', end);
        },
        () => local.destroy(),
      );
    });
    this.#servers.add(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    const localPort = typeof address === 'object' && address ? address.port : 0;
    return {
      port: localPort,
      close: () =>
        new Promise<void>((resolve) => {
          this.#servers.delete(server);
          server.close(() => resolve());
          // Kept-alive client connections would hold close() open; the tunnel is being torn down anyway.
          for (const s of sockets) s.destroy();
        }),
    };
  }

  async close(): Promise<void> {
    this.#closing = true;
    for (const s of this.#servers) s.close();
    this.#servers.clear();
    const pending = this.#connecting;
    this.#connecting = undefined;
    if (pending) {
      try {
        const conn = await pending;
        const shell = await conn.shell?.catch(() => undefined);
        await shell?.close();
        if (!conn.closed) {
          await new Promise<void>((resolve) => {
            conn.client.once('close', () => resolve());
            conn.client.end();
            setTimeout(resolve, 2000).unref();
          });
        }
      } catch {
        // A connection that never came up has nothing to close.
      }
    }
    const jump = this.#jump;
    this.#jump = undefined;
    await jump?.release();
    this.#closing = false;
  }

  #connection(): Promise<Connection> {
    const current = this.#connecting;
    if (current) {
      return current.then((c) => {
        if (!c.closed) return c;
        if (this.#connecting === current) this.#connecting = undefined;
        return this.#connection();
      });
    }
    const p = this.#connectWithRetry();
    this.#connecting = p;
    p.catch(() => {
      if (this.#connecting === p) this.#connecting = undefined;
    });
    return p;
  }

  async #connectWithRetry(): Promise<Connection> {
    const t = this.#target;
    const who = `${t.user}@${t.address}:${t.port}`;
    const key = t.privateKey === undefined ? undefined : loadPrivateKey({ ...t, privateKey: t.privateKey }, who);
    if (!key && !t.agent) throw new SshError('key', `no SSH key for ${who}: give a private key or an ssh-agent`);
    const delays = retryDelays(this.#opts.retry);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#handshake(key);
      } catch (error) {
        const e = toSshError(error, t, this.#opts);
        e.attempts = attempt;
        e.localPort ??= (error as { localPort?: number }).localPort;
        const delay = delays[attempt - 1];
        if (!RETRYABLE.has(e.kind) || delay === undefined || this.#closing) throw e;
        this.#opts.reporter.info(
          `${this.host}: ${e.message.split('\n')[0]}; retrying in ${formatMs(delay)} (attempt ${attempt + 1} of ${this.#opts.retry.attempts})`,
        );
        await this.#opts.sleep(delay);
      }
    }
  }

  /**
   * A pinned fingerprint does not say which key type it is, and a server presents its preferred type first.
   * On a mismatch we ask again for the types not seen yet, so that a pinned RSA key behind an ed25519 one is
   * still found; if none matches, the error lists every key the server presented.
   */
  async #handshake(key: ParsedKey | undefined): Promise<Connection> {
    const t = this.#target;
    if (t.hostKey.kind !== 'fingerprint') return this.#connectOnce(key);
    let remaining = [...ALL_HOST_KEY_ALGORITHMS];
    const seen: Extract<HostKeyVerdict, { ok: false }>[] = [];
    for (;;) {
      try {
        return await this.#connectOnce(key, remaining);
      } catch (error) {
        const v = error instanceof SshError && error.kind === 'host-key' ? error.verdict : undefined;
        if (v && !v.ok && v.reason === 'mismatch') {
          seen.push(v);
          remaining = remaining.filter((a) => keyFamily(a) !== keyFamily(v.keyType));
          if (remaining.length > 0) continue;
        }
        // No key type left to ask for (or the server offers none of them): report what it did present.
        if (seen.length === 0) throw error;
        const last = seen[seen.length - 1]!;
        const got = seen.map((s) => `${s.keyType} ${s.fingerprint}`).join(', ');
        const e = new SshError(
          'host-key',
          `${this.host}: refusing to connect: host key of ${t.address}:${t.port} does not match: expected ` +
            `${last.expected.join(' or ')}, the server presented ${got}. No authentication was attempted and no command ran.`,
          { verdict: last, cause: error },
        );
        e.localPort = (error as { localPort?: number }).localPort;
        throw e;
      }
    }
  }

  async #connectOnce(key: ParsedKey | undefined, offer?: readonly string[]): Promise<Connection> {
    const t = this.#target;
    const o = this.#opts;
    const sock = t.jump ? await this.#viaJump(t.jump) : await tcpConnect(t.address, t.port, o.connectTimeoutMs);
    const localPort = sock instanceof Socket ? sock.localPort : undefined;
    let verdict: HostKeyVerdict | undefined;
    const client = new Client();
    const algorithms = offer ? [...offer] : hostKeyAlgorithms(t.hostKey, t.address, t.port);
    const config: ConnectConfig = {
      sock,
      username: t.user,
      // ssh2 only takes key text; it was parsed once above so that a passphrase problem is reported as one.
      ...(t.privateKey === undefined ? {} : { privateKey: t.privateKey }),
      ...(passphraseOf(t) === undefined ? {} : { passphrase: passphraseOf(t) }),
      ...(t.agent ? { agent: t.agent } : {}),
      readyTimeout: o.handshakeTimeoutMs,
      keepaliveInterval: o.keepaliveIntervalMs,
      keepaliveCountMax: o.keepaliveCountMax,
      tryKeyboard: false,
      // Runs during key exchange, before ssh-userauth is even requested.
      hostVerifier: (presented: Buffer) => {
        verdict = checkHostKey(t.hostKey, t.address, t.port, presented);
        if (verdict.ok && !verdict.trusted) {
          o.reporter.warning(
            `INSECURE: the host key of ${this.host} (${t.address}:${t.port}) is NOT being verified ` +
              `(insecure-skip-host-key-check). It presented ${verdict.keyType} ${verdict.fingerprint}; anyone on the ` +
              `path can impersonate this host and receive every secret sent to it. Pin it with known-hosts or host-fingerprint.`,
            { title: 'Host key not verified' },
          );
        }
        return verdict.ok;
      },
      ...(algorithms ? { algorithms: { serverHostKey: algorithms as never } } : {}),
    };
    const conn: Connection = { client, closed: false };
    return new Promise<Connection>((resolve, reject) => {
      let ready = false;
      client.on('ready', () => {
        ready = true;
        resolve(conn);
      });
      client.on('error', (err: Error & { level?: string }) => {
        if (ready) {
          o.reporter.debug(`${this.host}: ssh connection error: ${err.message}`);
          return;
        }
        if (verdict && !verdict.ok) {
          reject(
            new SshError(
              'host-key',
              `${this.host}: refusing to connect: ${describeVerdict(verdict, t.address, t.port)}. ` +
                `No authentication was attempted and no command ran.`,
              { verdict, cause: err },
            ),
          );
          return;
        }
        reject(err);
      });
      client.on('close', () => {
        conn.closed = true;
        if (!ready)
          reject(Object.assign(new Error('connection closed during the SSH handshake'), { code: 'ECONNRESET' }));
      });
      try {
        client.connect(config);
      } catch (error) {
        reject(error);
      }
    }).catch((error) => {
      client.end();
      sock.destroy();
      if (error !== null && typeof error === 'object') Object.assign(error, { localPort });
      if (
        error instanceof Error &&
        (error as { level?: string }).level === 'client-authentication' &&
        !(error instanceof SshError)
      ) {
        const auth = new SshError(
          'auth',
          `${this.host}: authentication failed for user "${t.user}" at ${t.address}:${t.port}: the server refused ` +
            [
              ...(t.agent ? [`the keys of the ssh-agent at ${t.agent}`] : []),
              ...(key ? [`the ${key.type} key ${fingerprintSha256(key.getPublicSSH() as Buffer)}`] : []),
            ].join(' and ') +
            ` (is its public key in ~${t.user}/.ssh/authorized_keys?)`,
          { cause: error },
        );
        auth.localPort = localPort;
        throw auth;
      }
      throw error;
    });
  }

  async #viaJump(jump: SshEndpoint): Promise<Duplex> {
    if (!this.#jump) {
      const { jumps, ...opts } = this.#opts;
      const create = () =>
        new SshExecutor(
          { ...jump, host: `jump host ${jump.user}@${jump.address}:${jump.port}` },
          { ...opts, retry: { ...opts.retry, attempts: 1 } },
        );
      if (jumps) this.#jump = jumps.acquire(jump, create);
      else {
        const exec = create();
        this.#jump = { exec, release: () => exec.close() };
      }
    }
    const t = this.#target;
    return this.#jump.exec.forwardOut(t.port, t.address);
  }
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)}s` : `${ms}ms`;
}

function tcpConnect(address: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host: address, port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(Object.assign(new Error(`TCP connect timed out after ${timeoutMs}ms`), { code: 'DYCE_CONNECT_TIMEOUT' }));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.setNoDelay(true);
      resolve(sock);
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    });
  });
}

function forwardOut(client: Client, host: string, port: number, timeoutMs: number, who: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      reject(
        Object.assign(new Error(`${who}: opening a tunnel to ${host}:${port} timed out after ${timeoutMs}ms`), {
          code: 'DYCE_CONNECT_TIMEOUT',
        }),
      );
    }, timeoutMs);
    client.forwardOut('127.0.0.1', 0, host, port, (err, stream) => {
      clearTimeout(timer);
      // A tunnel that opens after we gave up is closed at once rather than leaked.
      if (expired) {
        stream?.destroy();
        return;
      }
      if (err) {
        // sshd answers "Connection refused" (reason 2) when nothing listens on the far side.
        const refused = /refused|connect failed/i.test(err.message);
        reject(
          Object.assign(new Error(`${who}: cannot open a tunnel to ${host}:${port}: ${err.message}`), {
            code: refused ? 'ECONNREFUSED' : 'EHOSTUNREACH',
            cause: err,
          }),
        );
        return;
      }
      resolve(stream);
    });
  });
}

function toSshError(
  error: unknown,
  t: SshTarget,
  o: { connectTimeoutMs: number; handshakeTimeoutMs: number },
): SshError {
  if (error instanceof SshError) return error;
  const e = error as Error & { code?: string; level?: string };
  const where = `${t.host} (${t.user}@${t.address}:${t.port}${t.jump ? ` via ${t.jump.address}:${t.jump.port}` : ''})`;
  switch (e.code) {
    case 'ECONNREFUSED':
      return new SshError(
        'refused',
        `${where}: connection refused: nothing is listening on port ${t.port} (is sshd running, and is the port right?)`,
        {
          cause: e,
        },
      );
    case 'DYCE_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return new SshError(
        'connect-timeout',
        `${where}: TCP connection timed out after ${formatMs(o.connectTimeoutMs)} (no answer at all: a firewall dropping packets, or the wrong address)`,
        {
          cause: e,
        },
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new SshError('dns', `${where}: cannot resolve host name "${t.address}"`, { cause: e });
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new SshError('unreachable', `${where}: host unreachable (${e.message})`, { cause: e });
    case 'ECONNRESET':
    case 'EPIPE':
      return new SshError('closed', `${where}: the connection was closed during the SSH handshake`, { cause: e });
  }
  if (e.level === 'client-timeout')
    return new SshError(
      'handshake-timeout',
      `${where}: timed out after ${formatMs(o.handshakeTimeoutMs)} waiting for the SSH handshake: the port accepted the TCP connection but no SSH server answered in time`,
      { cause: e },
    );
  return new SshError('closed', `${where}: SSH connection failed: ${e.message ?? String(error)}`, { cause: e });
}
