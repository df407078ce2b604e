/**
 * The only I/O to hosts. Commands are argv arrays; stdin carries anything secret.
 * Implementations: SSH (ssh.ts), local (local.ts), and a recording one for unit tests of pure logic.
 */
export interface ExecOptions {
  /** Bytes written to the command's standard input, then closed. The only way a secret reaches a host. */
  stdin?: string | Buffer;
  /** Run through `sudo -n` when the connection user is not root (see Executor.become). */
  sudo?: boolean;
  /** Milliseconds before the command is stopped (its remote process group gets TERM, then KILL); code 124. */
  timeoutMs?: number;
  /** Cancels the command: its remote process group gets TERM, then KILL; code 130. */
  signal?: AbortSignal;
  /** A short label for logs, e.g. "docker ps". Never includes secret values. */
  label?: string;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Executor {
  /** A name for messages: the inventory name of the host. */
  readonly host: string;
  /** The remote user commands run as (before sudo), when the executor knows it (SSH: after ~/.ssh/config). */
  readonly user?: string;
  run(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  close(): Promise<void>;
}

/** A failed remote command, judged by its exit code (never by stderr text alone). */
export class CommandFailed extends Error {
  override readonly name = 'CommandFailed';
  constructor(
    readonly host: string,
    readonly label: string,
    readonly result: ExecResult,
  ) {
    super(
      `${host}: \`${label}\` exited ${result.code}${result.stderr.trim() ? `: ${lastLines(result.stderr, 5)}` : ''}`,
    );
  }
}

export function lastLines(text: string, n: number): string {
  return text.trim().split('\n').slice(-n).join('\n');
}

/** Runs and throws CommandFailed on a non-zero exit. */
export async function runChecked(exec: Executor, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const r = await exec.run(argv, opts);
  if (r.code !== 0) throw new CommandFailed(exec.host, opts.label ?? argv.slice(0, 3).join(' '), r);
  return r;
}

/** Records commands and answers from a script; for unit tests of pure logic only. */
export class RecordingExecutor implements Executor {
  readonly calls: { argv: string[]; opts: ExecOptions }[] = [];
  constructor(
    readonly host = 'recorded',
    private readonly answer: (argv: readonly string[], opts: ExecOptions) => ExecResult | Promise<ExecResult> = () => ({
      code: 0,
      stdout: '',
      stderr: '',
    }),
  ) {}
  async run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    this.calls.push({ argv: [...argv], opts });
    return this.answer(argv, opts);
  }
  async close(): Promise<void> {}
}
