/**
 * The probe's source (not the bundle) under @github/local-action, which stubs @actions/core and runs the exported
 * `run()` of actions/probe/run.ts. The tool is kept out of the project's dependencies, in its own prefix like Node 24:
 * `npm install --prefix tools/local-action` (or point DYCE_LOCAL_ACTION at an installed package directory).
 * It needs Node 22 or 24; the test puts tools/node24 first on PATH.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localActionDir, runLocalAction } from './local-action.js';

const pkg = localActionDir();

describe.skipIf(!pkg)('probe source under @github/local-action', () => {
  let server: http.Server;
  let origin: string;
  let dir: string;
  const auth: Array<string | undefined> = [];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dyce-local-action-'));
    server = http.createServer((req, res) => {
      auth.push(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"UP"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs actions/probe/run.ts with inputs from a dotenv file', async () => {
    const summary = join(dir, 'summary.md');
    writeFileSync(summary, '');
    const env = join(dir, 'probe.env');
    writeFileSync(
      env,
      [
        `LOCAL_ACTION_WORKSPACE=${dir}`,
        `GITHUB_STEP_SUMMARY=${summary}`,
        `INPUT_URL=${origin}/health`,
        'INPUT_CONDITIONS=[BODY].status == UP',
        'INPUT_BEARER-TOKEN=planted-local-action-token',
        '',
      ].join('\n'),
    );
    const out = await runLocalAction(pkg!, 'probe', env, 120_000);
    expect(out).toContain('::set-output name=success::true');
    expect(out).toContain('::set-output name=status-code::200');
    expect(readFileSync(summary, 'utf8')).toContain(`#### ${origin}/health`);
    expect(auth).toEqual(['Bearer planted-local-action-token']);
    expect(out).not.toContain('planted-local-action-token');
  }, 150_000);
});
