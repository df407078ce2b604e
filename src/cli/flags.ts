import { readFileSync } from 'node:fs';
import {
  type ActionSpec,
  type InputRule,
  type InputSpec,
  type ParsedInputs,
  parseInputs,
  type RawInputs,
} from '../config/input-spec.js';
import { InputError } from '../util/errors.js';

/** A flag of a command that is not an input of its action (e.g. `--json`). */
export interface ExtraFlag {
  name: string;
  /** A switch (`--json`, `--json=false`) or a flag with a value. */
  kind: 'boolean' | 'value';
  description: string;
  /** What --help shows for the value (default VALUE). */
  placeholder?: string;
}

export interface FlagOptions {
  /** The command as the user typed it (`deploy`, `plan`, `build`): messages and hints name it. */
  command?: string;
  extra?: readonly ExtraFlag[];
  /** Positional arguments the command takes (none when absent): `max` of them, shown as `name` in messages. */
  positionals?: { name: string; max: number };
  env?: NodeJS.ProcessEnv;
  readStdin?: () => string;
}

export interface ParsedArgs {
  raw: RawInputs;
  /** The command's own flags (`--json`): booleans as booleans. */
  extra: Record<string, string | boolean>;
  positionals: string[];
  /** Everything wrong with the command line, in the CLI's own syntax. Empty when it parsed. */
  issues: string[];
}

/** `DYCE_REGISTRY_PASSWORD` for `registry-password`. */
export function secretEnvName(input: string): string {
  return `DYCE_${input.replace(/[^A-Za-z0-9]/g, '_').toUpperCase()}`;
}

/** The spec of the command line this process parsed: inCliSyntax names its secrets' flags (`--<name>-file`). */
let parsedSpec: ActionSpec | undefined;

/** The short flags of `dyce play` (those of ansible-playbook): typed at another command, each is refused with a hint. */
const PLAY_SHORT_FLAGS: Record<string, string> = {
  '-i': 'inventory',
  '-e': 'extra-vars',
  '-C': 'check',
  '-l': 'limit',
  '-t': 'tags',
  '-f': 'forks',
  '-u': 'user',
  '-v': 'verbose',
};

/**
 * What users of ssh, ansible-playbook, docker, curl and kamal type, and the Dyce flag that means the same (the first
 * that the command has). A `=` hint explains instead of naming a flag.
 */
const PEER_FLAGS: Record<string, string[]> = {
  '-i': ['inventory', 'ssh-private-key-file'],
  inventory: ['inventory'],
  'inventory-file': ['inventory'],
  '-e': ['=-e sets Ansible extra variables (--extra-vars, with --playbook) or, in docker run, the environment (--env)'],
  e: ['extra-vars'],
  '-C': ['dry-run'],
  check: ['dry-run'],
  'dry-run': ['dry-run'],
  diff: ['dry-run'],
  '-l': ['limit'],
  '-f': ['file', 'parallel'],
  forks: ['parallel'],
  '-u': ['=the SSH user belongs to each host: --hosts "web1 ansible_host=203.0.113.7 ansible_user=deploy"'],
  user: ['=the SSH user belongs to each host: --hosts "web1 ansible_host=203.0.113.7 ansible_user=deploy"'],
  '-p': ['=the SSH port belongs to each host: --hosts "web1 ansible_host=203.0.113.7 ansible_port=2222"'],
  'ssh-port': ['=the SSH port belongs to each host: --hosts "web1 ansible_host=203.0.113.7 ansible_port=2222"'],
  '-v': ['volumes', '=for debug output, set DYCE_DEBUG=1 in the environment'],
  verbose: ['=set DYCE_DEBUG=1 in the environment for debug output'],
  'private-key': ['ssh-private-key-file'],
  'key-file': ['ssh-private-key-file'],
  identity: ['ssh-private-key-file'],
  'identity-file': ['ssh-private-key-file'],
  'ssh-key': ['ssh-private-key-file'],
  password: ['registry-password-file', 'basic-auth-password-file'],
  'password-stdin': ['registry-password-file'],
  username: ['registry-username', 'basic-auth-username'],
  '-t': ['tags'],
  tag: ['tags'],
  'build-arg': ['build-args'],
  secret: ['secrets-file', 'secret-env-file'],
  platform: ['platforms'],
  label: ['labels'],
  '-v-volume': ['volumes'],
  volume: ['volumes'],
  restart: ['restart-policy'],
  network: ['network-mode'],
  net: ['network-mode'],
  publish: ['port'],
  'log-opt': ['log-options'],
  'skip-push': ['=write --push=false'],
  host: ['hosts'],
  'known-hosts-file': ['known-hosts'],
  'strict-host-key-checking': ['insecure-skip-host-key-check'],
  '-H': ['headers'],
  header: ['headers'],
  '-X': ['method'],
  request: ['method'],
  '-d': ['body'],
  data: ['body'],
  '-L': ['follow-redirects'],
  location: ['follow-redirects'],
  '-k': ['tls-insecure-skip-verify', 'insecure-skip-host-key-check'],
  insecure: ['tls-insecure-skip-verify', 'insecure-skip-host-key-check'],
  cacert: ['tls-ca'],
  retry: ['attempts', 'retries'],
  'max-time': ['timeout'],
  '-m': ['timeout'],
};

