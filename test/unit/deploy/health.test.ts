import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkOnce,
  type Dial,
  describeCheck,
  dialerFor,
  isValidHealthPath,
  waitHealthy,
} from '../../../src/deploy/health.js';
import { LocalExecutor } from '../../../src/remote/local.js';

// Real loopback servers; the dialer is the one a local host (ansible_connection=local) gets.
const dial: Dial = dialerFor(new LocalExecutor('local'));
const servers: (Server | HttpServer)[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

function listen<S extends Server | HttpServer>(s: S): Promise<number> {
  servers.push(s);
  s.on('connection', (c: Socket) => sockets.push(c));
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as { port: number }).port)));
}

function http(handler: (path: string) => [number, string]): Promise<number> {
  return listen(
    createHttpServer((req, res) => {
      const [status, body] = handler(req.url ?? '');
      res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
    }),
  );
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  const port = await new Promise<number>((r) =>
    s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)),
  );
  await new Promise((r) => s.close(r));
  return port;
}

const gate = { path: '/health', timeoutMs: 500, intervalMs: 50, deadlineMs: 2000 };

describe('checkOnce', () => {
  it('a 200 passes and carries status and body; the request asks for the path', async () => {
    const seen: string[] = [];
    const port = await http((p) => {
      seen.push(p);
      return [200, 'ok v1'];
    });
    const c = await checkOnce(dial, port, '/health?x=1', 1000);
    expect(c).toMatchObject({ ok: true, status: 200, body: 'ok v1' });
    expect(seen).toEqual(['/health?x=1']);
  });

  it('a 503 fails with what it saw', async () => {
    const port = await http(() => [503, 'unhealthy never-healthy']);
    const c = await checkOnce(dial, port, '/health', 1000);
    expect(c).toMatchObject({ ok: false, status: 503, body: 'unhealthy never-healthy' });
    expect(describeCheck(c)).toBe('HTTP 503: "unhealthy never-healthy"');
  });

  it('a chunked body is decoded; a long body is cut to an excerpt', async () => {
    const port = await listen(
      createHttpServer((_req, res) => {
        res.writeHead(200);
        res.write('ok ');
        res.end('x'.repeat(1000));
      }),
    );
    const c = await checkOnce(dial, port, '/health', 1000);
    expect(c.ok).toBe(true);
    expect(c.body).toBe(`ok ${'x'.repeat(197)}`);
  });

  it('a refused connection, an accept-then-close and a silent listener each say what happened', async () => {
    const refused = await checkOnce(dial, await closedPort(), '/health', 1000);
    expect(refused).toMatchObject({ ok: false });
    expect(refused.error).toMatch(/refused/);

    const closer = await listen(createServer((s) => s.end()));
    const closed = await checkOnce(dial, closer, '/health', 1000);
    expect(closed.error).toMatch(/closed without an answer/);

    const silent = await listen(createServer(() => {}));
    const timedOut = await checkOnce(dial, silent, '/health', 300);
    expect(timedOut.error).toMatch(/no answer within 300ms/);

    const garbage = await listen(createServer((s) => s.end('SSH-2.0-OpenSSH\r\n\r\n')));
    expect((await checkOnce(dial, garbage, '/health', 1000)).error).toMatch(/not an HTTP answer/);
  });

  it('refuses a path that could smuggle a second request', async () => {
    expect(isValidHealthPath('/health')).toBe(true);
    expect(isValidHealthPath('/health HTTP/1.1\r\nX: y')).toBe(false);
    expect(isValidHealthPath('health')).toBe(false);
    const c = await checkOnce(dial, 1, '/a b', 100);
    expect(c.error).toMatch(/invalid health path/);
  });

  it('a custom accept decides what is healthy', async () => {
    const port = await http(() => [301, '']);
    expect((await checkOnce(dial, port, '/', 1000)).ok).toBe(false);
    expect((await checkOnce(dial, port, '/', 1000, (s) => s < 400)).ok).toBe(true);
  });
});

describe('waitHealthy', () => {
  it('passes as soon as the app comes up (a slow start within the deadline)', async () => {
    const port = await closedPort();
    const checks: string[] = [];
    const later = new Promise<void>((resolve) =>
      setTimeout(() => {
        const s = createHttpServer((_q, r) => r.end('ok'));
        servers.push(s);
        s.listen(port, '127.0.0.1', () => resolve());
      }, 300),
    );
    const r = await waitHealthy(dial, port, { ...gate, onCheck: (c) => checks.push(describeCheck(c)) });
    await later;
    expect(r.healthy).toBe(true);
    expect(r.checks).toBeGreaterThan(1);
    expect(checks[0]).toMatch(/refused/);
    expect(checks.at(-1)).toBe('HTTP 200: "ok"');
  });

  it('gives up at the deadline with the last check for the message', async () => {
    const port = await http(() => [503, 'unhealthy']);
    const r = await waitHealthy(dial, port, { ...gate, deadlineMs: 400 });
    expect(r).toMatchObject({ healthy: false, cancelled: false, last: { status: 503 } });
    expect(r.checks).toBeGreaterThan(1);
  });

  it('the deadline bounds a check that hangs (each check is cut to what is left)', async () => {
    const silent = await listen(createServer(() => {}));
    const r = await waitHealthy(dial, silent, { ...gate, timeoutMs: 5000, deadlineMs: 300 });
    expect(r.healthy).toBe(false);
    expect(r.last?.error).toMatch(/no answer within/);
    expect(r.checks).toBe(1);
  });

  it('stops when the signal fires', async () => {
    const port = await http(() => [503, 'no']);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 150);
    const r = await waitHealthy(dial, port, { ...gate, deadlineMs: 10_000, signal: ac.signal });
    expect(r).toMatchObject({ healthy: false, cancelled: true });
  });
});

describe('waitHealthy keeps the informative check', () => {
  it('never ends on a check squeezed into the last milliseconds of the deadline', async () => {
    const port = await http(() => [503, 'unhealthy']);
    for (const deadlineMs of [120, 260, 410]) {
      const r = await waitHealthy(dial, port, { path: '/health', timeoutMs: 1000, intervalMs: 100, deadlineMs });
      expect(r.last?.status, `deadline ${deadlineMs}`).toBe(503);
    }
  });
});
