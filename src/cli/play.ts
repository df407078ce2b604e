import { readFile } from 'node:fs/promises';
import { homedir, userInfo } from 'node:os';
import { type Host, readInventory } from '../config/inventory.js';
import { abortOnSignals } from '../deploy/signals.js';
import { type ExtraVarsSource, readExtraVars } from '../playbook/extra-vars.js';
import { JsonCollector, TextPrinter } from '../playbook/output.js';
import { readPlaybook } from '../playbook/parse.js';
import { EXIT, PlaybookRefused, runPlaybook } from '../playbook/run.js';
import { RunConnections, sshConnector } from '../remote/connect.js';
import type { Executor } from '../remote/executor.js';
import { cliSshCredentials, readOpenSshDefaults, withSshConfig } from '../remote/openssh-defaults.js';
import { InputError, UserError } from '../util/errors.js';
import { Secret } from '../util/secret.js';
import type { CliReporter } from './reporter.js';

export const PLAY_USAGE = `usage: dyce play -i INVENTORY PLAYBOOK.yml [-e VARS]... [--check] [--json] [options]

Runs an Ansible playbook (the subset deploy playbooks use) on Dyce's engine. Anything outside the subset is
refused before any host is touched, naming the file and line.
  -i, --inventory FILE     Ansible INI or YAML inventory
  -e, --extra-vars VARS    k=v pairs, JSON/YAML ({...}), or @FILE; repeatable, later wins. Secrets belong in
                           @FILE (mode 0600) or DYCE_EXTRA_VARS, never on the command line
  -C, --check              dry run: observe and report what would change, change nothing
  -D, --diff               show what changes (with --check: what would change)
  -l, --limit PATTERN      only hosts matching PATTERN
  -t, --tags T1,T2         only tasks with these tags;  --skip-tags T1,T2
  -f, --forks N            hosts worked on at once (default 5)
  -u, --user USER          SSH user when the inventory has no ansible_user
  --private-key FILE       SSH private key (also DYCE_SSH_PRIVATE_KEY, ansible_ssh_private_key_file; default: the
                           keys of ssh-agent (SSH_AUTH_SOCK), then ~/.ssh/id_ed25519, id_ecdsa, id_rsa);
                           its passphrase from DYCE_SSH_PASSPHRASE
  --known-hosts LINES      known_hosts lines to verify host keys with (as dyce deploy's --known-hosts)
  --known-hosts-file FILE  a known_hosts file; default ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts.
                           Host keys are always verified. ~/.ssh/config Host aliases apply (HostName, Port, User,
                           IdentityFile, ProxyJump), as do the inventory's ansible_ssh_common_args ProxyJump
  --syntax-check           parse and check every file only (no -i needed), touch nothing
  --json                   machine-readable results on standard output
  -v                       show every result
Exit status as ansible-playbook: 0 ok, 2 a host failed, 4 unreachable host or a playbook error, 5 bad options.`;

interface PlayFlags {
  inventory?: string;
  extra: ExtraVarsSource[];
  check: boolean;
  json: boolean;
  verbose: boolean;
  syntaxOnly: boolean;
  diff: boolean;
  limit?: string;
  tags?: string[];
  skipTags?: string[];
  forks?: number;
  user?: string;
  privateKey?: string;
  knownHosts?: string;
  knownHostsFile?: string;
  playbooks: string[];
}

/** Pure: argv -> flags. Throws UserError (exit 5) on anything unknown. */
export function parsePlayFlags(argv: readonly string[]): PlayFlags {
  const f: PlayFlags = {
    extra: [],
    check: false,
    json: false,
    verbose: false,
    syntaxOnly: false,
    diff: false,
    playbooks: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    const value = (): string => {
      if (eq > 0) return a.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new UserError(`${name} needs a value`);
      return v;
    };
    switch (name) {
      case '-i':
      case '--inventory':
      case '--inventory-file':
        f.inventory = value();
        break;
      case '-e':
      case '--extra-vars':
        f.extra.push({ text: value(), origin: '-e' });
        break;
      case '-C':
      case '--check':
        f.check = true;
        break;
      case '--json':
        f.json = true;
        break;
      case '-v':
      case '-vv':
      case '-vvv':
      case '--verbose':
        f.verbose = true;
        break;
      case '-D':
      case '--diff':
        f.diff = true;
        break;
      case '--syntax-check':
        f.syntaxOnly = true;
        break;
      case '-l':
      case '--limit':
        f.limit = value();
        break;
      case '-t':
      case '--tags':
        f.tags = [
          ...(f.tags ?? []),
          ...value()
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
        ];
        break;
      case '--skip-tags':
        f.skipTags = [
          ...(f.skipTags ?? []),
          ...value()
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
        ];
        break;
      case '-f':
      case '--forks': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1) throw new UserError(`--forks must be a positive whole number`);
        f.forks = n;
        break;
      }
      case '-u':
      case '--user':
        f.user = value();
        break;
      case '--private-key':
      case '--key-file':
        f.privateKey = value();
        break;
      case '--known-hosts':
        f.knownHosts = value();
        break;
      case '--known-hosts-file':
        f.knownHostsFile = value();
        break;
      default:
        if (a.startsWith('-')) throw new UserError(`unknown option ${a}`);
        f.playbooks.push(a);
    }
  }
  if (f.playbooks.length === 0) throw new UserError('give a playbook file');
  if (!f.inventory && !f.syntaxOnly) throw new UserError('give an inventory with -i FILE');
  return f;
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new UserError(`cannot read ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`, {
      cause: error,
    });
  }
}

