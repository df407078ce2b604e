import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type Host, type JumpHost, parseJumpSpec } from '../config/inventory.js';
import { UserError } from '../util/errors.js';
import type { Secret } from '../util/secret.js';
import { hostKeyPolicy, type SshCredentials } from './connect.js';
import { type HostKeyPolicy, type KnownHostEntry, parseKnownHosts } from './known-hosts.js';
import { loadPrivateKey } from './ssh.js';

/**
 * What `ssh` on a laptop uses when it is told nothing, for the CLI (never in an action, where pinning stays
 * required): ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts; the keys of ssh-agent (SSH_AUTH_SOCK), then
 * ~/.ssh/id_ed25519, id_ecdsa, id_rsa; ~/.ssh/config `Host` aliases (HostName, Port, User, IdentityFile, ProxyJump).
 */

export const DEFAULT_KEY_FILES = ['id_ed25519', 'id_ecdsa', 'id_rsa'] as const;

export interface OpenSshDefaults {
  /** known_hosts entries of the user's and the system's file; the files that existed. */
  knownHosts: { entries: KnownHostEntry[]; sources: string[] };
  /** SSH_AUTH_SOCK, when set. */
  agent?: string;
  /** The first default key file that exists (its text), when any. */
  key?: { path: string; text: string };
  /** ~/.ssh/config, parsed. */
  config: SshConfigBlock[];
}

/** Reads the user's OpenSSH setup. Missing files are simply absent; an unreadable or malformed one is an error. */
export async function readOpenSshDefaults(
  home = homedir(),
  env: NodeJS.ProcessEnv = process.env,
  systemKnownHosts = '/etc/ssh/ssh_known_hosts',
): Promise<OpenSshDefaults> {
  const entries: KnownHostEntry[] = [];
  const sources: string[] = [];
  for (const file of [join(home, '.ssh', 'known_hosts'), systemKnownHosts]) {
    const text = await readOptional(file);
    if (text === undefined) continue;
    sources.push(file);
    entries.push(...parseKnownHosts(text, file));
  }
  let key: OpenSshDefaults['key'];
  for (const name of DEFAULT_KEY_FILES) {
    const path = join(home, '.ssh', name);
    const text = await readOptional(path);
    if (text !== undefined) {
      key = { path, text };
      break;
    }
  }
  const configFile = join(home, '.ssh', 'config');
  const configText = await readOptional(configFile);
  return {
    knownHosts: { entries, sources },
    ...(env.SSH_AUTH_SOCK ? { agent: env.SSH_AUTH_SOCK } : {}),
    ...(key ? { key } : {}),
    config: configText === undefined ? [] : parseSshConfig(configText, configFile, home),
  };
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new UserError(`cannot read ${path}: ${code ?? error}`, { cause: error });
  }
}

export interface SshConfigBlock {
  /** The `Host` patterns (`*`/`?` wildcards, `!` negation). */
  patterns: string[];
  hostName?: string;
  port?: number;
  user?: string;
  identityFile?: string;
  proxyJump?: JumpHost;
}

/**
 * Parses the options Dyce applies from an ssh_config: `Host` blocks with HostName, Port, User, IdentityFile and
 * ProxyJump (`none` turns it off); `Match` blocks and other options are skipped. Bad values name file and line.
 */
