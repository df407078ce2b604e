import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runLocal } from '../../src/remote/local.js';
import { DOCKER_BIN, lab, tempDir, uniqueName } from '../support/lab.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/**
 * A fresh machine, reproduced in a private mount namespace: Debian's docker client is not installed yet (an overlay
 * whites out /usr/bin/docker) when the lab module loads, and a stand-in for a 28.x client without buildx is first on
 * PATH. Then the package step "installs" docker.io (the overlay goes away) and the lab runs a BuildKit build the way
 * `lab up` builds its images. The child prints what it saw as one JSON line.
 */
const CHILD = `
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
const [labModule, dockerHost, context, tag] = process.argv.slice(2);
const out = { hiddenAtLoad: !existsSync('/usr/bin/docker') };
const lab = await import(labModule);
try { lab.labDockerBin(); out.early = 'no error'; } catch (e) { out.early = String(e.message); }
const viaPath = spawnSync('docker', ['-H', dockerHost, 'build', '-q', context], { env: { ...process.env, DOCKER_BUILDKIT: '1' }, encoding: 'utf8' });
out.viaPath = { code: viaPath.status, stderr: viaPath.stderr };
execFileSync('umount', ['--lazy', '/usr/bin']); // node itself runs from the overlay
const argv = lab.labDocker(dockerHost, 'build', '-q', '-t', tag, context);
const r = spawnSync(argv[0], argv.slice(1), { env: { ...process.env, DOCKER_BUILDKIT: '1' }, encoding: 'utf8' });
out.bin = argv[0];
out.build = { code: r.status, stderr: r.stderr };
console.log(JSON.stringify(out));
`;

describe('lab: the first run on a fresh machine', () => {
  it('picks the docker client after the packages are installed, not when the module loads', async () => {
    const env = lab();
    const dir = tempDir('dyce-first-run-');
    // The overlay that hides docker.io's client: a whiteout (char device 0:0) named docker over /usr/bin.
    const upper = join(dir, 'upper');
    const work = join(dir, 'work');
    mkdirSync(upper);
    mkdirSync(work);
    expect((await runLocal(['mknod', join(upper, 'docker'), 'c', '0', '0'])).code).toBe(0);
    // A stand-in for a docker 28.x client without the buildx plugin, first on PATH.
    const standIn = join(dir, 'bin');
    mkdirSync(standIn);
    writeFileSync(
      join(standIn, 'docker'),
      '#!/bin/sh\necho "ERROR: BuildKit is enabled but the buildx component is missing or broken." >&2\nexit 1\n',
      { mode: 0o755 },
    );
    const context = join(dir, 'context');
    mkdirSync(context);
    writeFileSync(join(context, 'Dockerfile'), `FROM ${env.baseImage}\nRUN echo first-run > /first-run\n`);
    writeFileSync(join(dir, 'child.mjs'), CHILD);
    const tag = `dyce-first-run:${uniqueName('t')}`;
    const script = [
      'set -e',
      `mount -t overlay overlay -o lowerdir=/usr/bin,upperdir=${upper},workdir=${work} /usr/bin`,
      `exec node --import tsx ${join(dir, 'child.mjs')} "$@"`,
    ].join('\n');
    try {
      const r = await runLocal(
        [
          'unshare',
          '--mount',
          '--propagation',
          'private',
          'sh',
          '-c',
          script,
          'sh',
          join(repoRoot, 'src/lab/lab.ts'),
          env.runner.dockerHost,
          context,
          tag,
        ],
        {
          env: { ...process.env, PATH: `${standIn}:${process.env.PATH}`, NODE_PATH: join(repoRoot, 'node_modules') },
          cwd: repoRoot,
        },
      );
      expect(r.stderr).not.toMatch(/Error|error/);
      expect(r.code).toBe(0);
      const seen = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
      // The situation is real: no Debian client when the module loaded, and the stand-in wins on PATH.
      expect(seen.hiddenAtLoad).toBe(true);
      expect(seen.viaPath.code).not.toBe(0);
      expect(seen.viaPath.stderr).toContain('buildx component is missing');
      // Asked too early, the lab says what to do instead of guessing a client.
      expect(seen.early).toContain('dyce lab up');
      // After the package step, the lab's builds use Debian's client and succeed.
      expect(seen.bin).toBe('/usr/bin/docker');
      expect(seen.build).toEqual({ code: 0, stderr: '' });
      const inspect = await runLocal([DOCKER_BIN, '-H', env.runner.dockerHost, 'image', 'inspect', tag]);
      expect(inspect.code).toBe(0);
    } finally {
      await runLocal([DOCKER_BIN, '-H', env.runner.dockerHost, 'rmi', '-f', tag]);
      await runLocal(['rm', '-rf', dir]);
    }
  });
});