/** Edit distance with transpositions (`imgae` is one step from `image`), for "did you mean". */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  return d[a.length]![b.length]!;
}

/** The closest of `names` to `word` (a typo, a singular for a plural, a prefix), or undefined when none is close. */
export function closest(word: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const n of names) {
    const score = n.startsWith(word) && word.length >= 3 ? 0.5 : distance(word, n);
    if (score < bestScore) {
      best = n;
      bestScore = score;
    }
  }
  return best !== undefined && bestScore <= Math.max(1, Math.min(3, Math.floor(word.length / 3))) ? best : undefined;
}

/**
 * Parses a command line against an action spec, so the CLI takes exactly the action's input names, and refuses
 * anything else: unknown flags (with "did you mean"), stray arguments, short flags of another command, values for
 * switches that are not true/false, flags given twice. Never throws: every problem is returned in `issues`, so that
 * `checkInputs` reports them together with the values' own problems, in one run.
 *
 * `--name value` and `--name=value`; `--switch`, `--switch=false`, `--no-switch`. Repeated list and map flags add one
 * item each. Secret inputs are refused as flag values (argv is visible to every user of the machine): they come from
 * `DYCE_<NAME>`, `--<name>-file PATH`, or `--<name>-file -` for standard input.
 */
export function parseFlags(spec: ActionSpec, argv: readonly string[], opts: FlagOptions = {}): ParsedArgs {
  parsedSpec = spec;
  const env = opts.env ?? process.env;
  const command = opts.command ?? (spec.id === 'build-push' ? 'build' : spec.id);
  const raw: RawInputs = {};
  const extra: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  const issues: string[] = [];
  const extras = new Map((opts.extra ?? []).map((f) => [f.name, f]));
  const seen = new Set<string>();
  let stdinUsed = false;
  /** The switch just before this word, when it was given bare (`--dry-run maybe`). */
  let afterSwitch: string | undefined;
  const readStdin = opts.readStdin ?? (() => readFileSync(0, 'utf8'));
  const secretFileFlags = Object.entries(spec.inputs)
    .filter(([, f]) => f.meta.secret)
    .map(([n]) => `${n}-file`);
  const valueFlags = [
    ...Object.entries(spec.inputs)
      .filter(([, f]) => !f.meta.secret)
      .map(([n]) => n),
    ...secretFileFlags,
    ...extras.keys(),
  ];
  const isBoolean = (name: string) => spec.inputs[name]?.kind === 'boolean' || extras.get(name)?.kind === 'boolean';
  const hint = (word: string): string => {
    const bare = word.replace(/^--?/, '');
    for (const target of PEER_FLAGS[word] ?? PEER_FLAGS[bare] ?? []) {
      if (target.startsWith('=')) return `; ${target.slice(1)}`;
      if (valueFlags.includes(target)) return `; did you mean --${target}?`;
    }
    const near = word.startsWith('--') ? closest(bare, valueFlags) : undefined;
    return near ? `; did you mean --${near}?` : '';
  };
  const twice = (name: string, kind?: string): boolean => {
    if (kind === 'list' || kind === 'lines' || kind === 'map') return false;
    if (seen.has(name)) {
      issues.push(`--${name} is given twice; give it once`);
      return true;
    }
    seen.add(name);
    return false;
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const previousSwitch = afterSwitch;
    afterSwitch = undefined;
    /** The word after a refused flag is taken as its value when it does not look like a flag. */
    const skipWord = () => {
      if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('-')) i++;
    };
    /** `--switch`, `--switch=true|false`, and `--switch true|false` (the next word). */
    const switchValue = (name: string, value: string | undefined): boolean | undefined => {
      if (value === undefined) {
        const next = argv[i + 1];
        if (next === 'true' || next === 'false') {
          i++;
          return next === 'true';
        }
        afterSwitch = name;
        return true;
      }
      if (value === 'true' || value === 'false') return value === 'true';
      issues.push(`--${name} must be true or false, got ${JSON.stringify(value)}`);
      return undefined;
    };
    if (arg === '--') {
      for (const word of argv.slice(i + 1)) positional(word, undefined);
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional(arg, previousSwitch);
      continue;
    }
    if (!arg.startsWith('--')) {
      const short = arg.slice(0, 2);
      const play = PLAY_SHORT_FLAGS[short];
      if (play)
        issues.push(
          `${short} is a flag of dyce play (ansible-playbook's --${play}), not of dyce ${command}${hint(short)}`,
        );
      else issues.push(`unknown flag ${arg}: dyce ${command} has no short flags${hint(short)}`);
      if (arg.length === 2) skipWord();
      continue;
    }
    const eq = arg.indexOf('=');
    let name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const value: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    const takeValue = (): string | undefined => {
      if (value !== undefined) return value;
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) return undefined;
      i++;
      return next;
    };
    const extraFlag = extras.get(name);
    if (extraFlag) {
      if (extraFlag.kind === 'boolean') {
        const b = switchValue(name, value);
        if (!twice(name) && b !== undefined) extra[name] = b;
      } else {
        const v = takeValue();
        if (v === undefined) issues.push(`--${name} needs a value`);
        else if (!twice(name)) extra[name] = v;
      }
      continue;
    }
    if (name.endsWith('-file') && spec.inputs[name.slice(0, -5)]?.meta.secret) {
      const input = name.slice(0, -5);
      const path = takeValue();
      if (path === undefined) {
        issues.push(`--${name} needs a path (or - for standard input)`);
        continue;
      }
      if (twice(name)) continue;
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
    if (!(name in spec.inputs) && name.startsWith('no-') && isBoolean(name.slice(3))) {
      name = name.slice(3);
      negated = true;
      if (value !== undefined) {
        issues.push(`--no-${name} takes no value; write --${name}=true or --${name}=false`);
        continue;
      }
    }
    const f = spec.inputs[name];
    if (!f && spec.removed?.[name] !== undefined) {
      issues.push(`--${name} ${spec.removed[name]}`);
      if (value === undefined && argv[i + 1] && !argv[i + 1]!.startsWith('--')) i++;
      continue;
    }
    if (!f) {
      issues.push(`unknown flag --${name}${hint(`--${name}`)}`);
      const near = closest(name, valueFlags);
      if (value === undefined && !(near && isBoolean(near))) skipWord();
      continue;
    }
    if (f.meta.secret) {
      // Do not even keep the value around: refuse and move on.
      issues.push(
        `--${name} is a secret and cannot be given on the command line (every user of the machine can read argv); use ${secretEnvName(name)}=… in the environment, --${name}-file PATH, or --${name}-file - to read standard input`,
      );
      if (value === undefined && argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) i++;
      continue;
    }
    if (f.kind === 'boolean') {
      const b = negated ? false : switchValue(name, value);
      if (!twice(name) && b !== undefined) raw[name] = String(b);
      continue;
    }
    const v = takeValue();
    if (v === undefined) {
      issues.push(`--${name} needs a value`);
      continue;
    }
    if (twice(name, f.kind)) continue;
    // Repeated list/map flags accumulate, one item per flag.
    if (raw[name] !== undefined) raw[name] = `${raw[name]}\n${v}`;
    else raw[name] = v;
  }
  for (const [name, f] of Object.entries(spec.inputs)) {
    if (!f.meta.secret || raw[name] !== undefined) continue;
    const v = env[secretEnvName(name)];
    if (v !== undefined && v !== '') raw[name] = v;
  }
  return { raw, extra, positionals, issues };

  function positional(word: string, previousSwitch: string | undefined): void {
    const slot = opts.positionals;
    if (slot && positionals.length < slot.max) {
      positionals.push(word);
      return;
    }
    if (previousSwitch) {
      issues.push(
        `--${previousSwitch} is a switch and takes no value, got ${JSON.stringify(word)}: write --${previousSwitch}, --${previousSwitch}=true or --${previousSwitch}=false`,
      );
      return;
    }
    if (slot)
      issues.push(
        `unexpected argument ${JSON.stringify(word)}: dyce ${command} takes ${slot.max === 1 ? `one ${slot.name}` : `at most ${slot.max} ${slot.name}`}`,
      );
    else if (/\.ya?ml$/.test(word) && valueFlags.includes('playbook'))
      issues.push(
        `unexpected argument ${JSON.stringify(word)}: dyce ${command} takes no arguments; did you mean --playbook ${word}?`,
      );
    else issues.push(`unexpected argument ${JSON.stringify(word)}: dyce ${command} takes no arguments, only flags`);
  }
}

