import { getExecOutput } from '@actions/exec';
import type { Reporter } from '../github/reporter.js';
import type { ExecResult } from '../remote/executor.js';
import type { DockerCommand } from './commands.js';

export interface DockerRunOptions {
  /** Stream each output line to the reporter as it comes (builds and pushes take a while). */
  stream?: boolean;
  /** Environment for this command on top of the runner's base environment. */
  env?: Record<string, string>;
}

/** Runs docker client commands on this machine. */
export interface DockerRunner {
  run(cmd: DockerCommand, opts?: DockerRunOptions): Promise<ExecResult>;
}

/**
 * Runs docker through @actions/exec rather than the project's runLocal: a build or push runs for minutes and its
 * progress must reach the log line by line as it happens (runLocal buffers until exit), and @actions/exec also
 * feeds stdin and collects stdout/stderr. `silent` keeps it from echoing the command line or writing output
 * itself: every line goes through the Reporter, which masks registered secrets (the CLI's Redactor, or the runner).
 */
export class ExecDockerRunner implements DockerRunner {
  constructor(
    private readonly reporter: Reporter,
    /** The base environment (DOCKER_CONFIG of the run, DOCKER_HOST, PATH, ...). */
    private readonly baseEnv: () => Record<string, string>,
  ) {}

  async run(cmd: DockerCommand, opts: DockerRunOptions = {}): Promise<ExecResult> {
    const env = { ...this.baseEnv(), ...cmd.env, ...(opts.env ?? {}) };
    const [tool, ...args] = cmd.argv;
    try {
      const r = await getExecOutput(/\s/.test(tool!) ? `"${tool}"` : tool!, args, {
        silent: true,
        ignoreReturnCode: true,
        env,
        ...(cmd.stdin === undefined ? {} : { input: Buffer.from(cmd.stdin) }),
        ...(opts.stream
          ? {
              listeners: {
                stdline: (l: string) => this.reporter.info(l),
                errline: (l: string) => this.reporter.info(l),
              },
            }
          : {}),
      });
      return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
    } catch (error) {
      // @actions/exec throws when the executable cannot be found or started.
      return { code: 127, stdout: '', stderr: error instanceof Error ? error.message : String(error) };
    }
  }
}

/** process.env without undefined values, as @actions/exec wants it. */
export function definedEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}
