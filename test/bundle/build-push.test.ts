import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLocal } from '../../src/remote/local.js';
import { lab, uniqueName } from '../support/lab.js';
import { findSecret } from '../support/leaks.js';
import { type CopiedAction, copyAction, node24, runAction } from './runner-protocol.js';

/**
 * The committed bundle of build-push, run the way the runner runs it (Node 24, the action folder alone, INPUT_*,
 * file commands, then the post step with STATE_*), against the lab registry and the runner's dockerd.
 */
const env = lab();
let action: CopiedAction;
let ctx: string;
const dockerEnv = { DOCKER_HOST: env.runner.dockerHost };

beforeAll(() => {
  action = copyAction('build-push');
  ctx = join(action.workspace, 'app');
  mkdirSync(join(ctx, 'api'), { recursive: true });
  writeFileSync(join(ctx, 'api', 'app.py'), 'print("melton")\n');
  writeFileSync(
    join(ctx, 'Dockerfile'),
    `FROM dyce-lab/base:latest\nRUN echo ${uniqueName('nonce')} > /nonce\nADD . /code\nRUN --mount=type=secret,id=token test -s /run/secrets/token\n`,
  );
});
afterAll(() => action.cleanup());

describe('build-push bundle under Node 24 with the runner protocol', () => {
  it('declares node24 with a post step that always runs', () => {
    expect(action.yml.runs).toMatchObject({
      using: 'node24',
      main: 'dist/index.js',
      post: 'dist/index.js',
      'post-if': 'always()',
    });
  });

  it("builds Melton's way and the BuildKit way, pushes, writes outputs and summary, and the post step cleans up", async () => {
    const token = `bundle-${uniqueName('token')}-$(x)"'\\`;
    const dbPassword = `bundle-${uniqueName('db')}`;
    const image = `${env.registry.url}/bundle/${uniqueName('app')}`;
    const { main, post } = await runAction(action, {
      inputs: {
        context: 'app',
        image,
        'registry-username': env.registry.username,
        'registry-password': env.registry.password,
        'env-file': 'api/.env',
        'env-file-secrets': `DB_PASSWORD=${dbPassword}`,
        secrets: `token=${token}`,
        'semver-tags': 'true',
      },
      env: { ...dockerEnv, GITHUB_REF: 'refs/tags/v2.3.4', GITHUB_SHA: 'feedface00112233', GITHUB_EVENT_NAME: 'push' },
      timeoutMs: 120_000,
    });
    expect(main.errors).toEqual([]);
    expect(main.code).toBe(0);
    expect(main.outputs).toMatchObject({ success: 'true', image, version: 'v2.3.4' });
    expect(main.outputs.tags!.split('\n')).toEqual(
      ['v2.3.4', '2.3.4', '2.3', '2', 'sha-feedfac'].map((t) => `${image}:${t}`),
    );
    expect(main.outputs.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(JSON.parse(main.outputs.metadata!)).toMatchObject({ pushed: true, secrets: ['token'] });
    // One warning, as a ::warning:: annotation: Melton's env file is readable from the image.
    expect(main.warnings).toHaveLength(1);
    expect(main.warnings[0]).toContain('anyone who can pull it can read them');
    expect(existsSync(join(ctx, 'api', '.env'))).toBe(false);
    expect(main.summary).toContain('| build secrets | `token` |');
    // The secrets were registered with the runner first; beyond ::add-mask:: they appear nowhere.
    const lines = main.stdout.split('\n');
    expect(lines[0]).toMatch(/^::add-mask::/);
    const shown = lines.filter((l) => !l.startsWith('::add-mask::')).join('\n') + main.stderr;
    for (const s of [token, dbPassword, env.registry.password]) {
      expect(findSecret(main.stdout, s)).not.toEqual([]);
      expect(findSecret(shown, s)).toEqual([]);
      expect(findSecret(main.summary, s)).toEqual([]);
    }
    // State for the post step; the post step runs with STATE_* and leaves nothing behind.
    const state = JSON.parse(main.state.cleanup!) as { paths: string[]; dockerConfig?: string };
    expect(state.paths).toEqual([]);
    expect(post).toBeDefined();
    expect(post!.code).toBe(0);
    expect(post!.warnings).toEqual([]);
    expect(readdir(join(action.workspace, '.runner-temp')).filter((n) => n.startsWith('dyce-'))).toEqual([]);
  });

  it('the post step undoes what a killed main step left: logs out and removes the temp files', async () => {
    const temp = join(action.workspace, '.runner-temp');
    const config = join(temp, 'dyce-docker-config-left');
    const secrets = join(temp, 'dyce-secrets-left');
    mkdirSync(config, { recursive: true });
    mkdirSync(secrets, { recursive: true });
    writeFileSync(join(secrets, 'secret-0'), 'x', { mode: 0o600 });
    writeFileSync(join(config, 'config.json'), JSON.stringify({ auths: { [env.registry.url]: { auth: 'eDp4' } } }));
    // What main saved before it was killed, handed to the post step as the runner does: STATE_<name>.
    const state = { dockerConfig: config, registry: env.registry.url, docker: env.dockerBin, paths: [secrets] };
    const post = await runNode24(join(action.dir, action.yml.runs.post!), {
      ...dockerEnv,
      STATE_isPost: 'true',
      STATE_cleanup: JSON.stringify(state),
    });
    expect(post.stderr).toBe('');
    expect(post.code).toBe(0);
    expect(post.stdout).not.toContain('::warning');
    expect(existsSync(config)).toBe(false);
    expect(existsSync(secrets)).toBe(false);
  });

  it('a failing main step still writes success=false, and its post step passes', async () => {
    const { main, post } = await runAction(action, {
      inputs: { image: 'a/b', context: 'nope', tags: 'v1' },
      env: dockerEnv,
    });
    expect(main.code).toBe(1);
    expect(main.outputs).toMatchObject({ success: 'false', image: 'a/b', version: 'v1', digest: '' });
    expect(main.errors.join('\n')).toContain('input "context"');
    expect(post!.code).toBe(0);
  });
});

function runNode24(
  script: string,
  extra: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runLocal([node24(), script], {
    cwd: action.workspace,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', GITHUB_ACTIONS: 'true', ...extra },
  });
}

function readdir(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}