/**
 * The command line's problems and the values' own problems (each input's type, the action's rules, and any further
 * `checks`), in one InputError in the CLI's syntax (`--name`), or the parsed inputs when there are none.
 */
export function checkInputs<S extends InputSpec>(
  spec: ActionSpec<S>,
  parsed: ParsedArgs,
  rules: InputRule<S>[] = [],
  opts: { command?: string } = {},
): ParsedInputs<S> {
  const command = opts.command ?? (spec.id === 'build-push' ? 'build' : spec.id);
  let valueIssues: string[] = [];
  let inputs: ParsedInputs<S> | undefined;
  try {
    inputs = parseInputs(spec, parsed.raw, rules);
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    valueIssues = error.issues.map((m) => inCliSyntax(m, Object.keys(spec.inputs)));
  }
  const issues = [...parsed.issues, ...valueIssues];
  if (issues.length || !inputs) throw new InputError(issues, usageContext(command));
  return inputs;
}

/** The head line of a bad command line's error. */
export function usageContext(command: string): string {
  return `dyce ${command}: invalid arguments (dyce ${command} --help lists every flag)`;
}

/**
 * A message written in the actions' terms (`input "replicas"`, `set insecure-skip-host-key-check: true`) in the
 * CLI's own syntax: `--replicas`, `--insecure-skip-host-key-check`. Other quoted names are rewritten only where they
 * are known input names after a word that names a field (`required with "registry-username"`), never a quoted value.
 */
export function inCliSyntax(message: string, names?: readonly string[]): string {
  const known = new Set(names ?? Object.keys(parsedSpec?.inputs ?? {}));
  const flag = (name: string) => (parsedSpec?.inputs[name]?.meta.secret ? `--${name}-file` : `--${name}`);
  return message
    .replace(/\binput "([a-z0-9-]+)"/g, (_, name: string) => flag(name))
    .replace(/\b([Ss])et ([a-z0-9-]+): true\b/g, (_, s: string, name: string) => `${s === 'S' ? 'A' : 'a'}dd --${name}`)
    .replace(
      /\b([Ss])et ([a-z0-9-]+): ([^\s,;)]+)/g,
      (_, s: string, name: string, v: string) => `${s === 'S' ? 'G' : 'g'}ive --${name} ${v}`,
    )
    .replace(/\b(with|than|but|and|or|needs|of) "([a-z0-9-]+)"/g, (all, word: string, name: string) =>
      known.has(name) ? `${word} ${flag(name)}` : all,
    );
}

function stripOneNewline(s: string): string {
  return s.endsWith('\r\n') ? s.slice(0, -2) : s.endsWith('\n') ? s.slice(0, -1) : s;
}
