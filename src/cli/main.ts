import pkg from '../../package.json' with { type: 'json' };
import { errorMessage, InputError, isUserError, UserError } from '../util/errors.js';
import { closest, inCliSyntax } from './flags.js';
import { EXIT } from './help.js';
import { type ErrorKind, type JsonError, jsonDocument } from './json.js';
import { CliReporter } from './reporter.js';
import { COMMANDS, type CommandName, OVERVIEW } from './usage.js';

export type Command = (argv: string[], reporter: CliReporter) => Promise<number>;

/** A bug, not the user's doing: the stack is printed (sysexits' EX_SOFTWARE). */
const EXIT_INTERNAL = 70;

/**
 * `dyce lab` is a development tool of the repository, not part of the product: the build bundles it apart
 * (build/lab.js, next to build/cli.js), and it is loaded from there only when `dyce lab` runs. The specifier is
 * computed so that the bundler leaves it out; from the source (tsx), it is src/cli/lab.ts.
 */
async function loadLab(): Promise<Command> {
  const here = import.meta.url;
  const entry = new URL(here.endsWith('.ts') ? './lab.ts' : './lab.js', here).href;
  try {
    return ((await import(entry)) as { labCommand: Command }).labCommand;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new UserError(
      'dyce lab is a development tool of the Dyce repository and is not part of this build: run it from a checkout (npm install builds it)',
    );
  }
}

// Each command is loaded only when it runs: a no-op `dyce deploy` should not pay for parsing the playbook engine.
const commands: Record<CommandName, () => Promise<Command>> = {
  lab: loadLab,
  play: async () => (await import('./play.js')).playCommand,
  build: async () => (await import('./build.js')).buildCommand,
  deploy: async () => (await import('./deploy.js')).deployCommand('deploy'),
  plan: async () => (await import('./deploy.js')).deployCommand('plan'),
  rollback: async () => (await import('./rollback.js')).rollbackCommand,
  probe: async () => (await import('./probe.js')).probeCommand,
};

function isCommand(word: string): word is CommandName {
  return (COMMANDS as readonly string[]).includes(word);
}

async function printHelp(command: string): Promise<number> {
  if (command === 'json') {
    const { JSON_DOCUMENT_SCHEMA, OUTPUT_SCHEMAS } = await import('./json.js');
    process.stdout.write(
      `dyce <command> --json prints one JSON document on standard output, on one line, whatever happens.\nIts JSON Schema:\n${JSON.stringify(JSON_DOCUMENT_SCHEMA, null, 2)}\n\nThe outputs of each command (plan and rollback: as deploy):\n${JSON.stringify(OUTPUT_SCHEMAS, null, 2)}\n`,
    );
    return EXIT.ok;
  }
  if (!isCommand(command)) {
    process.stderr.write(`dyce help: unknown command "${command}"${didYouMean(command)}\n\n${OVERVIEW}`);
    return EXIT.usage;
  }
  if (command === 'play' || command === 'lab') {
    // Their help is their own (play's flags are ansible-playbook's, not an action's inputs).
    const run = await commands[command]();
    return run(['--help'], new CliReporter());
  }
  const [{ helpFor }, { renderHelp }] = await Promise.all([import('./usage.js'), import('./help.js')]);
  process.stdout.write(renderHelp((await helpFor(command))!));
  return EXIT.ok;
}

function didYouMean(word: string): string {
  const near = closest(word, COMMANDS);
  return near ? `; did you mean "${near}"?` : '';
}

/** The outcome of a command that threw: its exit code, and what --json says about it. */
function classify(error: unknown, outputs: Record<string, unknown>): { code: number; error: JsonError; text: string } {
  if (isUserError(error)) {
    const issues = error instanceof InputError ? error.issues.map((m) => inCliSyntax(m)) : [];
    const details = error.details.map((m) => inCliSyntax(m));
    // An InputError's message is its head line and the issues; --json gives the issues apart.
    const message = inCliSyntax(
      error instanceof InputError ? error.message.split('\n')[0]!.replace(/:$/, '') : error.message,
    );
    const kind: ErrorKind = error instanceof InputError ? 'usage' : rolledBack(outputs) ? 'rolled-back' : 'failed';
    const code = kind === 'usage' ? EXIT.usage : kind === 'rolled-back' ? EXIT.rolledBack : EXIT.failed;
    const text = [inCliSyntax(error.message), ...details].join('\n');
    return { code, error: { kind, message, issues, details }, text };
  }
  const message = error instanceof Error ? (error.stack ?? errorMessage(error)) : String(error);
  return {
    code: EXIT_INTERNAL,
    error: { kind: 'internal', message: errorMessage(error), issues: [], details: [] },
    text: `internal error: ${message}`,
  };
}

/** Every host that failed was rolled back: the previous version serves everywhere. */
function rolledBack(outputs: Record<string, unknown>): boolean {
  if (outputs['rolled-back'] !== true) return false;
  const states = outputs['host-states'];
  if (!states || typeof states !== 'object') return true;
  return Object.values(states as Record<string, { state?: string }>).every((s) => s?.state !== 'failed');
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) {
    process.stderr.write(OVERVIEW);
    return EXIT.usage;
  }
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
    if (cmd === 'help' && rest[0] !== undefined) return printHelp(rest[0]);
    process.stdout.write(OVERVIEW);
    return EXIT.ok;
  }
  if (cmd === '--version' || cmd === '-V' || cmd === 'version') {
    process.stdout.write(`dyce ${pkg.version}\n`);
    return EXIT.ok;
  }
  if (!isCommand(cmd)) {
    process.stderr.write(`dyce: unknown command "${cmd}"${didYouMean(cmd)}\n\n${OVERVIEW}`);
    return EXIT.usage;
  }
  const end = rest.indexOf('--');
  const flags = end < 0 ? rest : rest.slice(0, end);
  if (flags.includes('--help') || flags.includes('-h')) return printHelp(cmd);
  // play prints its own JSON (ansible-playbook's json callback); lab is a development tool.
  const json = cmd !== 'play' && cmd !== 'lab' && flags.some((a) => a === '--json' || a === '--json=true');
  const reporter = new CliReporter().install();
  let code: number;
  let failure: JsonError | undefined;
  try {
    const run = await commands[cmd]();
    code = await run(rest, reporter);
  } catch (error) {
    const c = classify(error, reporter.outputs);
    code = c.code;
    failure = c.error;
    if (c.code === EXIT_INTERNAL) process.stderr.write(`dyce: ${c.text}\n`);
    else reporter.error(c.text);
  }
  if (json) {
    const states = reporter.outputs['host-states'];
    // The hosts' errors as the CLI says them (`--name`), like every other message.
    if (states && typeof states === 'object')
      for (const s of Object.values(states as Record<string, { error?: string }>))
        if (typeof s?.error === 'string') s.error = inCliSyntax(s.error);
    process.stdout.write(`${JSON.stringify(jsonDocument(cmd, code, reporter.outputs, failure))}\n`);
  }
  return code;
}

process.exitCode = await main(process.argv.slice(2));
