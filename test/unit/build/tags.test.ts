import { describe, expect, it, test } from 'vitest';
import { computeTags, parseSemver, resolveImage, sanitizeTag } from '../../../src/build/tags.js';

const SHA = '0123456789abcdef0123456789abcdef01234567';
const none = { explicit: [] as string[], semverTags: false, latest: 'never' as const, repository: 'r/app' };
const semver = { ...none, semverTags: true };

describe('tag rules: event -> tags', () => {
  test.each([
    // [what, ref, sha, options, tags, version]
    ['tag ref (Melton: GITHUB_REF#refs/*/)', 'refs/tags/v1.4.2', SHA, none, ['v1.4.2', 'sha-0123456'], 'v1.4.2'],
    [
      'tag ref with semver expansions',
      'refs/tags/v1.4.2',
      SHA,
      semver,
      ['v1.4.2', '1.4.2', '1.4', '1', 'sha-0123456'],
      'v1.4.2',
    ],
    ['semver without the v (no duplicate)', 'refs/tags/2.0.10', '', semver, ['2.0.10', '2.0', '2'], '2.0.10'],
    ['0.x: no 0 major', 'refs/tags/v0.3.1', '', semver, ['v0.3.1', '0.3.1', '0.3'], 'v0.3.1'],
    ['pre-release: no expansions', 'refs/tags/v1.4.2-rc.1', SHA, semver, ['v1.4.2-rc.1', 'sha-0123456'], 'v1.4.2-rc.1'],
    [
      'build metadata: + is not a tag character',
      'refs/tags/v1.4.2+build.7',
      '',
      semver,
      ['v1.4.2-build.7', '1.4.2', '1.4', '1'],
      'v1.4.2-build.7',
    ],
    ['non-semver tag: no expansions', 'refs/tags/release-2024', '', semver, ['release-2024'], 'release-2024'],
    ['capital tag keeps its case', 'refs/tags/V1.4.2', '', none, ['V1.4.2'], 'V1.4.2'],
    ['pre-release keeps its case', 'refs/tags/v1.0.0-RC1', SHA, semver, ['v1.0.0-RC1', 'sha-0123456'], 'v1.0.0-RC1'],
    ['branch', 'refs/heads/main', SHA, none, ['main', 'sha-0123456'], 'main'],
    [
      'branch with slashes and capitals',
      'refs/heads/Feature/Add-LOGIN_page',
      SHA,
      semver,
      ['Feature-Add-LOGIN_page', 'sha-0123456'],
      'Feature-Add-LOGIN_page',
    ],
    ['branch with characters a tag cannot hold', 'refs/heads/fix/#12 Über', '', none, ['fix--12--ber'], 'fix--12--ber'],
    ['branch starting with a dot or dash', 'refs/heads/-.hidden', '', none, ['hidden'], 'hidden'],
    ['pull request', 'refs/pull/42/merge', SHA, none, ['pr-42', 'sha-0123456'], 'pr-42'],
    ['sha only', '', SHA, none, ['sha-0123456'], 'sha-0123456'],
    ['sha is lower-cased', '', 'ABCDEF0123', none, ['sha-abcdef0'], 'sha-abcdef0'],
  ])('%s', (_what, ref, sha, opts, tags, version) => {
    const plan = computeTags({ ref, sha }, opts);
    expect(plan.issues).toEqual([]);
    expect(plan.tags).toEqual(tags);
    expect(plan.version).toBe(version);
  });

  test.each([
    ['never', 'refs/tags/v1.4.2', false],
    ['always', 'refs/heads/main', true],
    ['release', 'refs/tags/v1.4.2', true],
    ['release', 'refs/tags/v1.4.2-beta', false],
    ['release', 'refs/heads/main', false],
  ] as const)('latest=%s on %s: latest added = %s', (latest, ref, added) => {
    const plan = computeTags({ ref, sha: SHA }, { ...none, latest });
    expect(plan.tags.includes('latest')).toBe(added);
    expect(plan.version).not.toBe('latest');
  });

  it('adds explicit tags after the automatic ones, without duplicates', () => {
    const plan = computeTags({ ref: 'refs/tags/v1.0.0', sha: SHA }, { ...none, explicit: ['edge', 'v1.0.0'] });
    expect(plan.tags).toEqual(['v1.0.0', 'sha-0123456', 'edge']);
  });

  it('uses the first explicit tag as the version when the event gives none', () => {
    const plan = computeTags({}, { ...none, explicit: ['nightly', 'edge'] });
    expect(plan).toMatchObject({ tags: ['nightly', 'edge'], version: 'nightly', source: 'explicit' });
  });

  test.each([['bad tag!'], ['-leading'], ['.dot'], ['x'.repeat(129)], ['a:b']])('refuses explicit tag %j', (tag) => {
    const plan = computeTags({ sha: SHA }, { ...none, explicit: [tag] });
    expect(plan.issues.join('\n')).toContain('input "tags"');
    expect(plan.tags).not.toContain(tag);
  });

  it('refuses a sha that is not hex and asks for something when there is nothing to tag with', () => {
    expect(computeTags({ sha: 'not-a-sha' }, none).issues[0]).toContain('input "sha"');
    expect(computeTags({}, none).issues[0]).toContain('no tags');
  });
});

