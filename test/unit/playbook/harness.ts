import { type Host, parseInventory } from '../../../src/config/inventory.js';
import { RecordingReporter } from '../../../src/github/reporter.js';
import { JsonCollector, type PlayEvents, TextPrinter } from '../../../src/playbook/output.js';
import { parsePlaybook } from '../../../src/playbook/parse.js';
import { runPlaybook } from '../../../src/playbook/run.js';
import { type ExecOptions, type ExecResult, RecordingExecutor } from '../../../src/remote/executor.js';

/** A unit-test run of a playbook on recording executors: every command, the text output and the --json output. */
export interface PlayRun {
  exitCode: number;
  calls: { host: string; argv: string[]; opts: ExecOptions }[];
  json: JsonCollector;
  text: string;
  reporter: RecordingReporter;
  /** Everything the run printed or reported, for searches. */
  everything: string;
}

export type Answer = (argv: readonly string[], opts: ExecOptions) => ExecResult;

const ok: Answer = () => ({ code: 0, stdout: '', stderr: '' });

export async function playOnRecorders(
  playbook: string,
  opts: {
    hosts?: string;
    extra?: Record<string, unknown>;
    unsafe?: Record<string, unknown>;
    check?: boolean;
    tags?: string[];
    skipTags?: string[];
    answer?: Answer;
    file?: string;
  } = {},
): Promise<PlayRun> {
  const inventory = parseInventory(opts.hosts ?? 'h1 ansible_connection=local\n', { source: 'hosts' });
  const calls: PlayRun['calls'] = [];
  const json = new JsonCollector();
  let text = '';
  const printer = new TextPrinter((s) => {
    text += s;
  });
  const reporter = new RecordingReporter();
  const events = new Proxy(json, {
    get(target, key) {
      const a = (target as unknown as Record<string | symbol, unknown>)[key];
      const b = (printer as unknown as Record<string | symbol, unknown>)[key];
      if (typeof a === 'function' && typeof b === 'function')
        return (...args: unknown[]) => {
          (a as (...x: unknown[]) => void).apply(target, args);
          (b as (...x: unknown[]) => void).apply(printer, args);
        };
      return a;
    },
  }) as PlayEvents;
  const file = opts.file ?? 'playbook.yml';
  const r = await runPlaybook(parsePlaybook(playbook, file), {
    inventory,
    extraVars: opts.extra ?? {},
    ...(opts.unsafe ? { unsafeVars: opts.unsafe } : {}),
    check: opts.check ?? false,
    ...(opts.tags ? { tags: opts.tags } : {}),
    ...(opts.skipTags ? { skipTags: opts.skipTags } : {}),
    reporter,
    events,
    connect: async (h: Host) => {
      const exec = new RecordingExecutor(h.name, opts.answer ?? ok);
      const orig = exec.run.bind(exec);
      exec.run = async (argv, o = {}) => {
        calls.push({ host: h.name, argv: [...argv], opts: o });
        return orig(argv, o);
      };
      return exec;
    },
  });
  const everything = [
    text,
    JSON.stringify(json.run),
    ...reporter.lines,
    ...Object.values(reporter.outputs),
    ...calls.map((c) => c.argv.join(' ')),
  ].join('\n');
  return { exitCode: r.exitCode, calls, json, text, reporter, everything };
}

/** The final status of each task on each host, in order: [task name, "host:status,..."]. */
export function statuses(r: PlayRun): [string, string][] {
  return r.json.run.plays.flatMap((p) =>
    p.tasks.map(
      (t) =>
        [
          t.task.name,
          Object.entries(t.hosts)
            .map(([h, x]) => `${h}:${x.status}`)
            .join(','),
        ] as [string, string],
    ),
  );
}
