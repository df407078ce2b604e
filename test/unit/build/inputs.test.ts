import { describe, expect, it } from 'vitest';
import { withRetries } from '../../../src/build/build-push.js';
import type { DockerCommand } from '../../../src/build/commands.js';
import type { DockerRunner } from '../../../src/build/docker.js';
import { planBuild } from '../../../src/build/plan.js';
import { parseFlags } from '../../../src/cli/flags.js';
import { buildPushRules, buildPushSpec } from '../../../src/config/actions/build-push.js';
import { parseInputs, type RawInputs } from '../../../src/config/input-spec.js';
import { RecordingReporter } from '../../../src/github/reporter.js';
import type { ExecResult } from '../../../src/remote/executor.js';
import { InputError, UserError } from '../../../src/util/errors.js';

const parse = (raw: RawInputs) => parseInputs(buildPushSpec, raw, buildPushRules);

function issues(raw: RawInputs): string {
  try {
    parse(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return (e as InputError).issues.join('\n');
  }
  throw new Error('expected an InputError');
}

describe('build-push inputs', () => {
  it('parses the Melton workflow inputs', () => {
    const i = parse({
      context: './app',
      image: 'meltondevops/melton-app-server',
      'registry-username': 'melton',
      'registry-password': 'pw',
      'env-file': 'api/.env',
      'env-file-secrets': 'DJANGO_SECRET_KEY=a=b$(c)"d\\e\nDB_PASSWORD=x',
    });
    expect(i['env-file-secrets']).toEqual([
      { key: 'DJANGO_SECRET_KEY', value: 'a=b$(c)"d\\e', line: 1 },
      { key: 'DB_PASSWORD', value: 'x', line: 2 },
    ]);
    expect(i).toMatchObject({ push: true, retries: 3, registry: 'docker.io', 'builder-kind': 'auto', latest: 'never' });
    expect(i).toMatchObject({ pull: false, 'no-cache': false, load: undefined });
  });

  it('takes multi-line secrets as heredocs, byte for byte', () => {
    const i = parse({
      image: 'a/b',
      secrets: 'cert<<EOF\n-----BEGIN-----\n  indented \\n\n-----END-----\nEOF\ntoken=t',
    });
    expect(i.secrets).toEqual([
      { key: 'cert', value: '-----BEGIN-----\n  indented \\n\n-----END-----', line: 1 },
      { key: 'token', value: 't', line: 6 },
    ]);
  });

  it('declares every secret-carrying input secret', () => {
    const secret = Object.entries(buildPushSpec.inputs)
      .filter(([, f]) => f.meta.secret)
      .map(([n]) => n);
    expect(secret.sort()).toEqual(['env-file-secrets', 'registry-password', 'secret-build-args', 'secrets']);
  });

  it.each([
    [{}, 'input "image" is required'],
    [{ image: 'a/b', 'env-file-secrets': 'A=1' }, '"env-file-secrets" needs "env-file"'],
    [{ image: 'a/b', 'env-file': 'api/.env' }, '"env-file" needs "env-file-secrets"'],
    [{ image: 'a/b', 'env-file': '.env', 'env-file-secrets': 'A<<EOF\n1\n2\nEOF' }, 'multi-line value'],
    [{ image: 'a/b', 'env-file': '.env', 'env-file-secrets': 'BAD-NAME=1' }, 'invalid key'],
    [{ image: 'a/b', 'registry-username': 'u' }, 'go together'],
    [{ image: 'a/b', 'registry-password': 'p' }, 'go together'],
    [{ image: 'a/b', retries: '-1' }, 'input "retries" must be at least 0'],
    [{ image: 'a/b', push: 'yes' }, 'input "push" must be true or false'],
    [{ image: 'a/b', 'builder-kind': 'kaniko' }, 'input "builder-kind" must be one of auto, buildx, buildkit, classic'],
    [{ image: 'a/b', builder: 'buildx' }, 'input "builder" is now "builder-kind"'],
    [{ image: 'a/b', 'secret-files': 'a=/x', secrets: 'a=1' }, 'id a is also in "secrets"'],
    [{ image: 'a/b', 'secret-files': 'a=/x', 'secret-envs': 'a=HOME' }, 'id a is also in "secret-envs"'],
    [{ image: 'a/b', push: 'false', load: 'false' }, 'would go nowhere'],
    [{ image: 'a/b', secrets: 'a=1', 'secret-envs': 'a=HOME' }, 'id a is also in "secrets"'],
    [{ image: 'a/b', 'secret-envs': 'a=not a name' }, 'not an environment variable name'],
    [{ image: 'a/b', secrets: 'x=1\nx=2' }, 'duplicate key'],
  ])('refuses %j', (raw, message) => {
    expect(issues(raw as RawInputs)).toContain(message);
  });

  it('plans refs, version and OCI labels from the GitHub environment; user labels win', () => {
    const i = parse({ image: 'team/app', registry: '127.0.0.1:5000', labels: 'org.opencontainers.image.title=Melton' });
    const r = planBuild(
      i,
      {
        GITHUB_REF: 'refs/tags/v1.4.2',
        GITHUB_SHA: 'abcdef0123456789',
        GITHUB_SERVER_URL: 'https://github.com',
        GITHUB_REPOSITORY: 'org/melton',
      },
      new Date('2026-01-01T00:00:00Z'),
      '/w',
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.plan).toMatchObject({
      repository: '127.0.0.1:5000/team/app',
      registry: '127.0.0.1:5000',
      refs: ['127.0.0.1:5000/team/app:v1.4.2', '127.0.0.1:5000/team/app:sha-abcdef0'],
      version: 'v1.4.2',
      context: '/w',
      dockerfile: '/w/Dockerfile',
    });
    expect(r.plan.labels).toMatchObject({
      'org.opencontainers.image.source': 'https://github.com/org/melton',
      'org.opencontainers.image.revision': 'abcdef0123456789',
      'org.opencontainers.image.version': 'v1.4.2',
      'org.opencontainers.image.title': 'Melton',
    });
  });

  it("plans exactly metadata-action's references for the resolved repository, case kept", () => {
    const tags = ['v1.0.0-RC1', '1.0.0-RC1', 'sha-abcdef0'].map((t) => `127.0.0.1:5000/team/app:${t}`).join('\n');
    const i = parse({ image: 'team/app', registry: '127.0.0.1:5000', tags });
    const r = planBuild(i, { GITHUB_REF: 'refs/tags/v1.0.0-RC1', GITHUB_SHA: 'abcdef0123' }, new Date(), '/w');
    expect(r.ok && r.plan.refs).toEqual(tags.split('\n'));
    expect(r.ok && r.plan.version).toBe('v1.0.0-RC1');
    const other = planBuild(parse({ image: 'team/app', tags: 'ghcr.io/team/app:v1' }), {}, new Date(), '/w');
    expect(other.ok).toBe(false);
    if (!other.ok) expect(other.issues.join('\n')).toContain('"image" and "registry" resolve to team/app');
  });

  it('refuses the old "builder" as a CLI flag too, with the pointer', () => {
    expect(parseFlags(buildPushSpec, ['--builder', 'buildx', '--image', 'a/b']).issues.join('\n')).toContain(
      '--builder is now "builder-kind"',
    );
    const ok = parseFlags(buildPushSpec, ['--builder-kind', 'buildx', '--no-cache', '--pull']);
    expect(ok.issues).toEqual([]);
    expect(ok.raw).toEqual({ 'builder-kind': 'buildx', 'no-cache': 'true', pull: 'true' });
  });

  it('reports a malformed image and a malformed tag together', () => {
    const r = planBuild(parse({ image: 'Team/App', tags: 'ok,not ok!' }), {}, new Date(), '/w');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues.join('\n')).toMatch(/input "image".*\n.*input "tags"/);
  });
});

