import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeSpec } from '../../../src/config/actions/probe.js';
import { parseInputs } from '../../../src/config/input-spec.js';
import { RecordingReporter } from '../../../src/github/reporter.js';
import { parseHeaderLines, parseSize } from '../../../src/probe/config.js';
import { compileGoRegexp } from '../../../src/probe/regex.js';
import { runProbeInputs } from '../../../src/probe/run.js';
import { InputError } from '../../../src/util/errors.js';
import { makePki, type Pki } from './pki.js';
import { probe } from './servers.js';

/** The probe's settings that blackbox_exporter 0.23 lacks, its input checks, and its messages. */
let dir: string;
let pki: Pki;
const closers: Array<() => void> = [];
const seen: Array<{ url: string; headers: http.IncomingHttpHeaders; body: string }> = [];
let plain: string;
let h2: string;
let mtls: string;
const connects: Array<{ target: string; headers: http.IncomingHttpHeaders }> = [];
let proxy: string;

async function listen(s: net.Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  s.on('tlsClientError', () => {});
  closers.push(() => {
    (s as http.Server).closeAllConnections?.();
    s.close();
  });
  return (s.address() as AddressInfo).port;
}

function handler(req: http.IncomingMessage, res: http.ServerResponse) {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    seen.push({ url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
    if (req.url === '/empty') return (req.socket as Socket).end();
    if (req.url === '/garbage') return (req.socket as Socket).end('nonsense\r\n\r\n');
    if (req.url === '/slow') return void setTimeout(() => !res.destroyed && res.end('late'), 2000);
    if (req.url === '/slowbody') {
      res.writeHead(200);
      res.write('a');
      return void setTimeout(() => !res.destroyed && res.end('b'), 2000);
    }
    res.writeHead(req.url === '/fail' ? 500 : 200, { 'content-type': 'text/plain' });
    res.end(`ok via=${req.headers['x-via'] ?? ''}`);
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dyce-fidelity-'));
  pki = makePki(dir);
  plain = `http://127.0.0.1:${await listen(http.createServer(handler))}`;
  h2 = `https://127.0.0.1:${await listen(http2.createSecureServer({ ...pki.good, allowHTTP1: true }, handler as never) as unknown as net.Server)}`;
  mtls = `https://127.0.0.1:${await listen(https.createServer({ ...pki.good, ca: pki.ca, requestCert: true, rejectUnauthorized: true }, handler))}`;
  const p = http.createServer((req, res) => {
    const u = new URL(req.url ?? '');
    const up = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: req.method,
        headers: { ...req.headers, 'x-via': 'proxy' },
      },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    req.pipe(up);
  });
  p.on('connect', (req, socket: Socket) => {
    connects.push({ target: req.url ?? '', headers: req.headers });
    const i = req.url!.lastIndexOf(':');
    const up = net.connect(Number(req.url!.slice(i + 1)), req.url!.slice(0, i), () => {
      socket.write('HTTP/1.1 200 OK\r\n\r\n');
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
  });
  proxy = `http://127.0.0.1:${await listen(p)}`;
});
afterAll(() => {
  for (const c of closers) c();
  rmSync(dir, { recursive: true, force: true });
});

async function inputError(raw: Record<string, string>): Promise<string> {
  try {
    await probe({ url: `${plain}/`, ...raw });
  } catch (e) {
    if (e instanceof InputError) return e.message;
    throw e;
  }
  throw new Error('expected an InputError');
}

describe("Go's regexp dialect", () => {
  it.each([
    ['(?i)abc', 'xABC', true],
    ['\\Aabc', 'xabc', false],
    ['abc\\z', 'abc\n', false],
    ['abc$', 'abc\n', false],
    ['[[:alpha:]]', '123', false],
    ['[[:alpha:]]', '12a', true],
    ['(?s)a.b', 'a\nb', true],
    ['a.b', 'a\nb', false],
  ])('%s on %j is %s, as in Go', (pattern, text, match) => {
    const r = compileGoRegexp(pattern);
    expect(r.ok && r.value.test(text)).toBe(match);
  });

  it.each([
    ['fail-if-body-matches', 'a(?=b)', 'lookaheads do not exist in RE2'],
    ['fail-if-body-not-matches', '(?<=a)b', 'lookbehinds do not exist in RE2'],
    ['fail-if-body-matches', '(a)\\1', 'backreferences do not exist in RE2'],
    ['fail-if-body-matches', '(?<name>a)', '`(?<name>...)` (write `(?P<name>...)`)'],
    ['fail-if-body-matches', 'x{1001}', 'invalid repeat count'],
    ['fail-if-header-matches', 'X-A: a(?!b)', 'invalid or unsupported Perl syntax: `(?!`'],
  ])('%s %j is refused, naming the input and the construct', async (input, pattern, construct) => {
    const msg = await inputError({ [input]: pattern });
    expect(msg).toContain(`input "${input}"`);
    expect(msg).toContain(construct);
  });
});

describe('input checks', () => {
  it.each<[Record<string, string>, string]>([
    [{ 'allow-missing-headers': 'X-B', 'fail-if-header-matches': 'X-A: x' }, 'X-B is named by no fail-if-header'],
    [{ compression: 'zip' }, 'input "compression": "zip" is not one of gzip, br, deflate, identity'],
    [{ compression: 'gzip', headers: 'Accept-Encoding: br' }, 'gzip is not acceptable to the Accept-Encoding header'],
    [{ 'body-size-limit': '1 lightyear' }, 'input "body-size-limit": "1 lightyear" is not a size'],
    [{ 'tls-min-version': 'SSL3' }, 'input "tls-min-version": "SSL3" is not one of TLS10, TLS11, TLS12, TLS13'],
    [{ 'tls-min-version': 'TLS13', 'tls-max-version': 'TLS12' }, 'is above "tls-max-version"'],
    [{ 'tls-cert': '/x.pem' }, 'inputs "tls-cert" and "tls-key" go together'],
    [{ body: 'a', 'body-file': '/x' }, 'inputs "body" and "body-file" cannot both be set'],
    [{ headers: 'no separator here' }, 'input "headers": "no separator here" must be "Name: value"'],
    [{ 'proxy-url': 'socks5://p:1080' }, 'input "proxy-url" must be an http:// URL'],
  ])('%j is refused', async (raw, message) => {
    expect(await inputError(raw)).toContain(message);
  });

  it('reads sizes as blackbox does (KB = KiB), and bytes', () => {
    expect(parseSize('1MiB')).toBe(1048576);
    expect(parseSize('512KiB')).toBe(524288);
    expect(parseSize('10MB')).toBe(10485760);
    expect(parseSize('1234')).toBe(1234);
    expect(parseSize('0')).toBe(0);
    expect(parseSize('1.5')).toBe(1);
    expect(parseSize('-1')).toBeUndefined();
  });

  it('reads headers written `Name: value` and `Name=value`, by the first separator', () => {
    const issues: string[] = [];
    expect(
      parseHeaderLines('headers', ['X-A: a=b', 'X-B=c: d', 'Authorization: Bearer x:y', 'X-Empty:'], issues),
    ).toEqual([
      ['X-A', 'a=b'],
      ['X-B', 'c: d'],
      ['Authorization', 'Bearer x:y'],
      ['X-Empty', ''],
    ]);
    expect(issues).toEqual([]);
  });
});

describe('settings beyond blackbox_exporter 0.23', () => {
  it('sends body-file as the request body', async () => {
    const file = join(dir, 'body.json');
    writeFileSync(file, '{"from":"file"}');
    const { run } = await probe({ url: `${plain}/post`, method: 'POST', 'body-file': file });
    expect(run.success).toBe(true);
    expect(seen.at(-1)).toMatchObject({ url: '/post', body: '{"from":"file"}' });
    expect(seen.at(-1)!.headers['content-length']).toBe('15');
  });

  it('caps the TLS version with tls-max-version', async () => {
    const { run } = await probe({ url: `${h2}/`, 'tls-ca': pki.caPath, 'tls-max-version': 'TLS12' });
    expect(run.success).toBe(true);
    expect(run.results[0]!.last.metrics.tlsInfo?.version).toBe('TLS 1.2');
    const top = await probe({ url: `${h2}/`, 'tls-ca': pki.caPath });
    expect(top.run.results[0]!.last.metrics.tlsInfo?.version).toBe('TLS 1.3');
  });

  it('sends proxy-connect-header with CONNECT, and keeps it out of every output', async () => {
    const planted = 'Basic planted-proxy-credential';
    const { run, text } = await probe({
      url: `${h2}/`,
      'tls-ca': pki.caPath,
      'proxy-url': proxy,
      'proxy-connect-header': `Proxy-Authorization: ${planted}`,
    });
    expect(run.success).toBe(true);
    expect(connects.at(-1)!.headers['proxy-authorization']).toBe(planted);
    expect(text).not.toContain('planted-proxy-credential');
  });

  it('puts the proxy URL password in Proxy-Authorization and never in the output', async () => {
    const url = new URL(proxy);
    url.username = 'user';
    url.password = 'planted-proxy-password';
    const { run, text } = await probe({
      url: `${plain}/x`,
      'proxy-url': url.href,
      'fail-if-body-not-matches': 'via=proxy',
    });
    expect(run.success).toBe(true);
    expect(seen.at(-1)!.headers['proxy-authorization']).toBe(
      `Basic ${Buffer.from('user:planted-proxy-password').toString('base64')}`,
    );
    expect(text).not.toContain('planted-proxy-password');
  });

  it('bypasses proxy-url for no-proxy hosts, CIDRs and domains', async () => {
    for (const noProxy of ['127.0.0.1', '127.0.0.0/8', '*']) {
      const { run } = await probe({
        url: `${plain}/x`,
        'proxy-url': proxy,
        'no-proxy': noProxy,
        'fail-if-body-matches': 'via=proxy',
      });
      expect(run.success, noProxy).toBe(true);
    }
    const via = await probe({
      url: `${plain}/x`,
      'proxy-url': proxy,
      'no-proxy': 'example.com, 10.0.0.0/8',
      'fail-if-body-not-matches': 'via=proxy',
    });
    expect(via.run.success).toBe(true);
  });

  it('takes the proxy from the environment when asked, except for loopback addresses, as Go does', async () => {
    const env = { HTTP_PROXY: proxy, HTTPS_PROXY: proxy };
    const run = (extra: Record<string, string>) =>
      runProbeInputs(parseInputs(probeSpec, { url: `${plain}/x`, ...extra }), new RecordingReporter(), { env });
    const direct = await run({ 'proxy-from-environment': 'true', 'fail-if-body-matches': 'via=proxy' });
    expect(direct.success).toBe(true);
    const ignored = await run({ 'fail-if-body-matches': 'via=proxy' });
    expect(ignored.success).toBe(true);
  });

  it('sends a client certificate whose key is encrypted, with tls-key-passphrase, and never prints the passphrase', async () => {
    const encrypted = join(dir, 'enc.key');
    execFileSync('openssl', [
      'pkey',
      '-in',
      join(dir, 'good.key'),
      '-aes256',
      '-passout',
      'pass:planted-passphrase',
      '-out',
      encrypted,
    ]);
    const common = { url: `${mtls}/`, 'tls-ca': pki.caPath, 'tls-cert': join(dir, 'good.pem'), 'tls-key': encrypted };
    const ok = await probe({ ...common, 'tls-key-passphrase': 'planted-passphrase' });
    expect(ok.run.success).toBe(true);
    expect(ok.text).not.toContain('planted-passphrase');
    const none = await probe({ url: `${mtls}/`, 'tls-ca': pki.caPath });
    expect(none.run.success).toBe(false);
  });
});

describe('messages', () => {
  it.each([
    ['/empty', 'the server closed the connection without replying (empty reply)'],
    ['/garbage', 'the reply is not valid HTTP'],
    ['/slow', 'timed out after 1s waiting for the response headers'],
    ['/slowbody', 'timed out after 1s reading the body'],
  ])('%s: %s', async (path, message) => {
    const { run } = await probe({ url: `${plain}${path}`, timeout: '1s' });
    expect(run.success).toBe(false);
    expect(run.results[0]!.reason).toContain(message);
  });

  it('says when a certificate expired', async () => {
    const s = https.createServer(pki.expired, handler);
    const port = await listen(s);
    const { run } = await probe({ url: `https://127.0.0.1:${port}/`, 'tls-ca': pki.caPath });
    expect(run.results[0]!.reason).toMatch(
      /TLS: the certificate expired on 2020-0[12]-\d\dT[\d:]+Z, \d+ days ago \(CERT_HAS_EXPIRED\)/,
    );
  });

  it('shows the header values it compared', async () => {
    const { run } = await probe({ url: `${plain}/`, 'fail-if-header-not-matches': 'Content-Type: json' });
    expect(run.results[0]!.reason).toBe(
      'header content-type value "text/plain" does not match `json` (fail-if-header-not-matches)',
    );
  });

  it('lists every attempt with its status and latency in the job summary', async () => {
    const { reporter } = await probe({ url: `${plain}/fail`, attempts: '3', interval: '10ms' });
    const summary = reporter.summaries.join('\n');
    expect(summary).toMatch(/Attempts: 3, latency min \d+ ms · median \d+ ms · max \d+ ms/);
    expect(summary).toMatch(/\| 1 \| ❌ status 500 is not in 200-299 \| 500 \| \d+ ms \|/);
    expect(summary).toMatch(/\| 3 \| ❌ status 500 is not in 200-299 \| 500 \| \d+ ms \|/);
  });
});
