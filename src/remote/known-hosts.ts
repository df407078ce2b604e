import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { InputError } from '../util/errors.js';

/**
 * known_hosts lines and SHA256 fingerprints, for verifying a host key before authentication.
 *
 * Lookup names follow OpenSSH: a host on port 22 is looked up as `host`, any other port as `[host]:port`.
 * So a key listed for `127.0.0.1` (or `[127.0.0.1]:22`) vouches for port 22 only, never for 2222.
 */

export interface KnownHostEntry {
  /** 1-based line in its source, for messages. */
  line: number;
  revoked: boolean;
  /** Comma-separated patterns (`!` negates, `*`/`?` are wildcards), or undefined for a hashed entry. */
  patterns?: string[];
  /** `|1|salt|hash`: HMAC-SHA1 of the lookup name, keyed by the salt. */
  hashed?: { salt: Buffer; hash: Buffer };
  keyType: string;
  /** The key blob (the base64 field, decoded): what fingerprints are computed over. */
  key: Buffer;
}

/** `SHA256:` + unpadded base64 of SHA-256 of the key blob: exactly what `ssh-keygen -lf` prints. */
export function fingerprintSha256(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside a key blob (its first SSH string). */
export function keyBlobType(keyBlob: Buffer): string | undefined {
  if (keyBlob.length < 4) return undefined;
  const n = keyBlob.readUInt32BE(0);
  if (n === 0 || n > 64 || 4 + n > keyBlob.length) return undefined;
  return keyBlob.subarray(4, 4 + n).toString('latin1');
}

/** The name a host is looked up by: `host` on port 22, `[host]:port` otherwise. */
export function hostLookupName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/**
 * Parses known_hosts text. Comments and blank lines are skipped; every bad line is an issue naming its line.
 * `@cert-authority` lines are refused: Dyce pins host keys, it does not trust certificate authorities.
 */
export function parseKnownHosts(text: string, source = 'known-hosts'): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  const issues: string[] = [];
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const at = `${source}:${i + 1}`;
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let revoked = false;
    if (fields[0]!.startsWith('@')) {
      const marker = fields.shift()!;
      if (marker === '@cert-authority') {
        issues.push(
          `${at}: @cert-authority entries are not supported; pin the host's own key (ssh-keyscan -p PORT HOST) instead`,
        );
        continue;
      }
      if (marker !== '@revoked') {
        issues.push(`${at}: unknown marker ${JSON.stringify(marker)} (expected @revoked)`);
        continue;
      }
      revoked = true;
    }
    if (fields.length < 3) {
      issues.push(`${at}: expected "host[,host...] key-type base64-key [comment]", got ${JSON.stringify(clip(line))}`);
      continue;
    }
    const [hostField, keyType, b64] = fields as [string, string, string];
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) {
      issues.push(`${at}: the key is not base64`);
      continue;
    }
    const key = Buffer.from(b64, 'base64');
    const inner = keyBlobType(key);
    if (inner !== keyType) {
      issues.push(
        `${at}: the key's type field says ${JSON.stringify(keyType)} but the key itself is ${inner ? JSON.stringify(inner) : 'not an SSH public key'}`,
      );
      continue;
    }
    const entry: KnownHostEntry = { line: i + 1, revoked, keyType, key };
    if (hostField.startsWith('|')) {
      const m = /^\|1\|([A-Za-z0-9+/]+={0,2})\|([A-Za-z0-9+/]+={0,2})$/.exec(hostField);
      const salt = m ? Buffer.from(m[1]!, 'base64') : undefined;
      const hash = m ? Buffer.from(m[2]!, 'base64') : undefined;
      if (!salt || !hash || salt.length !== 20 || hash.length !== 20) {
        issues.push(`${at}: bad hashed host (expected |1|salt|hash with 20-byte base64 salt and hash)`);
        continue;
      }
      entry.hashed = { salt, hash };
    } else {
      entry.patterns = hostField
        .split(',')
        .filter((p) => p !== '')
        .map((p) => p.toLowerCase());
    }
    entries.push(entry);
  }
  if (issues.length > 0) throw new InputError(issues, `invalid ${source}`);
  return entries;
}

/** Whether an entry names this host and port (revoked or not). */
export function entryMatchesHost(entry: KnownHostEntry, host: string, port: number): boolean {
  const names = [hostLookupName(host, port)];
  // `[host]:22` is how some tools write port 22; it means the same host as the plain name.
  if (port === 22) names.push(`[${host.toLowerCase()}]:22`);
  if (entry.hashed) {
    const { salt, hash } = entry.hashed;
    return names.some((n) => timingSafeEqual(createHmac('sha1', salt).update(n).digest(), hash));
  }
  let positive = false;
  for (const p of entry.patterns ?? []) {
    const negated = p.startsWith('!');
    const pat = negated ? p.slice(1) : p;
    if (names.some((n) => wildcardMatch(pat, n))) {
      if (negated) return false;
      positive = true;
    }
  }
  return positive;
}

