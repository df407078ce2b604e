/**
 * build-push's source (not the bundle) under @github/local-action, which stubs @actions/core and runs the exported
 * `run()` of actions/build-push/run.ts, against the lab registry. Where the tool comes from: ./local-action.ts.
 * It needs Node 22 or 24; the test puts tools/node24 first on PATH.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lab, uniqueName } from '../support/lab.js';
import { localActionDir, runLocalAction } from './local-action.js';

const pkg = localActionDir();

describe.skipIf(!pkg)('build-push source under @github/local-action', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dyce-local-action-bp-'));
    mkdirSync(join(dir, 'app'));
    writeFileSync(
      join(dir, 'app', 'Dockerfile'),
      `FROM dyce-lab/base:latest\nRUN --mount=type=secret,id=token test -s /run/secrets/token && echo ${uniqueName('n')} > /n\n`,
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs actions/build-push/run.ts with inputs from a dotenv file, and pushes', async () => {
    const env = lab();
    const summary = join(dir, 'summary.md');
    writeFileSync(summary, '');
    const image = `${env.registry.url}/local-action/${uniqueName('app')}`;
    const dotenv = join(dir, 'action.env');
    writeFileSync(
      dotenv,
      [
        `GITHUB_STEP_SUMMARY=${summary}`,
        `DOCKER_HOST=${env.runner.dockerHost}`,
        `INPUT_CONTEXT=${join(dir, 'app')}`,
        `INPUT_IMAGE=${image}`,
        'INPUT_TAGS=v1',
        `INPUT_REGISTRY-USERNAME=${env.registry.username}`,
        `INPUT_REGISTRY-PASSWORD=${env.registry.password}`,
        'INPUT_SECRETS=token=planted-local-action-secret',
        '',
      ].join('\n'),
    );
    const out = await runLocalAction(pkg!, 'build-push', dotenv, 150_000);
    expect(out).toContain('::set-output name=success::true');
    expect(out).toMatch(/::set-output name=digest::sha256:[0-9a-f]{64}/);
    expect(out).toContain(`::set-output name=tags::${image}:v1`);
    expect(readFileSync(summary, 'utf8')).toContain('| build secrets | `token` |');
    expect(out).not.toContain('planted-local-action-secret');
    expect(out).not.toContain(env.registry.password);
  }, 180_000);
});
