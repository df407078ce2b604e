import { readFileSync } from 'node:fs';
import type { ActionSpec, RawInputs } from '../config/input-spec.js';
import { InputError } from '../util/errors.js';

export interface ParsedArgs {
  raw: RawInputs;
  /** Flags that are not inputs of the spec (e.g. --json, --dry-run handled by the command). */
  extra: Record<string, string | boolean>;
  positionals: string[];
}

/** `DYCE_REGISTRY_PASSWORD` for `registry-password`. */
export function secretEnvName(input: string): string {
  return `DYCE_${input.replace(/[^A-Za-z0-9]/g, '_').toUpperCase()}`;
}

/**
 * Parses `--name value`, `--name=value`, `--flag` / `--no-flag` for booleans, against an action spec,
 * so the CLI takes exactly the action's input names. Secret inputs are refused as flag values (argv is
 * visible to every user of the machine): they come from `DYCE_<NAME>`, `--<name>-file PATH`, or
 * `--<name>-file -` for stdin.
 */
export function parseFlags(
  spec: ActionSpec,
  argv: string[],
  opts: { extraFlags?: string[]; extraBooleans?: string[]; env?: NodeJS.ProcessEnv; readStdin?: () => string } = {},
): ParsedArgs {
  const env = opts.env ?? process.env;
  const raw: RawInputs = {};
  const extra: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  const issues: string[] = [];
  const extraFlags = new Set(opts.extraFlags ?? []);
  const extraBooleans = new Set(opts.extraBooleans ?? []);
  let stdinUsed = false;
  const readStdin = opts.readStdin ?? (() => readFileSync(0, 'utf8'));

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    let name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const value: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    const takeValue = (): string | undefined => {
      if (value !== undefined) return value;
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next !== '--')) return undefined;
      i++;
      return next;
    };
    if (extraBooleans.has(name)) {
      extra[name] = value === undefined ? true : value === 'true';
      continue;
    }
    if (extraFlags.has(name)) {
      const v = takeValue();
      if (v === undefined) issues.push(`--${name} needs a value`);
      else extra[name] = v;
      continue;
    }
    if (name.endsWith('-file') && spec.inputs[name.slice(0, -5)]?.meta.secret) {
      const input = name.slice(0, -5);
      const path = takeValue();
      if (path === undefined) {
        issues.push(`--${name} needs a path (or - for standard input)`);
        continue;
      }
      if (path === '-') {
        if (stdinUsed) {
          issues.push(`only one secret can come from standard input (--${name} -)`);
          continue;
        }
        stdinUsed = true;
        raw[input] = stripOneNewline(readStdin());
      } else {
        try {
          raw[input] = stripOneNewline(readFileSync(path, 'utf8'));
        } catch (e) {
          issues.push(`--${name}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`);
        }
      }
      continue;
    }
    let negated = false;
    if (!(name in spec.inputs) && name.startsWith('no-') && spec.inputs[name.slice(3)]?.kind === 'boolean') {
      name = name.slice(3);
      negated = true;
    }
    const f = spec.inputs[name];
    if (!f) {
      issues.push(`unknown flag --${name} (see dyce ${spec.id === 'build-push' ? 'build' : spec.id} --help)`);
      if (value === undefined && argv[i + 1] && !argv[i + 1]!.startsWith('--')) i++;
      continue;
    }
    if (f.meta.secret) {
      // Do not even keep the value around: refuse and move on.
      issues.push(
        `--${name} is a secret and cannot be given on the command line (every user of the machine can read argv); use ${secretEnvName(name)}=… in the environment, --${name}-file PATH, or --${name}-file - to read standard input`,
      );
      if (value === undefined && argv[i + 1] && !argv[i + 1]!.startsWith('--')) i++;
      continue;
    }
    if (f.kind === 'boolean') {
      if (negated) raw[name] = 'false';
      else if (value !== undefined) raw[name] = value;
      else if (argv[i + 1] === 'true' || argv[i + 1] === 'false') raw[name] = argv[++i];
      else raw[name] = 'true';
      continue;
    }
    const v = takeValue();
    if (v === undefined) {
      issues.push(`--${name} needs a value`);
      continue;
    }
    // Repeated list/map flags accumulate, one item per flag.
    if (raw[name] !== undefined && (f.kind === 'list' || f.kind === 'lines' || f.kind === 'map'))
      raw[name] = `${raw[name]}\n${v}`;
    else raw[name] = v;
  }
  for (const [name, f] of Object.entries(spec.inputs)) {
    if (!f.meta.secret || raw[name] !== undefined) continue;
    const v = env[secretEnvName(name)];
    if (v !== undefined && v !== '') raw[name] = v;
  }
  if (issues.length) throw new InputError(issues, `dyce ${spec.id}: invalid arguments`);
  return { raw, extra, positionals };
}

function stripOneNewline(s: string): string {
  return s.endsWith('\r\n') ? s.slice(0, -2) : s.endsWith('\n') ? s.slice(0, -1) : s;
}