/**
 * The one SSH connector (src/remote/connect.ts) with the CLI's OpenSSH defaults: known_hosts files, ssh-agent,
 * default keys and ~/.ssh/config aliases, and the inventory's ProxyJump. Checked once, before any host.
 */
async function connector(f: PlayFlags, reporter: CliReporter): Promise<(host: Host) => Promise<Executor>> {
  const defaults = await readOpenSshDefaults();
  const keyText = f.privateKey
    ? await readText(f.privateKey.replace(/^~(?=\/)/, homedir()), 'SSH private key')
    : process.env.DYCE_SSH_PRIVATE_KEY || undefined;
  const passphrase = process.env.DYCE_SSH_PASSPHRASE;
  if (keyText) reporter.secret(keyText);
  if (passphrase) reporter.secret(passphrase);
  const creds = await cliSshCredentials(
    {
      knownHosts: f.knownHosts,
      knownHostsFile: f.knownHostsFile,
      ...(keyText ? { privateKey: new Secret(keyText) } : {}),
      ...(passphrase ? { passphrase: new Secret(passphrase) } : {}),
    },
    defaults,
  );
  return sshConnector(
    { ...creds, defaultUser: f.user ?? userInfo().username },
    { reporter, retry: { attempts: 2 } },
    (host) => withSshConfig(host, defaults.config),
  );
}

/** --syntax-check: every playbook parsed (and every file it brings in), all problems in one run; no inventory needed. */
async function syntaxCheck(files: readonly string[], reporter: CliReporter): Promise<number> {
  const issues: string[] = [];
  for (const file of files) {
    try {
      await readPlaybook(file);
      process.stdout.write(`\nplaybook: ${file}\n`);
    } catch (error) {
      if (error instanceof InputError) issues.push(...error.issues);
      else if (error instanceof UserError) issues.push(error.message);
      else throw error;
    }
  }
  if (issues.length === 0) return EXIT.ok;
  reporter.error(new InputError(issues, 'syntax check failed').message);
  return EXIT.parse;
}

export async function playCommand(argv: string[], reporter: CliReporter): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${PLAY_USAGE}\n`);
    return 0;
  }
  let f: PlayFlags;
  try {
    f = parsePlayFlags(argv);
  } catch (error) {
    if (error instanceof UserError) {
      reporter.error(`${error.message}\n\n${PLAY_USAGE}`);
      return EXIT.options;
    }
    throw error;
  }
  const sources: ExtraVarsSource[] = [];
  if (process.env.DYCE_EXTRA_VARS) sources.push({ text: process.env.DYCE_EXTRA_VARS, origin: 'DYCE_EXTRA_VARS' });
  sources.push(...f.extra);
  const { signal, dispose } = abortOnSignals();
  const connections = new RunConnections();
  try {
    const extra = await readExtraVars(sources);
    // Secrets first: nothing printed from here on may show them.
    for (const s of extra.secrets) reporter.secret(s);
    for (const w of extra.warnings) reporter.warning(w);
    if (f.syntaxOnly) return await syntaxCheck(f.playbooks, reporter);
    const inventory = await readInventory(f.inventory!);
    for (const w of inventory.warnings) reporter.warning(w);
    let exit: number = EXIT.ok;
    let connect: ((host: Host) => Promise<Executor>) | undefined;
    for (const file of f.playbooks) {
      const pb = await readPlaybook(file);
      if (!connect) {
        const open = await connector(f, reporter);
        // One connection per host for every playbook of the run.
        connect = (host) => connections.lease(host.name, () => open(host));
      }
      const json = f.json ? new JsonCollector() : undefined;
      const events = json ?? new TextPrinter((s) => process.stdout.write(s), { verbose: f.verbose, diff: f.diff });
      const r = await runPlaybook(pb, {
        inventory,
        extraVars: extra.vars,
        connect,
        check: f.check,
        diff: f.diff,
        signal,
        ...(f.tags ? { tags: f.tags } : {}),
        ...(f.skipTags ? { skipTags: f.skipTags } : {}),
        ...(f.limit ? { limit: f.limit } : {}),
        ...(f.forks ? { forks: f.forks } : {}),
        reporter,
        events,
      });
      if (json) process.stdout.write(`${JSON.stringify(json.run, null, 2)}\n`);
      exit = Math.max(exit, r.exitCode);
      if (r.exitCode !== EXIT.ok) break;
    }
    return exit;
  } catch (error) {
    if (error instanceof PlaybookRefused) {
      reporter.error(error.message);
      return error.exitCode;
    }
    if (error instanceof InputError) {
      reporter.error(error.message);
      return EXIT.parse;
    }
    throw error;
  } finally {
    dispose();
    await connections.close();
  }
}
