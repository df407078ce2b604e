/**
 * The CLI as a user runs it: the esbuild bundle behind bin/dyce.js, in a child process.
 * A bundling mistake (a missing shim, a dependency left out) shows here and nowhere else.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runLocal } from '../../src/remote/local.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dyce = (...args: string[]) =>
  runLocal([process.execPath, `${root}bin/dyce.js`, ...args], { env: { ...process.env, DYCE_REGISTRY_PASSWORD: '' } });

beforeAll(() => {
  execFileSync(process.execPath, [`${root}node_modules/tsx/dist/cli.mjs`, `${root}scripts/build.ts`, '--cli'], {
    stdio: 'inherit',
  });
}, 60_000);

describe('dyce CLI bundle', () => {
  it.each(['build', 'deploy', 'plan', 'rollback', 'probe', 'play'])(
    'dyce %s --help prints usage and exits 0',
    async (cmd) => {
      const r = await dyce(cmd, '--help');
      expect(r.stderr).not.toMatch(/internal error|ReferenceError|TypeError|at .*\.js:\d+/);
      expect(r.code).toBe(0);
      expect(r.stdout + r.stderr).toMatch(/usage/i);
    },
  );

  it('prints the command list for dyce --help', async () => {
    const r = await dyce('--help');
    expect(r.code).toBe(0);
    for (const c of ['lab up', 'build', 'deploy', 'plan', 'probe', 'play']) expect(r.stdout).toContain(`dyce ${c}`);
  });

  it('refuses a secret given as a flag value, without a stack trace and without echoing it', async () => {
    const r = await dyce(
      'deploy',
      '--registry-password',
      'planted-secret-9f3',
      '--image',
      'x:1',
      '--name',
      'web',
      '--hosts',
      'a ansible_host=127.0.0.1',
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--registry-password is a secret and cannot be given on the command line');
    expect(r.stderr + r.stdout).not.toContain('planted-secret-9f3');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('answers an unknown command with usage and exit 2', async () => {
    const r = await dyce('deploi');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "deploi"');
  });
});
