import { lookup } from 'node:dns/promises';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePki, type Pki } from './pki.js';
import { freePort, json, probe, serve, type TestServer } from './servers.js';

let pki: Pki;
let dir: string;
const servers: TestServer[] = [];
const track = async (s: Promise<TestServer>) => {
  const server = await s;
  servers.push(server);
  return server;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dyce-probe-'));
  pki = makePki(dir);
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  rmSync(dir, { recursive: true, force: true });
});

describe('probe against real local servers', () => {
  it('passes on a plain HTTP 200 and writes every output', async () => {
    const s = await track(serve((_q, res) => json(res, 200, { status: 'UP' })));
    const { run, reporter } = await probe({ url: `${s.origin}/health` });
    expect(run.success).toBe(true);
    expect(reporter.outputs.success).toBe('true');
    expect(reporter.outputs['status-code']).toBe('200');
    expect(Number(reporter.outputs['duration-ms'])).toBeGreaterThanOrEqual(0);
    for (const o of ['dns-ms', 'connect-ms', 'tls-ms', 'processing-ms', 'transfer-ms'])
      expect(reporter.outputs[o]).toMatch(/^\d+$/);
    expect(reporter.outputs['cert-expiry']).toBe('');
    const results = JSON.parse(reporter.outputs.results!);
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ url: `${s.origin}/health`, success: true, status: 200, ip: '127.0.0.1' });
    expect(reporter.summaries.join('\n')).toContain(`#### ${s.origin}/health`);
  });

  it('passes on 204 with an empty body under the default 2xx', async () => {
    const s = await track(
      serve((_q, res) => {
        res.writeHead(204);
        res.end();
      }),
    );
    const { run } = await probe({ url: s.origin });
    expect(run.success).toBe(true);
    expect(run.results[0]!.last.status).toBe(204);
  });

  it('fails on a status outside valid-status-codes and says so', async () => {
    const s = await track(serve((_q, res) => json(res, 503, {})));
    const { run } = await probe({ url: s.origin, 'valid-status-codes': '200-299,204' });
    expect(run.success).toBe(false);
    expect(run.results[0]!.reason).toContain('status 503 is not in 200-299,204');
  });

  it('follows a redirect chain, and fails on it with follow-redirects false', async () => {
    const s = await track(
      serve((q, res) => {
        const n = Number(/\/hop\/(\d+)/.exec(q.url)?.[1] ?? 0);
        if (n < 3) {
          res.writeHead(n === 1 ? 307 : 302, { location: `/hop/${n + 1}` });
          res.end();
        } else json(res, 200, { hops: n });
      }),
    );
    const { run } = await probe({ url: `${s.origin}/hop/0` });
    expect(run.success).toBe(true);
    expect(run.results[0]!.last.redirects).toBe(3);
    expect(run.results[0]!.last.finalUrl).toBe(`${s.origin}/hop/3`);
    const noFollow = await probe({ url: `${s.origin}/hop/0`, 'follow-redirects': 'false' });
    expect(noFollow.run.success).toBe(false);
    expect(noFollow.run.results[0]!.last.status).toBe(302);
  });

  it('fails a response slower than the timeout', async () => {
    const s = await track(
      serve(async (_q, res) => {
        await new Promise((r) => setTimeout(r, 1500));
        if (!res.destroyed) json(res, 200, {});
      }),
    );
    const { run } = await probe({ url: s.origin, timeout: '300ms' });
    expect(run.success).toBe(false);
    expect(run.results[0]!.reason).toContain('timed out after 300ms');
  });

  it('fails a body that trickles in beyond the timeout, keeping the status it saw', async () => {
    const s = await track(
      serve((_q, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first part…');
        setTimeout(() => !res.destroyed && res.end('rest'), 1500);
      }),
    );
    const { run } = await probe({ url: s.origin, timeout: '300ms' });
    expect(run.success).toBe(false);
    expect(run.results[0]!.reason).toContain('timed out after 300ms');
    expect(run.results[0]!.last.status).toBe(200);
  });

  it('fails on connection refused, attempt after attempt, with progress lines', async () => {
    const port = await freePort();
    const { run, reporter } = await probe({ url: `http://127.0.0.1:${port}/`, attempts: '2', interval: '10ms' });
    expect(run.success).toBe(false);
    expect(run.results[0]!.failedAttempts).toBe(2);
    expect(run.results[0]!.reason).toContain('connection refused');
    expect(reporter.lines.some((l) => l.includes('attempt 1/2 failed') && l.includes('connection refused'))).toBe(true);
    expect(reporter.lines.some((l) => l.includes('next attempt in 10ms'))).toBe(true);
    expect(reporter.outputs.success).toBe('false');
    expect(reporter.outputs['status-code']).toBe('');
  });

  it('passes a server that fails 3 times with attempts 5, fails it with attempts 3', async () => {
    const flaky = async () => {
      let n = 0;
      return track(serve((_q, res) => json(res, ++n <= 3 ? 503 : 200, { n })));
    };
    const a = await flaky();
    const five = await probe({ url: a.origin, attempts: '5', interval: '10ms' });
    expect(five.run.success).toBe(true);
    expect(five.run.results[0]).toMatchObject({ attempts: 4, failedAttempts: 3 });
    const b = await flaky();
    const three = await probe({ url: b.origin, attempts: '3', interval: '10ms' });
    expect(three.run.success).toBe(false);
    expect(three.run.results[0]!.failedAttempts).toBe(3);
  });

  it('needs success-threshold consecutive successes', async () => {
    let n = 0;
    // ok, fail, ok, ok: passes at the 4th attempt with a threshold of 2.
    const s = await track(serve((_q, res) => json(res, ++n === 2 ? 500 : 200, {})));
    const { run } = await probe({ url: s.origin, attempts: '5', interval: '10ms', 'success-threshold': '2' });
    expect(run.success).toBe(true);
    expect(run.results[0]!.attempts).toBe(4);
  });

  it('stops at the deadline', async () => {
    const port = await freePort();
    const { run } = await probe({
      url: `http://127.0.0.1:${port}/`,
      attempts: '100',
      interval: '100ms',
      deadline: '350ms',
    });
    expect(run.success).toBe(false);
    expect(run.results[0]!.attempts).toBeLessThan(100);
    expect(run.results[0]!.reason).toContain('deadline');
  });

  it('fails on a wrong body (fail-if-body-not-matches / fail-if-body-matches) and on headers', async () => {
    const s = await track(
      serve((_q, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'x-version': 'v1.4.1' });
        res.end('status: degraded');
      }),
    );
    const notMatch = await probe({ url: s.origin, 'fail-if-body-not-matches': 'status: ok' });
    expect(notMatch.run.success).toBe(false);
    expect(notMatch.run.results[0]!.reason).toContain('does not match `status: ok`');
    const match = await probe({ url: s.origin, 'fail-if-body-matches': 'degraded|error' });
    expect(match.run.success).toBe(false);
    expect(match.run.results[0]!.reason).toContain('matches `degraded|error`');
    const header = await probe({ url: s.origin, 'fail-if-header-not-matches': 'X-Version: ^v1\\.4\\.2$' });
    expect(header.run.success).toBe(false);
    expect(header.run.results[0]!.reason).toContain('header x-version value "v1.4.1" does not match');
    const plain = await probe({
      url: s.origin,
      'fail-if-header-matches': 'Content-Type: json',
      'fail-if-not-ssl': 'true',
    });
    expect(plain.run.success).toBe(false);
    expect(plain.run.results[0]!.reason).toContain('fail-if-not-ssl');
    expect(plain.run.results[0]!.reason).not.toContain('content-type');
    const json = await probe({
      url: s.origin,
      'fail-if-header-matches': 'Content-Type: ^text/',
      'fail-if-ssl': 'true',
    });
    expect(json.run.success).toBe(false);
    expect(json.run.results[0]!.reason).toBe(
      'header content-type value "text/plain" matches `^text/` (fail-if-header-matches)',
    );
  });

  it('checks JSON status conditions', async () => {
    let status = 'UP';
    const s = await track(serve((_q, res) => json(res, 200, { status, checks: [{ name: 'db', ok: true }] })));
    const conditions = '[STATUS] == 200\n[BODY].status == UP\n[BODY].checks[0].ok == true\n[RESPONSE_TIME] < 5000';
    const up = await probe({ url: s.origin, conditions });
    expect(up.run.success).toBe(true);
    expect(up.run.results[0]!.last.conditions.every((c) => c.ok)).toBe(true);
    status = 'DOWN';
    const down = await probe({ url: s.origin, conditions });
    expect(down.run.success).toBe(false);
    expect(down.run.results[0]!.reason).toContain('condition failed: [BODY].status (DOWN) == UP');
  });

  it('HTTPS with a private CA: passes with tls-ca, fails without', async () => {
    const s = await track(serve((_q, res) => json(res, 200, {}), pki.good));
    const url = `https://localhost:${s.port}/`;
    const ip4 = { 'preferred-ip-protocol': 'ip4' };
    const without = await probe({ url, ...ip4 });
    expect(without.run.success).toBe(false);
    expect(without.run.results[0]!.reason).toMatch(/TLS: .*(unknown CA|self-signed)/);
    const withCa = await probe({ url, ...ip4, 'tls-ca': pki.caPath, 'fail-if-not-ssl': 'true' });
    expect(withCa.run.success).toBe(true);
    expect(withCa.reporter.outputs['cert-expiry']).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(Number(withCa.reporter.outputs['tls-ms'])).toBeGreaterThanOrEqual(0);
    const pem = await probe({ url, ...ip4, 'tls-ca': pki.ca });
    expect(pem.run.success).toBe(true);
    const skip = await probe({ url, ...ip4, 'tls-insecure-skip-verify': 'true' });
    expect(skip.run.success).toBe(true);
    // tls-server-name: the certificate names probe.test, the URL an IP it also names; a wrong name fails.
    const sni = await probe({
      url: `https://127.0.0.1:${s.port}/`,
      'tls-ca': pki.caPath,
      'tls-server-name': 'probe.test',
    });
    expect(sni.run.success).toBe(true);
    const wrong = await probe({
      url: `https://127.0.0.1:${s.port}/`,
      'tls-ca': pki.caPath,
      'tls-server-name': 'other.test',
    });
    expect(wrong.run.success).toBe(false);
    expect(wrong.run.results[0]!.reason).toContain(
      'the certificate is not valid for other.test: it covers DNS:localhost, DNS:probe.test, IP Address:127.0.0.1',
    );
  });

  it('fails on an expired certificate and says it expired', async () => {
    const s = await track(serve((_q, res) => json(res, 200, {}), pki.expired));
    const { run } = await probe({
      url: `https://localhost:${s.port}/`,
      'tls-ca': pki.caPath,
      'preferred-ip-protocol': 'ip4',
    });
    expect(run.success).toBe(false);
    expect(run.results[0]!.reason).toMatch(/expired/);
    expect(run.results[0]!.reason).toContain('CERT_HAS_EXPIRED');
  });

  it('[CERTIFICATE_EXPIRATION] > 720h fails for a certificate valid 10 days, passes > 48h', async () => {
    const s = await track(serve((_q, res) => json(res, 200, {}), pki.shortLived));
    const url = `https://localhost:${s.port}/`;
    const ip4 = { 'preferred-ip-protocol': 'ip4' };
    const long = await probe({ url, ...ip4, 'tls-ca': pki.caPath, conditions: '[CERTIFICATE_EXPIRATION] > 720h' });
    expect(long.run.success).toBe(false);
    expect(long.run.results[0]!.reason).toMatch(/\[CERTIFICATE_EXPIRATION\] \((9|10)d.*\) > 720h/);
    const short = await probe({ url, ...ip4, 'tls-ca': pki.caPath, conditions: '[CERTIFICATE_EXPIRATION] > 48h' });
    expect(short.run.success).toBe(true);
  });

  it('does not send Authorization to another origin on redirect', async () => {
    const other = await track(serve((_q, res) => json(res, 200, {})));
    const first = await track(
      serve((q, res) => {
        if (q.url === '/start') {
          res.writeHead(302, { location: '/same' });
          res.end();
        } else {
          res.writeHead(302, { location: `${other.origin}/landing` });
          res.end();
        }
      }),
    );
    const { run, text } = await probe({
      url: `${first.origin}/start`,
      'bearer-token': 'planted-bearer-secret-123',
      headers: 'Cookie=session=abc',
    });
    expect(run.success).toBe(true);
    expect(first.seen.map((q) => q.headers.authorization)).toEqual([
      'Bearer planted-bearer-secret-123',
      'Bearer planted-bearer-secret-123',
    ]);
    expect(other.seen).toHaveLength(1);
    expect(other.seen[0]!.headers.authorization).toBeUndefined();
    expect(other.seen[0]!.headers.cookie).toBeUndefined();
    // The reporter got the token as a secret (the runner masks it); it is not in outputs or summary either.
    expect(text).not.toContain('planted-bearer-secret-123');
  });

  it('sends basic auth, method, headers and body', async () => {
    const s = await track(serve((q, res) => json(res, q.headers.authorization ? 200 : 401, {})));
    const { run, reporter } = await probe({
      url: s.origin,
      method: 'post',
      headers: 'X-Probe=yes',
      body: '{"ping":1}',
      'basic-auth-username': 'ops',
      'basic-auth-password': 'pa55-word',
    });
    expect(run.success).toBe(true);
    expect(s.seen[0]).toMatchObject({ method: 'POST', body: '{"ping":1}' });
    expect(s.seen[0]!.headers['x-probe']).toBe('yes');
    expect(s.seen[0]!.headers.authorization).toBe(`Basic ${Buffer.from('ops:pa55-word').toString('base64')}`);
    expect(reporter.secrets).toContain(Buffer.from('ops:pa55-word').toString('base64'));
  });

  it('probes several URLs concurrently and writes the Prometheus file with blackbox names', async () => {
    const ok = await track(serve((_q, res) => json(res, 200, {})));
    const bad = await track(serve((_q, res) => json(res, 500, {})));
    const file = join(dir, 'probe.prom');
    const { run, reporter } = await probe({ url: `${ok.origin}/a, ${bad.origin}/b`, 'prometheus-file': file });
    expect(run.success).toBe(false);
    expect(reporter.outputs['status-code']).toBe('500');
    const prom = readFileSync(file, 'utf8');
    expect(prom).toContain(`probe_success{instance="${ok.origin}/a"} 1`);
    expect(prom).toContain(`probe_success{instance="${bad.origin}/b"} 0`);
    expect(prom).toContain(`probe_http_status_code{instance="${bad.origin}/b"} 500`);
    expect(prom).toMatch(/probe_duration_seconds\{instance="[^"]+"\} [\d.]+/);
    for (const phase of ['resolve', 'connect', 'tls', 'processing', 'transfer'])
      expect(prom).toContain(`probe_http_duration_seconds{instance="${ok.origin}/a",phase="${phase}"}`);
    expect(reporter.summaries.join('\n')).toContain('1 of 2 URLs passed');
  });

  it('reports probe_ssl_earliest_cert_expiry for HTTPS', async () => {
    const s = await track(serve((_q, res) => json(res, 200, {}), pki.shortLived));
    const file = join(dir, 'tls.prom');
    await probe({
      url: `https://localhost:${s.port}/`,
      'tls-ca': pki.caPath,
      'prometheus-file': file,
      'preferred-ip-protocol': 'ip4',
    });
    const m = /probe_ssl_earliest_cert_expiry\{[^}]+\} (\d+)/.exec(readFileSync(file, 'utf8'));
    expect(m).not.toBeNull();
    const days = (Number(m![1]) * 1000 - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(8);
    expect(days).toBeLessThan(11);
  });

  it('checks valid-http-versions', async () => {
    const s = await track(serve((_q, res) => json(res, 200, {})));
    const v11 = await probe({ url: s.origin, 'valid-http-versions': 'HTTP/1.1' });
    expect(v11.run.success).toBe(true);
    const v2 = await probe({ url: s.origin, 'valid-http-versions': 'HTTP/2' });
    expect(v2.run.success).toBe(false);
    expect(v2.run.results[0]!.reason).toBe('HTTP/1.1 is not in HTTP/2.0 (valid-http-versions)');
  });

  it('prefers the asked IP protocol and falls back to the other', async () => {
    const s = await track(serve((_q, res) => json(res, 200, {})));
    const v4 = await probe({ url: `http://localhost:${s.port}/`, 'preferred-ip-protocol': 'ip4' });
    expect(v4.run.results[0]!.last.ip).toBe('127.0.0.1');
    // The server listens on 127.0.0.1 only. Where localhost has no IPv6 address, a preference for ip6 falls back to
    // IPv4; where it has ::1, the probe connects there and is refused, as blackbox is.
    const hasV6 = (await lookup('localhost', { all: true })).some((a) => a.family === 6);
    const v6 = await probe({ url: `http://localhost:${s.port}/`, 'preferred-ip-protocol': 'ip6' });
    expect(v6.run.success).toBe(!hasV6);
    if (!hasV6) expect(v6.run.results[0]!.last.ip).toBe('127.0.0.1');
    else expect(v6.run.results[0]!.reason).toContain('connection refused');
  });
});
