import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkHostKey,
  describeVerdict,
  fingerprintSha256,
  hostKeyAlgorithms,
  type KnownHostEntry,
  normalizeFingerprint,
  parseKnownHosts,
} from '../../src/remote/known-hosts.js';
import { InputError } from '../../src/util/errors.js';

// Real keys from ssh-keygen, and fingerprints as ssh-keygen prints them: the reference we must agree with.
let dir: string;
const keys: Record<string, { pub: string; blob: Buffer; type: string; fp: string }> = {};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dyce-kh-'));
  for (const [name, args] of Object.entries({
    ed: ['-t', 'ed25519'],
    rsa: ['-t', 'rsa', '-b', '2048'],
    ecdsa: ['-t', 'ecdsa', '-b', '256'],
    other: ['-t', 'ed25519'],
  })) {
    const file = join(dir, name);
    execFileSync('ssh-keygen', ['-q', ...args, '-N', '', '-C', `${name}@test`, '-f', file]);
    const pub = readFileSync(`${file}.pub`, 'utf8').trim();
    const [type, b64] = pub.split(' ') as [string, string];
    const fp = execFileSync('ssh-keygen', ['-lf', `${file}.pub`], { encoding: 'utf8' }).split(' ')[1]!;
    keys[name] = { pub, blob: Buffer.from(b64, 'base64'), type, fp };
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const line = (hosts: string, k: { pub: string }) => `${hosts} ${k.pub.split(' ').slice(0, 2).join(' ')}`;
const policy = (text: string) => ({ kind: 'known-hosts' as const, entries: parseKnownHosts(text) });

describe('fingerprints', () => {
  it('agree with ssh-keygen -lf for ed25519, rsa and ecdsa keys', () => {
    for (const k of Object.values(keys)) expect(fingerprintSha256(k.blob)).toBe(k.fp);
    expect(keys.ed!.fp).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('normalises a pasted fingerprint or a whole ssh-keygen line, and refuses MD5', () => {
    const fp = keys.ed!.fp;
    expect(normalizeFingerprint(` ${fp}= `)).toBe(fp);
    expect(normalizeFingerprint(`256 ${fp} ed@test (ED25519)`)).toBe(fp);
    expect(() => normalizeFingerprint('MD5:12:34:56')).toThrow(InputError);
    expect(() => normalizeFingerprint('SHA256:tooshort')).toThrow(/ssh-keygen -lf/);
  });
});

describe('known_hosts', () => {
  it('a key for port 22 (plain or [host]:22) never vouches for port 2222', () => {
    for (const hosts of ['127.0.0.1', '[127.0.0.1]:22']) {
      const p = policy(line(hosts, keys.ed!));
      expect(checkHostKey(p, '127.0.0.1', 22, keys.ed!.blob).ok).toBe(true);
      const v = checkHostKey(p, '127.0.0.1', 2222, keys.ed!.blob);
      expect(v).toMatchObject({ ok: false, reason: 'unknown' });
      expect(describeVerdict(v, '127.0.0.1', 2222)).toContain('no known_hosts entry for "[127.0.0.1]:2222"');
    }
    const p = policy(line('[127.0.0.1]:2222', keys.ed!));
    expect(checkHostKey(p, '127.0.0.1', 2222, keys.ed!.blob).ok).toBe(true);
    expect(checkHostKey(p, '127.0.0.1', 22, keys.ed!.blob)).toMatchObject({ ok: false, reason: 'unknown' });
  });

  it('reports a mismatch with expected and presented fingerprints', () => {
    const p = policy(line('[127.0.0.1]:2222', keys.ed!));
    const v = checkHostKey(p, '127.0.0.1', 2222, keys.other!.blob);
    expect(v).toMatchObject({ ok: false, reason: 'mismatch', expected: [`ssh-ed25519 ${keys.ed!.fp}`] });
    expect(describeVerdict(v, '127.0.0.1', 2222)).toBe(
      `host key of 127.0.0.1:2222 does not match: expected ssh-ed25519 ${keys.ed!.fp}, got ssh-ed25519 ${keys.other!.fp}`,
    );
  });

  it('matches comma lists, wildcards and negations, case-insensitively', () => {
    const p = policy(line('vps,10.0.0.*,!10.0.0.9,[Bastion.Example]:2200', keys.rsa!));
    expect(checkHostKey(p, 'vps', 22, keys.rsa!.blob).ok).toBe(true);
    expect(checkHostKey(p, '10.0.0.4', 22, keys.rsa!.blob).ok).toBe(true);
    expect(checkHostKey(p, '10.0.0.9', 22, keys.rsa!.blob).ok).toBe(false);
    expect(checkHostKey(p, 'bastion.example', 2200, keys.rsa!.blob).ok).toBe(true);
    expect(checkHostKey(p, 'vps2', 22, keys.rsa!.blob).ok).toBe(false);
  });

  it('matches hashed entries written by ssh-keygen -H', () => {
    const file = join(dir, 'known_hosts');
    writeFileSync(file, `${line('[127.0.0.1]:2222', keys.ecdsa!)}\n${line('vps.example', keys.ed!)}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('127.0.0.1');
    expect(text).toMatch(/^\|1\|/);
    const p = policy(text);
    expect(checkHostKey(p, '127.0.0.1', 2222, keys.ecdsa!.blob).ok).toBe(true);
    expect(checkHostKey(p, 'vps.example', 22, keys.ed!.blob).ok).toBe(true);
    expect(checkHostKey(p, '127.0.0.1', 22, keys.ecdsa!.blob)).toMatchObject({ ok: false, reason: 'unknown' });
    expect(checkHostKey(p, '127.0.0.1', 2222, keys.ed!.blob)).toMatchObject({ ok: false, reason: 'mismatch' });
  });

  it('refuses @revoked keys and @cert-authority lines', () => {
    const p = policy(`${line('vps', keys.ed!)}\n@revoked ${line('*', keys.ed!)}`);
    expect(checkHostKey(p, 'vps', 22, keys.ed!.blob)).toMatchObject({ ok: false, reason: 'revoked' });
    expect(() => parseKnownHosts(`# c\n@cert-authority ${line('*.example', keys.ed!)}`)).toThrow(
      /known-hosts:2: @cert-authority entries are not supported/,
    );
  });

  it('names malformed lines', () => {
    let issues: string[] = [];
    try {
      parseKnownHosts(
        [
          'vps ssh-ed25519',
          `vps ssh-rsa ${keys.ed!.pub.split(' ')[1]}`,
          'vps ssh-ed25519 !!!',
          '|1|abc|def ssh-ed25519 AAAA',
        ].join('\n'),
        'known-hosts',
      );
    } catch (error) {
      issues = (error as InputError).issues;
    }
    expect(issues).toHaveLength(4);
    expect(issues[0]).toMatch(/^known-hosts:1: expected/);
    expect(issues[1]).toBe('known-hosts:2: the key\'s type field says "ssh-rsa" but the key itself is "ssh-ed25519"');
    expect(issues[2]).toBe('known-hosts:3: the key is not base64');
    expect(issues[3]).toMatch(/^known-hosts:4: (bad hashed host|the key's type)/);
  });

  it('pins by fingerprint, and insecure accepts anything untrusted', () => {
    expect(checkHostKey({ kind: 'fingerprint', fingerprints: [keys.ed!.fp] }, 'h', 22, keys.ed!.blob).ok).toBe(true);
    expect(checkHostKey({ kind: 'fingerprint', fingerprints: [keys.ed!.fp] }, 'h', 22, keys.rsa!.blob)).toMatchObject({
      ok: false,
      reason: 'mismatch',
      expected: [keys.ed!.fp],
    });
    expect(checkHostKey({ kind: 'insecure' }, 'h', 22, keys.rsa!.blob)).toMatchObject({ ok: true, trusted: false });
  });

  it('offers only the host key algorithms known for the host', () => {
    const p = policy(`${line('[h]:2222', keys.rsa!)}\n${line('[h]:2222', keys.ecdsa!)}\n${line('other', keys.ed!)}`);
    expect(hostKeyAlgorithms(p, 'h', 2222)).toEqual(['ecdsa-sha2-nistp256', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
    expect(hostKeyAlgorithms(p, 'h', 22)).toBeUndefined();
    const entries: KnownHostEntry[] = p.entries;
    expect(entries.map((e) => e.line)).toEqual([1, 2, 3]);
  });
});