export function parseSshConfig(text: string, source = 'ssh config', home = homedir()): SshConfigBlock[] {
  const blocks: SshConfigBlock[] = [];
  let current: SshConfigBlock | undefined = { patterns: ['*'] };
  blocks.push(current);
  const issues: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+?)(?:\s*=\s*|\s+)(.*)$/.exec(line);
    if (!m) continue;
    const key = m[1]!.toLowerCase();
    const value = m[2]!.trim().replace(/^"(.*)"$/, '$1');
    const at = `${source}:${i + 1}`;
    if (key === 'host') {
      current = { patterns: value.split(/\s+/).filter(Boolean) };
      blocks.push(current);
      continue;
    }
    if (key === 'match') {
      current = undefined;
      continue;
    }
    if (!current) continue;
    // As in OpenSSH, the first value obtained for an option wins.
    switch (key) {
      case 'hostname':
        current.hostName ??= value;
        break;
      case 'port': {
        const port = Number(value);
        if (!Number.isInteger(port) || port < 1 || port > 65535) issues.push(`${at}: Port ${JSON.stringify(value)}`);
        else current.port ??= port;
        break;
      }
      case 'user':
        current.user ??= value;
        break;
      case 'identityfile':
        current.identityFile ??= value.replace(/^~(?=\/)/, home);
        break;
      case 'proxyjump': {
        if (current.proxyJump || value.toLowerCase() === 'none') break;
        const j = parseJumpSpec(value);
        if ('error' in j) issues.push(`${at}: ProxyJump: ${j.error}`);
        else current.proxyJump = j;
        break;
      }
    }
  }
  if (issues.length > 0) throw new UserError(`invalid ${source}`, { details: issues });
  return blocks;
}

function patternMatches(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    'i',
  );
  return re.test(name);
}

/** The options of every block whose `Host` patterns match `alias` (no negated pattern matching), first wins. */
export function sshConfigFor(blocks: readonly SshConfigBlock[], alias: string): Omit<SshConfigBlock, 'patterns'> {
  const out: Omit<SshConfigBlock, 'patterns'> = {};
  for (const b of blocks) {
    const neg = b.patterns.some((p) => p.startsWith('!') && patternMatches(p.slice(1), alias));
    if (neg || !b.patterns.some((p) => !p.startsWith('!') && patternMatches(p, alias))) continue;
    out.hostName ??= b.hostName;
    out.port ??= b.port;
    out.user ??= b.user;
    out.identityFile ??= b.identityFile;
    out.proxyJump ??= b.proxyJump;
  }
  for (const k of Object.keys(out) as (keyof typeof out)[]) if (out[k] === undefined) delete out[k];
  return out;
}

/**
 * Pure: the inventory host with ~/.ssh/config applied where the inventory says nothing (the inventory wins, as
 * ansible's own connection variables win over ssh_config). `%h` in HostName is the alias.
 */
export function withSshConfig(host: Host, blocks: readonly SshConfigBlock[]): Host {
  if (host.connection === 'local' || blocks.length === 0) return host;
  const c = sshConfigFor(blocks, host.address);
  const explicitPort = host.vars.ansible_port !== undefined || host.vars.ansible_ssh_port !== undefined;
  const jump = c.proxyJump ? { ...c.proxyJump, host: c.proxyJump.host } : undefined;
  return {
    ...host,
    ...(c.hostName ? { address: c.hostName.replace(/%h/g, host.address) } : {}),
    ...(c.port !== undefined && !explicitPort ? { port: c.port } : {}),
    ...(host.user === undefined && c.user ? { user: c.user } : {}),
    ...(host.privateKeyFile === undefined && c.identityFile ? { privateKeyFile: c.identityFile } : {}),
    ...(host.jump === undefined && jump ? { jump: resolveJumpAlias(jump, blocks) } : {}),
  };
}

/** A ProxyJump naming an alias of the same config is resolved through it (HostName, Port, User). */
function resolveJumpAlias(jump: JumpHost, blocks: readonly SshConfigBlock[]): JumpHost {
  const c = sshConfigFor(blocks, jump.host);
  return {
    host: c.hostName ? c.hostName.replace(/%h/g, jump.host) : jump.host,
    port: jump.port !== 22 ? jump.port : (c.port ?? 22),
    ...(jump.user ? { user: jump.user } : c.user ? { user: c.user } : {}),
  };
}