function wildcardMatch(pattern: string, text: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern === text;
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return re.test(text);
}

/** How a host key is judged. */
export type HostKeyPolicy =
  | { kind: 'known-hosts'; entries: readonly KnownHostEntry[]; source?: string }
  | { kind: 'fingerprint'; fingerprints: readonly string[] }
  | { kind: 'insecure' };

export type HostKeyVerdict =
  | { ok: true; keyType: string; fingerprint: string; trusted: boolean }
  | {
      ok: false;
      reason: 'unknown' | 'mismatch' | 'revoked';
      keyType: string;
      fingerprint: string;
      /** What the policy expected for this host: `type SHA256:...` strings. */
      expected: string[];
    };

/** Judges the key a server presented. Pure: no I/O, so every branch is unit-tested. */
export function checkHostKey(policy: HostKeyPolicy, host: string, port: number, keyBlob: Buffer): HostKeyVerdict {
  const keyType = keyBlobType(keyBlob) ?? 'unknown';
  const fingerprint = fingerprintSha256(keyBlob);
  if (policy.kind === 'insecure') return { ok: true, keyType, fingerprint, trusted: false };
  if (policy.kind === 'fingerprint') {
    const expected = policy.fingerprints.map(normalizeFingerprint);
    if (expected.includes(fingerprint)) return { ok: true, keyType, fingerprint, trusted: true };
    return { ok: false, reason: 'mismatch', keyType, fingerprint, expected };
  }
  const revoked = policy.entries.some((e) => e.revoked && e.key.equals(keyBlob));
  if (revoked) return { ok: false, reason: 'revoked', keyType, fingerprint, expected: [] };
  const mine = policy.entries.filter((e) => !e.revoked && entryMatchesHost(e, host, port));
  if (mine.some((e) => e.key.equals(keyBlob))) return { ok: true, keyType, fingerprint, trusted: true };
  const expected = mine.map((e) => `${e.keyType} ${fingerprintSha256(e.key)}`);
  return { ok: false, reason: mine.length === 0 ? 'unknown' : 'mismatch', keyType, fingerprint, expected };
}

const RSA_ALGOS = ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

/**
 * The host key algorithms to offer for this host: only the types known_hosts holds for it, so that a server
 * with several keys presents one we can check (as OpenSSH orders its offer). Undefined means "library default".
 */
export function hostKeyAlgorithms(policy: HostKeyPolicy, host: string, port: number): string[] | undefined {
  if (policy.kind !== 'known-hosts') return undefined;
  const types = new Set(
    policy.entries.filter((e) => !e.revoked && entryMatchesHost(e, host, port)).map((e) => e.keyType),
  );
  if (types.size === 0) return undefined;
  const order = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521'];
  const algos = order.filter((t) => types.has(t));
  if (types.has('ssh-rsa')) algos.push(...RSA_ALGOS);
  return algos.length > 0 ? algos : undefined;
}

/**
 * Accepts `SHA256:<43 base64 chars>` (padding optional) or a whole `ssh-keygen -lf` line; returns `SHA256:...`.
 * Throws for anything else (MD5 fingerprints included: they are too weak to pin).
 */
export function normalizeFingerprint(text: string): string {
  const m = /SHA256:([A-Za-z0-9+/]{43})=?(?:\s|$)/.exec(text.trim());
  if (!m) {
    throw new InputError(
      [`host-fingerprint: expected SHA256:<base64> as printed by ssh-keygen -lf, got ${JSON.stringify(clip(text))}`],
      'invalid host fingerprint',
    );
  }
  return `SHA256:${m[1]}`;
}

/** A one-line, human description of a refused key, for error messages. */
export function describeVerdict(v: HostKeyVerdict, host: string, port: number): string {
  if (v.ok) return `${host}:${port} presented ${v.keyType} ${v.fingerprint}`;
  const got = `${v.keyType} ${v.fingerprint}`;
  const lookup = hostLookupName(host, port);
  switch (v.reason) {
    case 'revoked':
      return `host key of ${host}:${port} is marked @revoked in known_hosts (got ${got})`;
    case 'unknown':
      return `host key of ${host}:${port} is unknown: no known_hosts entry for ${JSON.stringify(lookup)} (the server presented ${got})`;
    case 'mismatch':
      return `host key of ${host}:${port} does not match: expected ${v.expected.join(' or ')}, got ${got}`;
  }
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
