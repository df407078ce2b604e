import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CopiedAction, copyAction, runAction } from './runner-protocol.js';

/** The committed bundle of the probe action, run the way the runner runs it, against a local server. */
let action: CopiedAction;
let server: http.Server;
let origin: string;
const seen: http.IncomingHttpHeaders[] = [];

beforeAll(async () => {
  action = copyAction('probe');
  server = http.createServer((req, res) => {
    seen.push(req.headers);
    const ok = req.url === '/health';
    res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: ok ? 'UP' : 'DOWN' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  action.cleanup();
});

describe('probe bundle under Node 24 with the runner protocol', () => {
  it('declares node24 and runs dist/index.js from the action folder alone', () => {
    expect(action.yml.runs).toMatchObject({ using: 'node24', main: 'dist/index.js' });
  });

  it('passes, writing outputs, the job summary and masking the secret', async () => {
    const { main } = await runAction(action, {
      inputs: {
        url: `${origin}/health`,
        conditions: '[BODY].status == UP\n[STATUS] == 200',
        'bearer-token': 'planted-bundle-token',
      },
    });
    expect(main.stderr).toBe('');
    expect(main.code).toBe(0);
    expect(main.outputs).toMatchObject({ success: 'true', 'status-code': '200', 'cert-expiry': '' });
    expect(main.outputs['duration-ms']).toMatch(/^\d+$/);
    const results = JSON.parse(main.outputs.results!);
    expect(results[0]).toMatchObject({ url: `${origin}/health`, success: true, status: 200 });
    expect(main.summary).toContain(`#### ${origin}/health`);
    expect(main.summary).toContain('✅ passed');
    expect(seen.at(-1)!.authorization).toBe('Bearer planted-bundle-token');
    // The runner learns the secret from ::add-mask:: before anything else is printed; nowhere else does it appear.
    const lines = main.stdout.split('\n');
    const mask = lines.indexOf('::add-mask::planted-bundle-token');
    expect(mask).toBe(0);
    const leaks = lines.filter((l) => l.includes('planted-bundle-token'));
    expect(leaks.length).toBeGreaterThan(0);
    expect(leaks.every((l) => l === '::add-mask::planted-bundle-token')).toBe(true);
  }, 60_000);

  it('fails with outputs written and a ::error:: line', async () => {
    const { main } = await runAction(action, { inputs: { url: `${origin}/down`, attempts: '2', interval: '50ms' } });
    expect(main.code).toBe(1);
    expect(main.outputs).toMatchObject({ success: 'false', 'status-code': '503' });
    expect(main.errors.join('\n')).toContain('probe failed: 1 of 1 URL');
    expect(main.stdout).toContain('attempt 1/2 failed');
    expect(main.summary).toContain('❌ failed');
  }, 60_000);

  it('refuses bad input before any request, naming the input', async () => {
    const before = seen.length;
    const { main } = await runAction(action, { inputs: { url: `${origin}/health`, 'valid-status-codes': '200-1xx' } });
    expect(main.code).toBe(1);
    expect(main.outputs.success).toBe('false');
    expect(main.errors.join('\n')).toContain('input "valid-status-codes"');
    expect(seen.length).toBe(before);
  }, 60_000);

  it("bundles Go's regexp dialect (re2js): (?i) works and a lookahead is refused, naming the construct", async () => {
    const ok = await runAction(action, {
      inputs: { url: `${origin}/health`, 'fail-if-body-not-matches': '(?i)"STATUS":\\s*"up"' },
    });
    expect(ok.main.code).toBe(0);
    const bad = await runAction(action, { inputs: { url: `${origin}/health`, 'fail-if-body-matches': 'a(?=b)' } });
    expect(bad.main.code).toBe(1);
    expect(bad.main.errors.join('\n')).toContain('input "fail-if-body-matches"');
    expect(bad.main.errors.join('\n')).toContain('lookaheads do not exist in RE2');
  }, 60_000);
});