describe('tags with full references (docker/metadata-action output)', () => {
  const repo = 'ghcr.io/org/app';
  const opts = (explicit: string[], repository = repo) => ({ ...none, explicit, repository });

  it('pushes exactly the references given, keeping case and order: no automatic tags', () => {
    const plan = computeTags(
      { ref: 'refs/tags/v1.0.0-RC1', sha: SHA },
      opts(['ghcr.io/org/app:v1.0.0-RC1', 'ghcr.io/org/app:1.0.0-RC1', 'ghcr.io/org/app:sha-0123456']),
    );
    expect(plan).toMatchObject({
      issues: [],
      tags: ['v1.0.0-RC1', '1.0.0-RC1', 'sha-0123456'],
      refs: ['ghcr.io/org/app:v1.0.0-RC1', 'ghcr.io/org/app:1.0.0-RC1', 'ghcr.io/org/app:sha-0123456'],
      version: 'v1.0.0-RC1',
      source: 'references',
    });
  });

  it("matches Docker Hub's spellings of one repository, and takes bare tags beside references", () => {
    const plan = computeTags(
      {},
      opts(['docker.io/org/app:v2', 'index.docker.io/org/app:v2', 'org/app:2', 'edge'], 'org/app'),
    );
    expect(plan.issues).toEqual([]);
    expect(plan.tags).toEqual(['v2', '2', 'edge']);
    expect(plan.refs).toEqual(['docker.io/org/app:v2', 'org/app:2', 'org/app:edge']);
    expect(computeTags({}, opts(['docker.io/library/nginx:1'], 'nginx')).issues).toEqual([]);
  });

  it('refuses semver-tags or latest beside references: they could not add anything', () => {
    for (const extra of [{ semverTags: true }, { latest: 'release' as const }]) {
      const plan = computeTags({ ref: 'refs/tags/v1.0.0' }, { ...opts(['ghcr.io/org/app:v1.0.0']), ...extra });
      expect(plan.issues.join('\n')).toMatch(/input "tags" holds full references.*cannot add tags/);
    }
  });

  test.each([
    ['ghcr.io/other/app:v1', 'names the repository ghcr.io/other/app'],
    ['docker.io/org/app:v1', 'names the repository docker.io/org/app'],
    ['ghcr.io/Org/app:v1', 'must be lower-case'],
    ['ghcr.io/org/app', 'needs its tag'],
    ['ghcr.io/org/app@sha256:0123', 'digest'],
    ['ghcr.io/org/app:-bad', 'is not valid'],
  ])('refuses %s, naming the input', (entry, message) => {
    const plan = computeTags({ ref: 'refs/tags/v1.0.0' }, opts([entry]));
    expect(plan.issues.join('\n')).toContain('input "tags"');
    expect(plan.issues.join('\n')).toContain(message);
    expect(plan.tags).toEqual([]);
  });
});

describe('sanitizeTag and parseSemver', () => {
  it('keeps tags valid', () => {
    expect(sanitizeTag('Dependabot/NPM_and_yarn/x-1.2')).toBe('Dependabot-NPM_and_yarn-x-1.2');
    expect(sanitizeTag('a'.repeat(200))).toHaveLength(128);
    expect(sanitizeTag('...')).toBe('');
  });
  it('parses semver with optional v, pre-release and build metadata', () => {
    expect(parseSemver('v1.4.2')).toEqual({ major: 1, minor: 4, patch: 2, prerelease: undefined });
    expect(parseSemver('1.4.2-rc.1+b')).toEqual({ major: 1, minor: 4, patch: 2, prerelease: 'rc.1' });
    expect(parseSemver('v1.4')).toBeUndefined();
    expect(parseSemver('v01.4.2')).toBeUndefined();
  });
});

describe('resolveImage', () => {
  test.each([
    ['meltondevops/melton-app-server', 'docker.io', 'meltondevops/melton-app-server', 'docker.io'],
    ['127.0.0.1:5000/team/app', 'docker.io', '127.0.0.1:5000/team/app', '127.0.0.1:5000'],
    ['team/app', 'ghcr.io', 'ghcr.io/team/app', 'ghcr.io'],
    ['ghcr.io/team/app', 'ghcr.io', 'ghcr.io/team/app', 'ghcr.io'],
    ['localhost/app', 'docker.io', 'localhost/app', 'localhost'],
    ['my_org/app.v2__x', 'docker.io', 'my_org/app.v2__x', 'docker.io'],
  ])('%s with registry %s -> %s (login to %s)', (image, registry, repository, login) => {
    expect(resolveImage(image, registry)).toEqual({ ok: true, value: { repository, registry: login } });
  });

  test.each([
    ['Team/App', 'docker.io', 'not a valid repository name'],
    ['team/app:v1', 'docker.io', 'without a tag'],
    ['team/app@sha256:abc', 'docker.io', 'without a tag'],
    ['team//app', 'docker.io', 'not a valid repository name'],
    ['team/-app', 'docker.io', 'not a valid repository name'],
    ['ghcr.io/team/app', 'quay.io', 'disagree'],
    ['team/app', 'bad host!', 'input "registry"'],
  ])('refuses %s (registry %s)', (image, registry, message) => {
    const r = resolveImage(image, registry);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues.join('\n')).toContain(message);
  });
});
