import { randomBytes } from 'node:crypto';
import type { ClientChannel, Client as Ssh2Client } from 'ssh2';
import type { ExecOptions, ExecResult } from './executor.js';

/**
 * One long-lived remote POSIX `sh` per SSH connection, through which every command of the run goes: no new SSH
 * session (sshd fork, PAM, login shell) per command.
 *
 * The session runs `exec sh`; the script below is then written to that sh's standard input. It makes a private
 * directory (mode 0700, files 0600: tmpfs first), answers a probe (`$((6*7))`, so a shell that is not POSIX is
 * refused once, clearly), and reads requests, one line each:
 *
 *   r ID NLINES NBYTES    a command: NLINES lines of its shell text follow, then NBYTES of its standard input
 *                         (stored in a 0600 file of the private directory while it runs, never in argv)
 *   k ID SIGNAL           signal the command's process group (timeouts and cancellation)
 *   g ID                  send the output of a finished command that was too large for one atomic frame
 *   q                     no more requests: wait for running commands, remove the private directory, exit
 *
 * Each command runs in the background in its own session (`setsid`, so its process group can be signalled as a
 * whole), with its stdout and stderr in files. When it ends, a frame `TOKEN d ID CODE NOUT NERR` + the bytes goes
 * to the channel's stderr in ONE write of at most 4 KiB (atomic on a pipe, so frames of concurrent commands
 * never interleave); a larger result is announced (`TOKEN b ID`) and fetched with `g`, answered on stdout, which
 * only the request loop writes. The token is random per session, so command output cannot forge a frame.
 * At end of input (the client closed, or the connection was lost) the loop waits for its running commands (a
 * command is never cut in half by a lost connection) and removes its directory.
 */
function remoteScript(token: string): string {
  return `T=${token}
U=$(umask)
umask 077
D=
for b in "\${XDG_RUNTIME_DIR:-}" /dev/shm "\${TMPDIR:-/tmp}" /tmp; do
  [ -n "$b" ] && [ -d "$b" ] && [ -w "$b" ] || continue
  D=$(mktemp -d "$b/dyce.XXXXXXXX" 2>/dev/null) && break
  D="$b/dyce.$$" && mkdir "$D" 2>/dev/null && break
  D=
done
[ -n "$D" ] || { echo "dyce: no writable temporary directory on this host" >&2; exit 70; }
exec 3>&2 2>>"$D/.log"
trap 'rm -rf "$D"' EXIT
S=
command -v setsid >/dev/null 2>&1 && S=setsid
j() {
  ( umask "$U"; eval "set -- $3"; exec $S "$@" ) <"$2" >"$D/$1.o" 2>"$D/$1.e" 3>&- &
  echo "$!" >"$D/$1.p"
  wait "$!"
  r=$?
  rm -f "$D/$1.p" "$D/$1.i"
  wc -c "$D/$1.o" "$D/$1.e" >"$D/$1.l"
  { read -r ol x; read -r el x; } <"$D/$1.l"
  if [ $((ol + el)) -le 3900 ]; then
    { printf '%s d %s %s %s %s\\n' "$T" "$1" "$r" "$ol" "$el"; cat "$D/$1.o" "$D/$1.e"; } >"$D/$1.f"
    dd if="$D/$1.f" bs=4096 2>/dev/null >&3
    rm -f "$D/$1".*
  else
    echo "$r $ol $el" >"$D/$1.z"
    printf '%s b %s\\n' "$T" "$1" >&3
  fi
}
printf '%s hello %s %s\\n' "$T" "$((6 * 7))" "\${S:-nosetsid}"
while IFS=' ' read -r op id a b; do
  case $op in
  r)
    c=
    n=0
    while [ "$n" -lt "$a" ]; do
      IFS= read -r l || exit 1
      c="$c$l
"
      n=$((n + 1))
    done
    i=/dev/null
    if [ "$b" -gt 0 ]; then
      i="$D/$id.i"
      dd ibs=1 count="$b" of="$i" 2>/dev/null || exit 1
    fi
    j "$id" "$i" "$c" &
    ;;
  k)
    p=
    [ -f "$D/$id.p" ] && read -r p <"$D/$id.p"
    if [ -n "$p" ]; then
      if [ -n "$S" ]; then kill -s "$a" -- "-$p"; else kill -s "$a" "$p"; fi
    fi
    ;;
  g)
    read -r r ol el <"$D/$id.z"
    printf '%s o %s %s %s %s\\n' "$T" "$id" "$r" "$ol" "$el"
    cat "$D/$id.o" "$D/$id.e"
    rm -f "$D/$id".*
    ;;
  q) break ;;
  esac
done
wait
`;
}

/** Why a session's shell could not be used. The message is for people; `kind` for the executor. */
export class ShellRefused extends Error {
  override readonly name = 'ShellRefused';
}

/** The session ended (connection lost, shell killed) while commands were in flight: their outcome is unknown. */
export class ShellLost extends Error {
  override readonly name = 'ShellLost';
}

