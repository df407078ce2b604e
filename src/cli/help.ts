import type { ActionSpec, InputField } from '../config/input-spec.js';
import { type ExtraFlag, secretEnvName } from './flags.js';

/**
 * Everything `dyce <command> --help` says, generated from the command's action spec: every flag with its type,
 * default and description, in groups; then the exit codes. Pure: the caller prints it.
 */
export interface CommandHelp {
  name: string;
  summary: string;
  synopsis: string[];
  /** Lines after the synopsis: what the command does, examples. */
  notes?: string[];
  spec?: ActionSpec;
  extra?: readonly ExtraFlag[];
  /** Groups of inputs, in the order shown: a title and the names (or name patterns) it holds. */
  groups?: readonly (readonly [string, RegExp])[];
  exits: readonly (readonly [number, string])[];
}

export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  rolledBack: 3,
} as const;

/** The exit codes of every command but play (which keeps ansible-playbook's). */
export const EXIT_CODES: readonly (readonly [number, string])[] = [
  [EXIT.ok, 'success, or nothing to do'],
  [EXIT.failed, 'failed'],
  [EXIT.usage, 'bad input or usage: nothing was touched'],
];

export const DEPLOY_EXIT_CODES: readonly (readonly [number, string])[] = [
  ...EXIT_CODES,
  [EXIT.rolledBack, 'rolled back: the new version failed its health gate and the previous one serves again'],
];

export const JSON_FLAG: ExtraFlag = {
  name: 'json',
  kind: 'boolean',
  description:
    'Print one JSON document on standard output: {"schema":"dyce/v1","command","success","exitCode","outputs"} with typed values, and "error" when it failed (docs: dyce help json)',
};

const PLACEHOLDER: Record<string, string> = {
  string: 'TEXT',
  integer: 'N',
  number: 'NUMBER',
  duration: 'DURATION',
  list: 'LIST',
  lines: 'LINE',
  map: 'KEY=VALUE',
  enum: 'CHOICE',
};

const WIDTH = 100;

function wrap(text: string, indent: string): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && indent.length + line.length + 1 + word.length > WIDTH) {
      out.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(indent + line);
  return out;
}

/** A spec description in the CLI's terms: `` `playbook` `` (an input) becomes `--playbook`; other code loses its backticks. */
export function describeForCli(text: string, names: ReadonlySet<string>): string {
  return text.replace(/`([^`]+)`/g, (_, code: string) => (names.has(code) ? `--${code}` : code));
}

function flagLines(name: string, f: InputField<unknown>, names: ReadonlySet<string>): string[] {
  const { meta, kind } = f;
  let head: string;
  const facts: string[] = [];
  if (meta.secret) {
    head = `--${name}-file PATH|-`;
    facts.push(`secret: from ${secretEnvName(name)}, a file, or - for standard input; never a flag value`);
  } else if (kind === 'boolean') {
    head = `--${name}, --no-${name}`;
  } else {
    head = `--${name} ${meta.choices ? meta.choices.join('|') : PLACEHOLDER[kind]}`;
  }
  if (kind === 'duration') facts.push('duration: 500ms, 10s, 5m, 72h, 30d; a bare number is seconds');
  if (kind === 'list') facts.push('comma- or newline-separated, or repeat the flag');
  if (kind === 'lines' || kind === 'map') facts.push('repeat the flag for more');
  if (meta.required) facts.push('required');
  else if (meta.default !== undefined && meta.default !== '') facts.push(`default: ${meta.default}`);
  const text = `${describeForCli(meta.description, names)}${facts.length ? ` (${facts.join('; ')})` : ''}`;
  return [`  ${head}`, ...wrap(text, '      ')];
}

export function renderHelp(h: CommandHelp): string {
  const lines: string[] = [`dyce ${h.name}: ${h.summary}`, '', 'usage:'];
  for (const s of h.synopsis) lines.push(`  ${s}`);
  if (h.notes?.length) lines.push('', ...h.notes);
  if (h.spec) {
    const names = new Set(Object.keys(h.spec.inputs));
    const placed = new Set<string>();
    const groups: [string, string[]][] = [];
    for (const [title, pattern] of h.groups ?? []) {
      const members = Object.keys(h.spec.inputs).filter((n) => !placed.has(n) && pattern.test(n));
      for (const n of members) placed.add(n);
      if (members.length) groups.push([title, members]);
    }
    const rest = Object.keys(h.spec.inputs).filter((n) => !placed.has(n));
    if (rest.length) groups.push([h.groups?.length ? 'Other' : 'Flags', rest]);
    for (const [title, members] of groups) {
      lines.push('', `${title}:`);
      for (const n of members) lines.push(...flagLines(n, h.spec.inputs[n]!, names));
    }
  }
  const extra = [...(h.extra ?? []), { name: 'help', kind: 'boolean', description: 'Print this help' } as const];
  lines.push('', 'Command-line flags:');
  for (const f of extra)
    lines.push(
      `  --${f.name}${f.kind === 'value' ? ` ${f.placeholder ?? 'VALUE'}` : ''}`,
      ...wrap(f.description, '      '),
    );
  if (h.spec)
    lines.push(
      '',
      `The flags in the groups above are the inputs of the ${h.spec.id} action, with the same names and value syntax.`,
      'Secrets are never taken as flag values: give DYCE_<NAME> in the environment, --<name>-file PATH, or',
      '--<name>-file - (standard input).',
    );
  lines.push('', 'Exit status:');
  for (const [code, text] of h.exits) lines.push(`  ${code}  ${text}`);
  return `${lines.join('\n')}\n`;
}
