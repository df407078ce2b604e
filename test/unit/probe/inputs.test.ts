import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../../src/util/errors.js';
import { json, probe, serve, type TestServer } from './servers.js';

let server: TestServer;
beforeAll(async () => {
  server = await serve((_q, res) => json(res, 200, { status: 'UP' }));
});
afterAll(() => server.close());

async function inputError(raw: Record<string, string>): Promise<InputError> {
  try {
    await probe(raw);
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error('expected an InputError');
}

describe('bad inputs are refused before any request', () => {
  it.each<[string, Record<string, string>, string]>([
    ['a malformed URL', { url: 'http//nope' }, 'input "url": "http//nope" is not a URL'],
    ['a URL that is not HTTP', { url: 'ftp://example.com/' }, 'must start with http:// or https://'],
    [
      'a bad status-code range',
      { 'valid-status-codes': '299-200' },
      'input "valid-status-codes": "299-200": the range ends before it starts',
    ],
    [
      'a status code that is not one',
      { 'valid-status-codes': '2xx' },
      'input "valid-status-codes": "2xx" is not a status code',
    ],
    ['an unparsable condition', { conditions: '[STATUS] = 200' }, 'input "conditions": condition "[STATUS] = 200"'],
    [
      'an unknown placeholder',
      { conditions: '[STATUS] == 200\n[UPTIME] > 1' },
      'condition "[UPTIME] > 1": unknown placeholder [UPTIME]',
    ],
    ['a negative timeout', { timeout: '-5s' }, 'input "timeout" must not be negative, got "-5s"'],
    ['a zero timeout', { timeout: '0' }, 'input "timeout" must be more than 0'],
    [
      'a bad regexp',
      { 'fail-if-body-matches': '(' },
      'input "fail-if-body-matches": "(" is not a valid regular expression',
    ],
    ['a header rule without a colon', { 'fail-if-header-matches': 'nocolon' }, 'must be "Header-Name: regexp"'],
    [
      'a threshold above attempts',
      { 'success-threshold': '3', attempts: '2' },
      'input "success-threshold" (3) is more than "attempts" (2)',
    ],
    ['a backoff below 1', { backoff: '0.5' }, 'input "backoff" must be a number of at least 1'],
    ['half of OAuth2', { 'token-url': 'http://127.0.0.1:1/token' }, 'missing client-id, client-secret'],
    [
      'two kinds of auth',
      { 'bearer-token': 'abc', 'basic-auth-username': 'u', 'basic-auth-password': 'p' },
      'choose one kind of auth',
    ],
    [
      'a chat id without a token',
      { 'telegram-chat-id': '-100123' },
      'input "telegram-bot-token" is required with "telegram-chat-id"',
    ],
    [
      'a bad thread id',
      { 'telegram-bot-token': '123:abc', 'telegram-chat-id': '-1', 'telegram-thread-id': 'x' },
      'input "telegram-thread-id" must be a whole number',
    ],
    ['a bad webhook URL', { 'webhook-url': 'not a url' }, 'input "webhook-url" is not an http:// or https:// URL'],
    [
      'an unknown alert-on',
      { 'alert-on': 'failure,sometimes' },
      'input "alert-on": "sometimes" is not failure or recovery',
    ],
    [
      'a preferred-ip-protocol typo',
      { 'preferred-ip-protocol': 'ipv4' },
      'input "preferred-ip-protocol" must be one of ip6, ip4',
    ],
  ])('%s', async (_what, raw, message) => {
    const before = server.seen.length;
    const e = await inputError({ url: `${server.origin}/`, ...raw });
    expect(e.message).toContain(message);
    expect(server.seen.length).toBe(before);
  });

  it('a tls-ca file that cannot be read stops the probe before any request', async () => {
    const before = server.seen.length;
    await expect(probe({ url: `${server.origin}/`, 'tls-ca': '/nonexistent/ca.pem' })).rejects.toThrow(
      'input "tls-ca": cannot read /nonexistent/ca.pem (ENOENT)',
    );
    expect(server.seen.length).toBe(before);
  });

  it('lists every problem at once', async () => {
    const e = await inputError({ url: 'nope', 'valid-status-codes': 'x', conditions: 'bad' });
    expect(e.issues).toHaveLength(3);
  });

  it('never echoes a secret webhook URL in its error', async () => {
    const e = await inputError({ url: server.origin, 'webhook-url': 'hxxp://hook/planted-hook-token' });
    expect(e.message).toContain('webhook-url');
    expect(e.message).not.toContain('planted-hook-token');
  });
});

describe('dyce probe (CLI)', () => {
  const root = join(import.meta.dirname, '../../..');
  const run = (args: string[], env: Record<string, string> = {}) =>
    promisify(execFile)(
      process.execPath,
      [join(root, 'node_modules/tsx/dist/cli.mjs'), join(root, 'src/cli/main.ts'), 'probe', ...args],
      {
        env: { ...process.env, ...env },
      },
    ).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  it('probes a URL given as a positional argument and prints JSON', async () => {
    const r = await run([`${server.origin}/`, '--conditions', '[BODY].status == UP', '--json']);
    expect(r.stderr).toContain('passed (200');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).outputs.results[0]).toMatchObject({ success: true, status: 200 });
  }, 30_000);

  it('exits 2 with a clear message on bad input, and refuses secrets as flags', async () => {
    const bad = await run(['--url', 'http//nope', '--valid-status-codes', '500-400']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--url: "http//nope" is not a URL');
    expect(bad.stderr).toContain('the range ends before it starts');
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    const secret = await run([server.origin, '--bearer-token', 'planted-cli-token']);
    expect(secret.code).toBe(2);
    expect(secret.stderr).toContain('--bearer-token is a secret');
    expect(secret.stderr).not.toContain('planted-cli-token');
  }, 30_000);

  it('takes a secret from DYCE_<NAME> and never prints it, even when the body echoes it', async () => {
    const s = await serve((q, res) =>
      json(res, q.headers.authorization === 'Bearer planted-env-token' ? 200 : 401, { echo: q.headers.authorization }),
    );
    try {
      // The failing condition prints the echoed header: where the token would show, the redactor put ***.
      const r = await run([s.origin, '--json', '--conditions', '[BODY].echo == nope'], {
        DYCE_BEARER_TOKEN: 'planted-env-token',
      });
      expect(r.code).toBe(1);
      expect(s.seen[0]!.headers.authorization).toBe('Bearer planted-env-token');
      expect(r.stderr).toContain('[BODY].echo (Bearer ***) == nope');
      expect(r.stdout + r.stderr).not.toContain('planted-env-token');
    } finally {
      await s.close();
    }
  }, 30_000);
});