interface Pending {
  id: number;
  label: string;
  resolve: (r: ExecResult) => void;
  reject: (e: Error) => void;
  timers: NodeJS.Timeout[];
  /** Set when Dyce signalled the command (timeout or cancellation): how to report its end. */
  ended?: 'timeout' | 'cancelled';
  timeoutMs?: number;
  settled: boolean;
  dispose?: () => void;
}

// Only a guard against a login shell that never starts `sh` (waiting for input): a loaded host can be slow.
const HELLO_TIMEOUT_MS = 60_000;
/** After TERM, the command's process group gets KILL this much later. */
const KILL_AFTER_MS = 2_000;
/** If the host does not even answer the KILL, the command is given up on this much after its limit. */
const BACKSTOP_MS = 5_000;

/** A frame parser over one byte stream: `TOKEN kind ID ...\n` headers, some followed by a counted body. */
class FrameReader {
  #buf: Buffer = Buffer.alloc(0);
  constructor(
    private readonly token: string,
    private readonly onFrame: (fields: string[], body: Buffer) => void,
    private readonly onNoise: (text: string) => void,
  ) {}

  push(chunk: Buffer): void {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    for (;;) {
      const start = this.#buf.indexOf(this.token);
      if (start < 0) {
        // Keep a tail that may be the start of a token split across chunks.
        const keep = Math.min(this.#buf.length, this.token.length - 1);
        if (this.#buf.length > keep) this.onNoise(this.#buf.subarray(0, this.#buf.length - keep).toString('utf8'));
        this.#buf = this.#buf.subarray(this.#buf.length - keep);
        return;
      }
      if (start > 0) {
        this.onNoise(this.#buf.subarray(0, start).toString('utf8'));
        this.#buf = this.#buf.subarray(start);
      }
      const nl = this.#buf.indexOf(10);
      if (nl < 0) return;
      const fields = this.#buf
        .subarray(this.token.length + 1, nl)
        .toString('latin1')
        .split(' ');
      const kind = fields[0];
      const bodyLen = kind === 'd' || kind === 'o' ? Number(fields[3]) + Number(fields[4]) : 0;
      if (this.#buf.length < nl + 1 + bodyLen) return;
      const body = this.#buf.subarray(nl + 1, nl + 1 + bodyLen);
      this.#buf = this.#buf.subarray(nl + 1 + bodyLen);
      this.onFrame(fields, Buffer.from(body));
    }
  }
}

/**
 * The client side of the remote shell: requests out on the channel's stdin, frames in from its stdout and stderr.
 * `open` probes once; afterwards `run` is one message each way per command (two for large outputs).
 */
export class RemoteShell {
  readonly #channel: ClientChannel;
  readonly #token: string;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;
  #lostReason = 'the SSH session ended';
  readonly #noise: string[] = [];
  #hello: ((fields: string[]) => void) | undefined;
  /** Whether commands run in their own session (setsid on the host), so a signal reaches their whole group. */
  groupSignals = false;

  private constructor(channel: ClientChannel, token: string) {
    this.#channel = channel;
    this.#token = token;
  }

  /** Starts `sh` in a new session channel on `client` and waits for its answer to the probe. */
  static open(client: Ssh2Client, who: string): Promise<RemoteShell> {
    return new Promise((resolve, reject) => {
      client.exec('exec sh', (err, channel) => {
        if (err) {
          reject(new ShellLost(`cannot open a session: ${err.message}`));
          return;
        }
        const token = `DYCE${randomBytes(12).toString('hex')}`;
        const shell = new RemoteShell(channel, token);
        const timer = setTimeout(() => {
          shell.#hello = undefined;
          channel.close();
          reject(new ShellRefused(`${who}: \`sh\` did not answer within ${HELLO_TIMEOUT_MS / 1000}s of login`));
        }, HELLO_TIMEOUT_MS);
        shell.#hello = (fields) => {
          clearTimeout(timer);
          shell.#hello = undefined;
          if (fields[1] !== '42') {
            channel.close();
            reject(
              new ShellRefused(
                `${who}: the remote \`sh\` is not a POSIX shell (arithmetic expansion $((6 * 7)) gave ${JSON.stringify(fields[1] ?? '')}); Dyce needs a POSIX sh on the host`,
              ),
            );
            return;
          }
          shell.groupSignals = fields[2] === 'setsid';
          resolve(shell);
        };
        shell.#attach(() => {
          clearTimeout(timer);
          if (!shell.#hello) return;
          shell.#hello = undefined;
          const said = shell.#noise.join('').trim();
          reject(
            new ShellRefused(
              `${who}: the login shell did not start a POSIX \`sh\`` +
                (said ? ` (it said: ${said.split('\n').slice(-3).join(' / ')})` : ' (the session closed at once)') +
                '. Dyce runs every command through `sh`: give this user a login shell that can run `sh` ' +
                '(e.g. /bin/sh or /bin/bash), not nologin, a restricted shell or a forced command.',
            ),
          );
        });
        channel.write(remoteScript(token));
      });
    });
  }

  #attach(onClosedBeforeHello: () => void): void {
    const onFrame = (fields: string[], body: Buffer) => this.#frame(fields, body);
    const noise = (text: string) => {
      if (this.#noise.length < 50) this.#noise.push(text);
    };
    const out = new FrameReader(this.#token, onFrame, noise);
    const err = new FrameReader(this.#token, onFrame, noise);
    this.#channel.on('data', (d: Buffer) => out.push(d));
    this.#channel.stderr.on('data', (d: Buffer) => err.push(d));
    this.#channel.on('error', () => {});
    this.#channel.on('close', () => {
      this.#closed = true;
      onClosedBeforeHello();
      for (const p of [...this.#pending.values()]) {
        this.#settle(p);
        p.reject(new ShellLost(`${this.#lostReason} while \`${p.label}\` was running; its outcome is unknown`));
      }
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** How many commands are running. */
  get inFlight(): number {
    return this.#pending.size;
  }

  run(command: string, opts: ExecOptions & { label: string }): Promise<ExecResult> {
    if (this.#closed) return Promise.reject(new ShellLost(`${this.#lostReason} before \`${opts.label}\` was sent`));
    const id = this.#nextId++;
    const stdin = opts.stdin === undefined ? Buffer.alloc(0) : Buffer.from(opts.stdin);
    const lines = command.split('\n');
    const message = Buffer.concat([
      Buffer.from(`r ${id} ${lines.length} ${stdin.length}\n${lines.join('\n')}\n`, 'utf8'),
      stdin,
    ]);
    return new Promise<ExecResult>((resolve, reject) => {
      const p: Pending = { id, label: opts.label, resolve, reject, timers: [], settled: false };
      this.#pending.set(id, p);
      if (opts.timeoutMs) {
        p.timeoutMs = opts.timeoutMs;
        p.timers.push(setTimeout(() => this.#stop(p, 'timeout'), opts.timeoutMs));
      }
      if (opts.signal) {
        const onAbort = () => this.#stop(p, 'cancelled');
        if (opts.signal.aborted) queueMicrotask(onAbort);
        else {
          opts.signal.addEventListener('abort', onAbort, { once: true });
          p.dispose = () => opts.signal?.removeEventListener('abort', onAbort);
        }
      }
      this.#channel.write(message);
    });
  }

  /** TERM to the command's process group now, KILL a little later, and give up on the host after that. */
  #stop(p: Pending, why: 'timeout' | 'cancelled'): void {
    if (p.settled || p.ended) return;
    p.ended = why;
    this.#signal(p.id, 'TERM');
    p.timers.push(setTimeout(() => this.#signal(p.id, 'KILL'), KILL_AFTER_MS));
    p.timers.push(
      setTimeout(() => {
        if (p.settled) return;
        this.#settle(p);
        p.resolve({
          code: why === 'timeout' ? 124 : 130,
          stdout: '',
          stderr: `dyce: \`${p.label}\` ${this.#endedText(p)} and the host did not end it\n`,
        });
      }, BACKSTOP_MS),
    );
  }

  #endedText(p: Pending): string {
    return p.ended === 'timeout' ? `timed out after ${formatMs(p.timeoutMs ?? 0)}` : 'was cancelled';
  }

  #signal(id: number, signal: 'TERM' | 'KILL'): void {
    if (!this.#closed && this.#pending.has(id)) this.#channel.write(`k ${id} ${signal}\n`);
  }

  #settle(p: Pending): void {
    p.settled = true;
    for (const t of p.timers) clearTimeout(t);
    p.dispose?.();
    this.#pending.delete(p.id);
  }

  #frame(fields: string[], body: Buffer): void {
    const [kind, a] = fields;
    if (kind === 'hello') {
      this.#hello?.(fields);
      return;
    }
    const p = this.#pending.get(Number(a));
    if (kind === 'b') {
      if (p) this.#channel.write(`g ${p.id}\n`);
      return;
    }
    if (kind !== 'd' && kind !== 'o') return;
    if (!p || p.settled) return;
    const code = Number(fields[2]);
    const outLen = Number(fields[3]);
    const stdout = body.subarray(0, outLen).toString('utf8');
    let stderr = body.subarray(outLen).toString('utf8');
    this.#settle(p);
    if (p.ended) {
      stderr += `${stderr && !stderr.endsWith('\n') ? '\n' : ''}dyce: \`${p.label}\` ${this.#endedText(p)}\n`;
      p.resolve({ code: p.ended === 'timeout' ? 124 : 130, stdout, stderr });
      return;
    }
    p.resolve({ code, stdout, stderr });
  }

  /**
   * Ends the session. Commands still running are cancelled (their process groups get TERM); the host's loop then
   * removes its private directory and exits.
   */
  close(reason = 'the session was closed'): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#lostReason = reason;
    for (const p of this.#pending.values()) this.#signal(p.id, 'TERM');
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#channel.close();
        resolve();
      }, 2_000);
      timer.unref();
      this.#channel.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.#channel.end('q\n');
    });
  }
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)}s` : `${ms}ms`;
}