/** What a CLI user gave for SSH (flags and DYCE_* environment); anything missing comes from OpenSshDefaults. */
export interface CliSshGiven {
  /** known_hosts lines (`--known-hosts`). */
  knownHosts?: string | undefined;
  /** A known_hosts file (`--known-hosts-file`). */
  knownHostsFile?: string | undefined;
  hostFingerprints?: readonly string[] | undefined;
  insecureSkipHostKeyCheck?: boolean | undefined;
  /** Key text (DYCE_SSH_PRIVATE_KEY or a key file the caller read). */
  privateKey?: Secret | string | undefined;
  passphrase?: Secret | string | undefined;
}

/**
 * The CLI's SSH credentials: what was given, else the OpenSSH defaults. Host keys: the given known-hosts lines or
 * file, fingerprint or insecure switch (one policy, see hostKeyPolicy), else ~/.ssh/known_hosts and the system
 * file. Keys: the given key, else ssh-agent and the first default key file (a passphrase-protected default key
 * without a passphrase is left to the agent). Checked once, before any host.
 */
export async function cliSshCredentials(
  given: CliSshGiven,
  defaults: OpenSshDefaults,
  names = {
    knownHosts: '--known-hosts',
    fingerprint: '--host-fingerprint',
    insecure: '--insecure-skip-host-key-check',
  },
): Promise<SshCredentials> {
  let knownHosts = given.knownHosts?.trim() ? given.knownHosts : undefined;
  let source = names.knownHosts;
  if (given.knownHostsFile) {
    try {
      knownHosts = `${knownHosts ?? ''}\n${await readFile(given.knownHostsFile, 'utf8')}`;
      source = given.knownHostsFile;
    } catch (error) {
      throw new UserError(
        `cannot read --known-hosts-file ${given.knownHostsFile}: ${(error as NodeJS.ErrnoException).code ?? error}`,
        { cause: error },
      );
    }
  } else if (knownHosts && !/\s/.test(knownHosts.trim()) && (await readOptional(knownHosts.trim())) !== undefined) {
    throw new UserError(
      `${names.knownHosts} takes known_hosts lines, and ${JSON.stringify(knownHosts.trim())} is a file: use --known-hosts-file ${knownHosts.trim()}`,
    );
  }
  const pinned =
    knownHosts !== undefined || (given.hostFingerprints ?? []).length > 0 || given.insecureSkipHostKeyCheck === true;
  let hostKey: HostKeyPolicy;
  if (pinned) {
    hostKey = hostKeyPolicy(
      {
        knownHosts,
        hostFingerprints: given.hostFingerprints,
        insecureSkipHostKeyCheck: given.insecureSkipHostKeyCheck,
      },
      names,
    );
    if (hostKey.kind === 'known-hosts') hostKey = { ...hostKey, source };
  } else {
    if (defaults.knownHosts.sources.length === 0)
      throw new UserError(
        `host keys are verified, and neither ~/.ssh/known_hosts nor /etc/ssh/ssh_known_hosts exists: give ${names.knownHosts} ` +
          `(lines, e.g. from \`ssh-keyscan -p PORT HOST\`), --known-hosts-file FILE or ${names.fingerprint}`,
      );
    hostKey = {
      kind: 'known-hosts',
      entries: defaults.knownHosts.entries,
      source: defaults.knownHosts.sources.join(' + '),
    };
  }
  const creds: SshCredentials = { hostKey };
  if (given.passphrase !== undefined) creds.passphrase = given.passphrase;
  if (given.privateKey !== undefined) {
    creds.privateKey = given.privateKey;
    return creds;
  }
  if (defaults.agent) creds.agent = defaults.agent;
  if (defaults.key) {
    const usable = (() => {
      try {
        loadPrivateKey(
          { privateKey: defaults.key.text, ...(creds.passphrase ? { passphrase: creds.passphrase } : {}) },
          defaults.key.path,
        );
        return true;
      } catch (error) {
        // Encrypted and no passphrase: the agent (when there is one) most likely holds it, as with ssh.
        if (creds.agent) return false;
        throw error;
      }
    })();
    if (usable) creds.privateKey = defaults.key.text;
  }
  return creds;
}
