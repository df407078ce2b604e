import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { describeLoad, runLoad, startLoad } from '../support/load.js';

// The load generator must be able to see failures, or a zero-failure test proves nothing.
let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

function app(version: () => string, failEvery = 0): Promise<number> {
  let n = 0;
  server = createServer((req, res) => {
    n++;
    if (failEvery && n % failEvery === 0) return void res.writeHead(502).end('bad gateway');
    if (req.url === '/version') return void res.end(version());
    if (req.url?.startsWith('/sleep')) return void setTimeout(() => res.end('slept'), 50);
    let body = '';
    req.on('data', (d) => (body += d)).on('end', () => res.end(body));
  });
  return new Promise((r) => server!.listen(0, '127.0.0.1', () => r((server!.address() as { port: number }).port)));
}

describe('load generator', () => {
  it('sends the mix at the rate, each on a new connection, and records the versions in order', async () => {
    let v = 'v1';
    const port = await app(() => v);
    const connections = new Set<unknown>();
    server!.on('connection', (s) => connections.add(s));
    setTimeout(() => (v = 'v2'), 250);
    const r = await runLoad({ port, rate: 100, durationMs: 500, sleepMs: 50 });
    expect(r.failed).toBe(0);
    // Bounded: never more than rate × duration.
    expect(r.sent).toBeGreaterThan(0);
    expect(r.sent).toBeLessThanOrEqual(50);
    expect(r.byKind.echo).toBe(Math.ceil(r.sent / 10));
    expect(connections.size).toBe(r.sent);
    expect(r.versions).toEqual(['v1', 'v2']);
    expect(describeLoad(r)).toMatch(/0 failed; versions: v1×\d+ v2×\d+/);
  });

  it('counts failures by reason: statuses and refused connections', async () => {
    const port = await app(() => 'v1', 7);
    const r = await runLoad({ port, rate: 100, durationMs: 300, sleepMs: 10 });
    expect(r.failures['status 502']).toBeGreaterThan(0);
    expect(r.failed).toBe(r.failures['status 502']);
    server!.close();
    server = undefined;
    const refused = await runLoad({ port, rate: 50, durationMs: 100 });
    expect(refused.failures.ECONNREFUSED).toBe(refused.sent);
  });

  it('stops on demand and refuses anything but the loopback', async () => {
    const port = await app(() => 'v1');
    const load = startLoad({ port, rate: 100, durationMs: 60_000 });
    await new Promise((r) => setTimeout(r, 100));
    const r = await load.stop();
    // The full duration would have sent 6000.
    expect(r.sent).toBeLessThan(6000);
    expect(() => startLoad({ host: '10.0.0.1', port, durationMs: 10 })).toThrow(/loopback/);
  });
});
