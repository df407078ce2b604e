import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type BuildPushResult, buildPush } from '../../src/build/build-push.js';
import { buildPushRules, buildPushSpec } from '../../src/config/actions/build-push.js';
import { parseInputs, type RawInputs } from '../../src/config/input-spec.js';
import { RecordingReporter } from '../../src/github/reporter.js';
import { runLocal } from '../../src/remote/local.js';
import { UserError } from '../../src/util/errors.js';
import { inputEnvName, parseFileCommands, repoRoot } from '../bundle/runner-protocol.js';
import { DOCKER_BIN, host, hostDocker, lab, tempDir, uniqueName } from '../support/lab.js';
import { findSecret } from '../support/leaks.js';

/**
 * build-push against the lab: the runner's dockerd, the authenticated registry on 127.0.0.1:5000, and a lab VPS's
 * own dockerd as a clean image store to pull back from. No mocks.
 */
const env = lab();
const vps1 = host(env);
const REG = env.registry.url;
const scratch = tempDir('dyce-build-push-');
const runnerEnv = { ...process.env, DOCKER_HOST: env.runner.dockerHost };
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** `dyce build ARGS` from the source, with the runner's Docker and EXTRA in the environment (secrets: DYCE_*). */
const dyceBuild = (args: string[], extra: Record<string, string> = {}) =>
  runLocal([process.execPath, '--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), 'build', ...args], {
    cwd: repoRoot,
    env: { ...runnerEnv, ...extra },
  });

/** A reporter that records, and lets a test react to a line (the proxy test arms itself on "pushing"). */
class Recorder extends RecordingReporter {
  onInfo: ((m: string) => void) | undefined;
  override info(message: string): void {
    this.onInfo?.(message);
    super.info(message);
  }
  get text(): string {
    return this.lines.join('\n');
  }
}

function context(name: string, dockerfile: string, files: Record<string, string> = {}): string {
  const dir = join(scratch, uniqueName(name));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'Dockerfile'), dockerfile);
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), content);
  }
  return dir;
}

const login = () => ({ 'registry-username': env.registry.username, 'registry-password': env.registry.password });

async function run(
  raw: RawInputs,
  opts: { reporter?: Recorder; retryBaseMs?: number; env?: Record<string, string> } = {},
): Promise<{ result?: BuildPushResult; error?: unknown; reporter: Recorder }> {
  const reporter = opts.reporter ?? new Recorder();
  try {
    const inputs = parseInputs(buildPushSpec, raw, buildPushRules);
    const result = await buildPush(inputs, {
      reporter,
      env: { ...runnerEnv, GITHUB_REF: '', GITHUB_SHA: '', ...(opts.env ?? {}) },
      tempRoot: scratch,
      ...(opts.retryBaseMs ? { retryBaseMs: opts.retryBaseMs } : {}),
    });
    return { result, reporter };
  } catch (error) {
    return { error, reporter };
  }
}

/** Tags of a repository in the lab registry (empty when the repository does not exist). */
async function registryTags(repository: string, registry = REG): Promise<string[]> {
  const path = repository.slice(repository.indexOf('/') + 1);
  const auth = Buffer.from(`${env.registry.username}:${env.registry.password}`).toString('base64');
  const r = await fetch(`http://${registry}/v2/${path}/tags/list`, { headers: { authorization: `Basic ${auth}` } });
  if (r.status === 404) return [];
  expect(r.status).toBe(200);
  return ((await r.json()) as { tags?: string[] | null }).tags ?? [];
}

/** The manifest digest a tag names in the lab registry. */
async function registryDigest(repository: string, tag: string): Promise<string | null> {
  const path = repository.slice(repository.indexOf('/') + 1);
  const auth = Buffer.from(`${env.registry.username}:${env.registry.password}`).toString('base64');
  const r = await fetch(`http://${REG}/v2/${path}/manifests/${tag}`, {
    method: 'HEAD',
    headers: {
      authorization: `Basic ${auth}`,
      accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json',
    },
  });
  return r.status === 200 ? r.headers.get('docker-content-digest') : null;
}

async function runnerDocker(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runLocal([DOCKER_BIN, ...args], { env: runnerEnv });
}

