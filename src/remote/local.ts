import { spawn } from 'node:child_process';
import type { ExecOptions, ExecResult, Executor } from './executor.js';

/** Runs argv on this machine without a shell. */
export class LocalExecutor implements Executor {
  constructor(
    readonly host = 'localhost',
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const cmd = opts.sudo && process.getuid?.() !== 0 ? ['sudo', '-n', ...argv] : [...argv];
    return runLocal(cmd, { ...opts, env: this.env });
  }

  async close(): Promise<void> {}
}

export function runLocal(
  argv: readonly string[],
  opts: ExecOptions & { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      resolve({ code: 127, stdout: '', stderr: String(e.message) });
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({
        code: code ?? (signal ? 128 + 9 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.stdin ?? '');
  });
}