describe('withRetries (the retry decision, with a scripted runner)', () => {
  const cmd: DockerCommand = { argv: ['docker', 'push', 'r/app:v1'], env: {} };
  function scripted(...answers: ExecResult[]): DockerRunner & { calls: number } {
    const r = {
      calls: 0,
      async run() {
        return answers[Math.min(r.calls++, answers.length - 1)]!;
      },
    };
    return r;
  }
  const fail = (stderr: string): ExecResult => ({ code: 1, stdout: '', stderr });
  const ok: ExecResult = { code: 0, stdout: 'v1: digest: sha256:x size: 1', stderr: '' };

  it('retries transient failures with growing delays and says so', async () => {
    const runner = scripted(fail('connection reset by peer'), fail('503 Service Unavailable'), ok);
    const reporter = new RecordingReporter();
    const delays: number[] = [];
    const r = await withRetries(runner, cmd, 'push r/app:v1', {
      retries: 3,
      baseMs: 1000,
      reporter,
      sleep: async (ms) => {
        delays.push(ms);
      },
    });
    expect(r.attempts).toBe(3);
    expect(delays).toHaveLength(2);
    expect(delays[1]!).toBeGreaterThan(delays[0]!);
    expect(reporter.lines.filter((l) => l.includes('retrying in'))).toHaveLength(2);
  });

  it('never retries a 401', async () => {
    const runner = scripted(fail('unauthorized: authentication required'), ok);
    await expect(
      withRetries(runner, cmd, 'push', {
        retries: 5,
        baseMs: 1,
        reporter: new RecordingReporter(),
        sleep: async () => {},
      }),
    ).rejects.toThrow(/refused the credentials.*not retried/);
    expect(runner.calls).toBe(1);
  });

  it('gives up after the last retry, and does not retry fatal errors', async () => {
    const flaky = scripted(fail('i/o timeout'));
    const e = await withRetries(flaky, cmd, 'push', {
      retries: 2,
      baseMs: 1,
      reporter: new RecordingReporter(),
      sleep: async () => {},
    }).catch((x) => x);
    expect(e).toBeInstanceOf(UserError);
    expect(String(e.message)).toContain('after 3 attempts');
    expect(flaky.calls).toBe(3);
    const fatal = scripted(fail('manifest invalid'));
    await expect(
      withRetries(fatal, cmd, 'push', {
        retries: 2,
        baseMs: 1,
        reporter: new RecordingReporter(),
        sleep: async () => {},
      }),
    ).rejects.toThrow(/not retried/);
    expect(fatal.calls).toBe(1);
  });
});