/** `docker save` of an image on the runner (or a host) to a file, read back as bytes. */
async function saved(image: string, on?: typeof vps1): Promise<Buffer> {
  const out = join(scratch, `${uniqueName('save')}.tar`);
  const r = on ? await hostDocker(on, ['save', '-o', out, image]) : await runnerDocker(['save', '-o', out, image]);
  expect(r.stderr).toBe('');
  const bytes = readFileSync(out);
  rmSync(out);
  return bytes;
}

describe("Melton's env-file build", () => {
  const djangoKey = `dj-${uniqueName('key')}-$(id)-"q"-\\x`;
  const dbPassword = `db-${uniqueName('pw')}`;
  const dockerfile = 'FROM dyce-lab/base:latest\nADD . /code\nCMD ["cat", "/code/api/.env"]\n';

  it('builds, pushes, pulls back by digest from a clean store, warns once, removes the file; the leak search finds the secret', async () => {
    const ctx = context('melton', dockerfile, { 'api/app.py': 'print("melton")\n' });
    const image = `${REG}/melton/${uniqueName('app-server')}`;
    // The runner's own docker config, which the action must leave as it was.
    const home = tempDir('dyce-home-');
    mkdirSync(join(home, '.docker'));
    writeFileSync(join(home, '.docker', 'config.json'), '{"auths":{}}\n');
    const { result, error, reporter } = await run(
      {
        context: ctx,
        image,
        ...login(),
        ref: 'refs/tags/v1.4.2',
        sha: 'c0ffee0123456789',
        'env-file': 'api/.env',
        'env-file-secrets': `DJANGO_SECRET_KEY=${djangoKey}\nDB_PASSWORD=${dbPassword}`,
      },
      { env: { HOME: home, DOCKER_CONFIG: '' } },
    );
    expect(error).toBeUndefined();
    expect(readdirSync(join(home, '.docker'))).toEqual(['config.json']);
    expect(readFileSync(join(home, '.docker', 'config.json'), 'utf8')).toBe('{"auths":{}}\n');
    rmSync(home, { recursive: true, force: true });
    expect(result).toMatchObject({ pushed: true, version: 'v1.4.2', tags: ['v1.4.2', 'sha-c0ffee0'] });
    expect(result!.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await registryTags(image)).toEqual(expect.arrayContaining(['v1.4.2', 'sha-c0ffee0']));
    expect(reporter.outputs).toMatchObject({ image, version: 'v1.4.2', digest: result!.digest });

    // One warning, saying the values are readable from the image.
    const warnings = reporter.lines.filter((l) => l.startsWith('warning:'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('anyone who can pull it can read them');
    // The file is gone; the directory it was written into stays (it was there before).
    expect(existsSync(join(ctx, 'api/.env'))).toBe(false);
    expect(existsSync(join(ctx, 'api/app.py'))).toBe(true);

    // Pull back by digest into vps1's dockerd, which has never seen this image.
    const cfg = tempDir('dyce-pull-config-');
    try {
      const byDigest = `${image}@${result!.digest}`;
      expect((await hostDocker(vps1, ['image', 'inspect', byDigest], { config: cfg })).code).not.toBe(0);
      const li = await hostDocker(vps1, ['login', '-u', env.registry.username, '--password-stdin', REG], {
        config: cfg,
        stdin: env.registry.password,
      });
      expect(li.code).toBe(0);
      const pull = await hostDocker(vps1, ['pull', byDigest], { config: cfg });
      expect(pull.stderr).toBe('');
      expect(pull.code).toBe(0);
      const cat = await hostDocker(vps1, ['run', '--rm', byDigest], { config: cfg });
      expect(cat.stdout).toBe(`DJANGO_SECRET_KEY=${djangoKey}\nDB_PASSWORD=${dbPassword}\n`);
      // The expected leak: the search finds both values in `docker save` of the pulled image. This proves the
      // search can fail; the BuildKit test below relies on it.
      const tar = await saved(byDigest, vps1);
      expect(findSecret(tar, djangoKey)).not.toEqual([]);
      expect(findSecret(tar, dbPassword)).not.toEqual([]);
      await hostDocker(vps1, ['rmi', byDigest], { config: cfg });
    } finally {
      rmSync(cfg, { recursive: true, force: true });
    }
  });

  it('removes the file when the build fails, and pushes nothing', async () => {
    const ctx = context('melton-fail', `${dockerfile}RUN test -f /code/api/.env && exit 3\n`, { 'api/app.py': '' });
    const image = `${REG}/melton/${uniqueName('broken')}`;
    const { error, reporter } = await run({
      context: ctx,
      image,
      ...login(),
      tags: 'v9',
      'env-file': 'api/.env',
      'env-file-secrets': `DB_PASSWORD=${dbPassword}`,
    });
    expect(error).toBeInstanceOf(UserError);
    expect(String((error as Error).message)).toContain('docker build failed');
    expect(reporter.text).toContain('exit code: 3');
    expect(existsSync(join(ctx, 'api/.env'))).toBe(false);
    expect(await registryTags(image)).toEqual([]);
    expect(reporter.outputs).toMatchObject({ image, version: 'v9', digest: '' });
  });

  it('creates a missing directory for the file and removes it with the file', async () => {
    const ctx = context('melton-dir', dockerfile);
    const { error } = await run({
      context: ctx,
      image: `${REG}/melton/${uniqueName('dir')}`,
      ...login(),
      tags: 'v1',
      push: 'false',
      'env-file': 'api/.env',
      'env-file-secrets': 'A=1',
    });
    expect(error).toBeUndefined();
    expect(existsSync(join(ctx, 'api'))).toBe(false);
  });
});

describe('BuildKit secret build', () => {
  const token = `tok-${uniqueName('s')}-$(echo pwned)-\`id\`-'single'-"double"-\\back\\slash\\n-%s`;
  const cert = `-----BEGIN DYCE TEST-----\n${uniqueName('line-one')}-AAAA\n  ${uniqueName('line-two')}==\n-----END DYCE TEST-----`;
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');

  it('the build reads the secrets; none of history, inspect, save, the action output or the summary holds them', async () => {
    // The search must first find a planted value, in the same kinds of bytes it is about to search.
    expect(findSecret(`x${token}y`, token)).not.toEqual([]);
    expect(findSecret(Buffer.from(`a\n${cert.split('\n')[1]}\n`), cert)).not.toEqual([]);

    const ctx = context(
      'secret',
      [
        'FROM dyce-lab/base:latest',
        // BuildKit does not key its cache on secret values: a fresh line keeps a layer of an earlier run from answering.
        `RUN echo ${uniqueName('nonce')} > /nonce`,
        'RUN --mount=type=secret,id=token --mount=type=secret,id=cert,required=true \\',
        '    sha256sum /run/secrets/token /run/secrets/cert | cut -d" " -f1 > /secrets.sha256 && cat /secrets.sha256',
        'CMD ["cat", "/secrets.sha256"]',
        '',
      ].join('\n'),
    );
    const image = `${REG}/secret/${uniqueName('app')}`;
    // Run the action's source the way the runner runs a JavaScript action: INPUT_* variables and file commands.
    const step = await runSource({
      context: ctx,
      image,
      ...login(),
      tags: 'v1',
      secrets: `token=${token}\ncert<<EOF\n${cert}\nEOF`,
    });
    expect(step.errors).toEqual([]);
    expect(step.code).toBe(0);
    expect(step.outputs.success).toBe('true');
    const digest = step.outputs.digest!;
    expect(digest).toMatch(/^sha256:/);
    expect(await registryTags(image)).toEqual(['v1']);

    // The build could read both values, byte for byte.
    const ran = await runnerDocker(['run', '--rm', `${image}:v1`]);
    expect(ran.stdout).toBe(`${sha(token)}\n${sha(cert)}\n`);

    const history = await runnerDocker(['history', '--no-trunc', `${image}:v1`]);
    const inspect = await runnerDocker(['inspect', `${image}:v1`]);
    expect(history.code).toBe(0);
    expect(inspect.code).toBe(0);
    const tar = await saved(`${image}:v1`);
    // ::add-mask:: lines are runner commands that the runner consumes and never shows; everything else is output.
    const output = `${step.stdout}\n${step.stderr}`
      .split('\n')
      .filter((l) => !l.startsWith('::add-mask::'))
      .join('\n');
    expect(step.stdout).toContain('::add-mask::');
    for (const secret of [token, cert]) {
      expect(findSecret(history.stdout, secret)).toEqual([]);
      expect(findSecret(inspect.stdout, secret)).toEqual([]);
      expect(findSecret(tar, secret)).toEqual([]);
      expect(findSecret(output, secret)).toEqual([]);
      expect(findSecret(step.summary, secret)).toEqual([]);
      expect(findSecret(JSON.stringify(step.outputs), secret)).toEqual([]);
    }
    // The summary names the secrets (names only) and shows image, tags, digest, size and build time.
    expect(step.summary).toContain('`token`, `cert`');
    expect(step.summary).toContain(digest);
    expect(step.summary).toMatch(/\| size \| [\d.]+ MiB \|/);
    expect(step.summary).toMatch(/\| build time \| [\d.]+s \|/);
    // The post step found nothing left to clean and did not fail.
    expect(step.post?.code).toBe(0);
    await runnerDocker(['rmi', `${image}:v1`]);
  });
});

describe('docker/* habits', () => {
  it("metadata-action's tags output (full references, capitals in the tags) is pushed exactly, case kept", async () => {
    const ctx = context('meta', `FROM dyce-lab/base:latest\nRUN echo ${uniqueName('n')} > /n\n`);
    const image = `${REG}/adopt/${uniqueName('meta')}`;
    // What docker/metadata-action writes to `tags` for `images: <image>` with type=ref,event=tag,
    // type=semver,pattern={{version}} and type=sha on the tag v1.0.0-RC1: one full reference per line.
    const tags = [`${image}:v1.0.0-RC1`, `${image}:1.0.0-RC1`, `${image}:sha-c0ffee0`];
    // The action's source as the runner runs it, with the git ref of that tag (no automatic tag may join them).
    const step = await runSource({
      context: ctx,
      image,
      ...login(),
      ref: 'refs/tags/v1.0.0-RC1',
      sha: 'c0ffee0123456789',
      tags: tags.join('\n'),
    });
    expect(step.errors).toEqual([]);
    expect(step.outputs.success).toBe('true');
    expect((await registryTags(image)).sort()).toEqual(['1.0.0-RC1', 'sha-c0ffee0', 'v1.0.0-RC1']);
    expect(step.outputs.tags!.split('\n')).toEqual(tags);
    expect(step.outputs.version).toBe('v1.0.0-RC1');
    expect(step.outputs.imageid).toMatch(/^sha256:[0-9a-f]{64}$/);
    // Every reference names the pushed manifest, the capitalised ones too.
    for (const t of ['v1.0.0-RC1', '1.0.0-RC1', 'sha-c0ffee0'])
      expect(await registryDigest(image, t)).toBe(step.outputs.digest);
  });

  it('the git tag v1.0.0-RC1 alone gives the tag v1.0.0-RC1, as github.ref_name says', async () => {
    const ctx = context('case', 'FROM dyce-lab/base:latest\n');
    const image = `${REG}/adopt/${uniqueName('case')}`;
    const { result, error } = await run({ context: ctx, image, ...login(), ref: 'refs/tags/v1.0.0-RC1' });
    expect(error).toBeUndefined();
    expect(result!.refs).toEqual([`${image}:v1.0.0-RC1`]);
    expect(await registryTags(image)).toEqual(['v1.0.0-RC1']);
  });

  it('secret-files and no-cache with BuildKit: the build reads the file, no layer holds it', async () => {
    const value = `file-${uniqueName('secret')}`;
    const file = join(scratch, uniqueName('secret-file'));
    writeFileSync(file, value, { mode: 0o600 });
    const ctx = context(
      'sfile',
      'FROM dyce-lab/base:latest\nRUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -d" " -f1 > /sha\nCMD ["cat", "/sha"]\n',
    );
    const image = `${REG}/adopt/${uniqueName('sfile')}`;
    const { result, error, reporter } = await run({
      context: ctx,
      image,
      ...login(),
      tags: 'v1',
      'secret-files': `tok=${file}`,
      'no-cache': 'true',
    });
    expect(error).toBeUndefined();
    // BuildKit's plain progress: `#N [2/2] RUN ...` then `#N CACHED` when the cache answered the step.
    const runCached = (text: string) => {
      const n = /^(#\d+) \[2\/2\] RUN/m.exec(text)?.[1];
      expect(n).toBeDefined();
      return text.split('\n').includes(`${n} CACHED`);
    };
    expect(runCached(reporter.text)).toBe(false);
    // The same build again without no-cache is answered by the cache: the check above can fail.
    const again = await run({ context: ctx, image, tags: 'v1', push: 'false', 'secret-files': `tok=${file}` });
    expect(again.error).toBeUndefined();
    expect(runCached(again.reporter.text)).toBe(true);
    const ran = await runnerDocker(['run', '--rm', `${image}:v1`]);
    expect(ran.stdout.trim()).toBe(createHash('sha256').update(value).digest('hex'));
    expect(findSecret(`x${value}y`, value)).not.toEqual([]);
    expect(findSecret(await saved(`${image}:v1`), value)).toEqual([]);
    expect(JSON.parse(reporter.outputs.metadata!)).toMatchObject({ secrets: ['tok'], imageId: result!.imageId });
    await runnerDocker(['rmi', `${image}:v1`]);
  });

  it('the old "builder" input is refused with a pointer to "builder-kind", and nothing is built', async () => {
    const ctx = context('old', 'FROM dyce-lab/base:latest\n');
    const image = `${REG}/adopt/${uniqueName('old')}`;
    const step = await runSource({ context: ctx, image, tags: 'v1', builder: 'buildx' });
    expect(step.outputs.success).toBe('false');
    expect(step.errors.join('\n')).toContain('input "builder" is now "builder-kind"');
    expect(await registryTags(image)).toEqual([]);
  });

  it('provenance with a builder that has no buildx: refused before building, saying what to install', async () => {
    const ctx = context('prov', 'FROM dyce-lab/base:latest\n');
    const image = `${REG}/adopt/${uniqueName('prov')}`;
    const { error } = await run({ context: ctx, image, tags: 'v1', provenance: 'mode=max' });
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toContain('"provenance" needs buildx');
    expect(await registryTags(image)).toEqual([]);
  });
});

describe('bad input: a clear error and nothing pushed', () => {
  const ok = 'FROM dyce-lab/base:latest\nRUN --mount=type=secret,id=s true\n';

  it('a wrong password: 401, not retried', async () => {
    const image = `${REG}/bad/${uniqueName('pw')}`;
    const { error, reporter } = await run({
      context: context('pw', ok),
      image,
      tags: 'v1',
      'registry-username': env.registry.username,
      'registry-password': 'not-the-password',
      secrets: 's=1',
    });
    expect(error).toBeInstanceOf(UserError);
    expect(String((error as Error).message)).toMatch(/refused the credentials \(401 unauthorized.*not retried/s);
    expect(reporter.text).not.toContain('retrying');
    expect(reporter.text).not.toContain('docker build');
    expect(await registryTags(image)).toEqual([]);
  });

  it.each([
    ['a missing context', (c: string) => ({ context: join(c, 'nope') }), 'input "context"'],
    ['a missing Dockerfile', (c: string) => ({ context: c, file: join(c, 'Dockerfile.prod') }), 'no Dockerfile at'],
    ['a malformed tag', (c: string) => ({ context: c, tags: 'v1,bad tag' }), 'input "tags": "bad tag"'],
    ['a malformed image', (c: string) => ({ context: c, image: `${REG}/Bad/Name` }), 'input "image"'],
    [
      'secrets with the classic builder',
      (c: string) => ({ context: c, 'builder-kind': 'classic', secrets: 's=1' }),
      'need a BuildKit builder',
    ],
    [
      'secrets with a docker client without BuildKit',
      (c: string) => ({ context: c, 'docker-path': '/usr/local/bin/docker', secrets: 's=1' }),
      'install the buildx plugin',
    ],
    [
      'BuildKit asked of a client that lacks it',
      (c: string) => ({ context: c, 'docker-path': '/usr/local/bin/docker', 'builder-kind': 'buildkit' }),
      'no docker client has it',
    ],
  ])('%s', async (_what, inputs, message) => {
    const ctx = context('bad', ok);
    const image = `${REG}/bad/${uniqueName('x')}`;
    const { error, reporter } = await run({ image, ...login(), tags: 'v1', ...inputs(ctx) });
    expect(error).toBeInstanceOf(UserError);
    expect(String((error as Error).message)).toContain(message);
    expect(reporter.text).not.toContain('logged in');
    expect(await registryTags(image)).toEqual([]);
  });

  it('a pre-existing file at env-file: refused, left as it was', async () => {
    const ctx = context('exists', 'FROM dyce-lab/base:latest\nADD . /code\n', { 'api/.env': 'MINE=keep\n' });
    const image = `${REG}/bad/${uniqueName('env')}`;
    const { error } = await run({
      context: ctx,
      image,
      ...login(),
      tags: 'v1',
      'env-file': 'api/.env',
      'env-file-secrets': 'A=1',
    });
    expect(String((error as Error).message)).toContain('already exists; refusing to overwrite it');
    expect(readFileSync(join(ctx, 'api/.env'), 'utf8')).toBe('MINE=keep\n');
    expect(await registryTags(image)).toEqual([]);
  });

  it('an env-file behind a symbolic link that leaves the context: refused', async () => {
    const outside = tempDir('dyce-outside-');
    const ctx = context('symlink', 'FROM dyce-lab/base:latest\nADD . /code\n');
    symlinkSync(outside, join(ctx, 'api'));
    const { error } = await run({
      context: ctx,
      image: `${REG}/bad/${uniqueName('sym')}`,
      tags: 'v1',
      'env-file': 'api/.env',
      'env-file-secrets': 'A=1',
    });
    expect(String((error as Error).message)).toContain('symbolic link that leaves the context');
    expect(readdirSync(outside)).toEqual([]);
    rmSync(outside, { recursive: true, force: true });
  });

  it('an env-file that .dockerignore excludes: refused before building', async () => {
    const ctx = context('ignored', 'FROM dyce-lab/base:latest\nADD . /code\n', { '.dockerignore': '.git\n**/.env\n' });
    const image = `${REG}/bad/${uniqueName('ign')}`;
    const { error, reporter } = await run({
      context: ctx,
      image,
      ...login(),
      tags: 'v1',
      'env-file': 'api/.env',
      'env-file-secrets': 'A=1',
    });
    expect(String((error as Error).message)).toMatch(/excluded from the build context by .*\.dockerignore:2/);
    expect(reporter.text).not.toContain('docker build');
    expect(existsSync(join(ctx, 'api'))).toBe(false);
    expect(await registryTags(image)).toEqual([]);
  });
});

describe('secret build args', () => {
  it('masked in the log (BuildKit prints expanded RUN lines), warned that the image history holds them', async () => {
    const value = `arg-${uniqueName('v')}-$(id)`;
    const ctx = context(
      'sba',
      `FROM dyce-lab/base:latest\nARG API_KEY\nRUN test -n "$API_KEY" && echo ${uniqueName('n')} > /ok\n`,
    );
    const image = `${REG}/sba/${uniqueName('app')}`;
    // Through the CLI, whose reporter masks registered values the way the runner does.
    const r = await dyceBuild([ctx, '--image', image, '--registry-username', env.registry.username, '--tags', 'v1'], {
      GITHUB_REF: '',
      GITHUB_SHA: '',
      DYCE_REGISTRY_PASSWORD: env.registry.password,
      DYCE_SECRET_BUILD_ARGS: `API_KEY=${value}`,
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('RUN test -n "***"');
    expect(findSecret(r.stdout + r.stderr, value)).toEqual([]);
    expect(r.stderr).toContain('recorded in the image history');
    // The expected leak, as warned: a build argument used by a RUN is in the history.
    const history = await runnerDocker(['history', '--no-trunc', `${image}:v1`]);
    expect(findSecret(history.stdout, value)).not.toEqual([]);
    await runnerDocker(['rmi', `${image}:v1`]);
  });
});

describe('dyce build', () => {
  it('builds and pushes from the CLI with secrets from the environment, never printing them', async () => {
    const token = `cli-${uniqueName('tok')}`;
    const ctx = context(
      'cli',
      `FROM dyce-lab/base:latest\nRUN --mount=type=secret,id=token test -s /run/secrets/token && echo ${uniqueName('n')} > /n\n`,
    );
    const image = `${REG}/cli/${uniqueName('app')}`;
    const r = await dyceBuild(
      [ctx, '--image', image, '--registry-username', env.registry.username, '--tags', 'v1', '--json'],
      { GITHUB_REF: '', GITHUB_SHA: '', DYCE_REGISTRY_PASSWORD: env.registry.password, DYCE_SECRETS: `token=${token}` },
    );
    expect(r.code).toBe(0);
    const meta = (
      JSON.parse(r.stdout) as { outputs: { metadata: { digest: string; pushed: boolean; secrets: string[] } } }
    ).outputs.metadata;
    expect(meta).toMatchObject({ pushed: true, secrets: ['token'] });
    expect(meta.digest).toMatch(/^sha256:/);
    expect(r.stderr).toContain('| build secrets | `token` |');
    for (const s of [token, env.registry.password]) expect(findSecret(r.stdout + r.stderr, s)).toEqual([]);
    expect(await registryTags(image)).toEqual(['v1']);
  });

  it('refuses a secret given as a flag value', async () => {
    const r = await dyceBuild(['.', '--image', 'a/b', '--registry-password', 'hunter2-flag']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--registry-password is a secret and cannot be given on the command line');
    expect(r.stderr).not.toContain('hunter2-flag');
  });
});

describe('transient push failure', () => {
  it('a proxy that resets the first two push connections: the push is retried and succeeds', async () => {
    const proxy = await resettingProxy(Number(REG.split(':')[1]), 2);
    try {
      const registry = `127.0.0.1:${proxy.port}`;
      const image = `${registry}/flaky/${uniqueName('app')}`;
      const reporter = new Recorder();
      // Login goes through the proxy untouched; the resets start with the push.
      reporter.onInfo = (m) => {
        if (m.startsWith('pushing ')) proxy.arm();
      };
      const { result, error } = await run(
        {
          context: context('flaky', 'FROM dyce-lab/base:latest\nRUN echo flaky > /f\n'),
          image,
          ...login(),
          tags: 'v1',
        },
        { reporter, retryBaseMs: 200 },
      );
      expect(error).toBeUndefined();
      expect(proxy.resets()).toBe(2);
      expect(result!.pushed).toBe(true);
      expect(result!.digest).toMatch(/^sha256:/);
      expect(result!.pushAttempts).toBeGreaterThan(1);
      const retries = reporter.lines.filter((l) => /attempt \d\/4 failed with a transient error.*retrying in/.test(l));
      expect(retries.length).toBeGreaterThan(0);
      expect(retries[0]).toMatch(/connection reset|EOF/);
      expect(await registryTags(image.replace(registry, REG))).toEqual(['v1']);
      await runnerDocker(['rmi', `${image}:v1`]);
    } finally {
      await proxy.close();
    }
  });
});

/** A loopback TCP proxy to the registry that, once armed, resets the next `n` connections (TCP RST). */
async function resettingProxy(
  target: number,
  n: number,
): Promise<{ port: number; arm(): void; resets(): number; close(): Promise<void> }> {
  let armed = false;
  let left = n;
  let resets = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    if (armed && left > 0) {
      left--;
      resets++;
      client.resetAndDestroy();
      return;
    }
    const upstream = tcpConnect(target, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    arm() {
      if (armed) return;
      armed = true;
      // Connections kept alive from the login must not carry the push past the resets.
      for (const s of sockets) s.destroy();
    },
    resets: () => resets,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

interface SourceStep {
  code: number;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  summary: string;
  errors: string[];
  post?: { code: number; stdout: string; stderr: string };
}

/** Runs actions/build-push/main.ts (the source, through tsx) with the runner's environment and file commands, then its post step. */
async function runSource(inputs: Record<string, string>): Promise<SourceStep> {
  const dir = tempDir('dyce-bp-step-');
  const files = {
    GITHUB_OUTPUT: join(dir, 'output'),
    GITHUB_STATE: join(dir, 'state'),
    GITHUB_STEP_SUMMARY: join(dir, 'summary'),
  };
  for (const f of Object.values(files)) writeFileSync(f, '');
  const base: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? dir,
    DOCKER_HOST: env.runner.dockerHost,
    GITHUB_ACTIONS: 'true',
    RUNNER_TEMP: dir,
    ...files,
  };
  for (const [name, f] of Object.entries(buildPushSpec.inputs)) base[inputEnvName(name)] = f.meta.default ?? '';
  for (const [name, v] of Object.entries(inputs)) base[inputEnvName(name)] = v;
  const exec = (extra: Record<string, string>) =>
    runLocal([process.execPath, '--import', 'tsx', join(repoRoot, 'actions/build-push/main.ts')], {
      cwd: repoRoot,
      env: { ...base, ...extra },
    });
  try {
    const main = await exec({});
    const outputs = parseFileCommands(readFileSync(files.GITHUB_OUTPUT, 'utf8'));
    const state = parseFileCommands(readFileSync(files.GITHUB_STATE, 'utf8'));
    const summary = readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8');
    const stateEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries(state)) stateEnv[`STATE_${k}`] = v;
    const post = await exec(stateEnv);
    return {
      ...main,
      outputs,
      summary,
      errors: main.stdout.split('\n').filter((l) => l.startsWith('::error')),
      post,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
