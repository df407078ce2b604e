/**
 * The decisions build-push makes when buildx is the builder, with a scripted docker runner standing in for a buildx
 * client (the lab's machines have none: Debian 12 ships no buildx). What runs is recorded and judged: which outputs
 * buildx is asked for, when it pushes itself, and that its metadata file reaches the `metadata` output.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildPush } from '../../../src/build/build-push.js';
import type { DockerCommand } from '../../../src/build/commands.js';
import type { DockerRunner } from '../../../src/build/docker.js';
import { buildPushRules, buildPushSpec } from '../../../src/config/actions/build-push.js';
import { parseInputs, type RawInputs } from '../../../src/config/input-spec.js';
import { RecordingReporter } from '../../../src/github/reporter.js';
import type { ExecResult } from '../../../src/remote/executor.js';

const dir = mkdtempSync(join(tmpdir(), 'dyce-buildx-flow-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ctx = join(dir, 'ctx');
mkdirSync(ctx);
writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\n');
const DIGEST = `sha256:${'d'.repeat(64)}`;
const IID = `sha256:${'1'.repeat(64)}`;

/** Answers like a docker client with buildx: writes --iidfile and --metadata-file as buildx does. */
class BuildxRunner implements DockerRunner {
  readonly calls: string[][] = [];
  async run(cmd: DockerCommand): Promise<ExecResult> {
    const a = cmd.argv.slice(1);
    this.calls.push(a);
    const ok = (stdout = '') => ({ code: 0, stdout, stderr: '' });
    if (a[0] === 'version') return ok('linux 28.2.2');
    if (a[0] === 'buildx' && a[1] === 'version') return ok('github.com/docker/buildx v0.20.0');
    if (a[0] === 'build' && a[1] === '--help') return ok('');
    if (a[0] === 'buildx' && a[1] === 'build') {
      const at = (flag: string) => a[a.indexOf(flag) + 1]!;
      await writeFile(at('--iidfile'), IID);
      const meta: Record<string, unknown> = { 'containerimage.config.digest': IID, 'buildx.build.ref': 'b/b/x' };
      if (a.includes('--push'))
        Object.assign(meta, {
          'containerimage.digest': DIGEST,
          'image.name': a.filter((_, i) => a[i - 1] === '--tag').join(','),
        });
      await writeFile(at('--metadata-file'), JSON.stringify(meta));
      return ok();
    }
    if (a[0] === 'image' && a[1] === 'inspect')
      return ok(JSON.stringify([{ Size: 10, RepoDigests: [`r.io/app@${DIGEST}`] }]));
    if (a[0] === 'push') return ok(`v1: digest: ${DIGEST} size: 1`);
    return { code: 1, stdout: '', stderr: `unexpected ${a.join(' ')}` };
  }
}

async function run(raw: RawInputs) {
  const runner = new BuildxRunner();
  const reporter = new RecordingReporter();
  const inputs = parseInputs(
    buildPushSpec,
    { context: ctx, image: 'r.io/app', tags: 'v1', 'docker-path': '/usr/bin/docker', ...raw },
    buildPushRules,
  );
  const result = await buildPush(inputs, { reporter, env: {}, runner, tempRoot: dir });
  const build = runner.calls.find((c) => c[0] === 'buildx' && c[1] === 'build')!;
  const pushes = runner.calls.filter((c) => c[0] === 'push').map((c) => c[1]);
  return { result, reporter, build, pushes, metadata: JSON.parse(reporter.outputs.metadata!) };
}

describe('build-push with buildx', () => {
  it('by default loads, pushes with docker push, and puts buildx metadata beside its own in `metadata`', async () => {
    const r = await run({});
    expect(r.build).toContain('--load');
    expect(r.build).not.toContain('--push');
    expect(r.pushes).toEqual(['r.io/app:v1']);
    expect(r.reporter.outputs.imageid).toBe(IID);
    expect(r.metadata).toMatchObject({
      'containerimage.config.digest': IID,
      'buildx.build.ref': 'b/b/x',
      image: 'r.io/app',
      digest: DIGEST,
    });
  });

  it('load: false pushes from the builder, no docker push; the digest comes from buildx metadata', async () => {
    const r = await run({ load: 'false' });
    expect(r.build).toContain('--push');
    expect(r.build).not.toContain('--load');
    expect(r.pushes).toEqual([]);
    expect(r.result.digest).toBe(DIGEST);
    expect(r.metadata).toMatchObject({ 'containerimage.digest': DIGEST, 'image.name': 'r.io/app:v1', pushed: true });
  });

  it('provenance and sbom go to buildx as given, and the image is pushed from the builder to keep them', async () => {
    const r = await run({ provenance: 'mode=max', sbom: 'true', 'no-cache': 'true', pull: 'true' });
    expect(r.build).toEqual(
      expect.arrayContaining(['--provenance=mode=max', '--sbom=true', '--push', '--no-cache', '--pull']),
    );
    expect(r.build).not.toContain('--load');
    expect(r.pushes).toEqual([]);
  });

  it('secret-files go to buildx as --secret with the file itself; a missing file is refused before any docker command', async () => {
    const file = join(dir, 'token.txt');
    writeFileSync(file, 'not read by dyce');
    const r = await run({ 'secret-files': `tok=${file}` });
    expect(r.build.join(' ')).toContain(`--secret id=tok,src=${file}`);
    const runner = new BuildxRunner();
    const inputs = parseInputs(
      buildPushSpec,
      { context: ctx, image: 'r.io/app', tags: 'v1', 'secret-files': `tok=${join(dir, 'nope')}` },
      buildPushRules,
    );
    await expect(
      buildPush(inputs, { reporter: new RecordingReporter(), env: {}, runner, tempRoot: dir }),
    ).rejects.toThrow(/secret-files.*no file at/s);
    expect(runner.calls).toEqual([]);
  });
});
