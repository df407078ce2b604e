import { describe, expect, it } from 'vitest';
import {
  type HistoryEntry,
  historyPath,
  parseHistory,
  parsePruneOutput,
  recordDeploy,
  rollbackTarget,
} from '../../../src/commands/history.js';
import { deployRules, deploySpec } from '../../../src/config/actions/deploy.js';
import { parseInputs, type RawInputs } from '../../../src/config/input-spec.js';
import { appConfigFromInputs, imageRef } from '../../../src/deploy/settings.js';
import { deployInputIssues } from '../../support/deploy-fixtures.js';

const base: RawInputs = {
  hosts: 'vps1 ansible_host=127.0.0.1 ansible_port=2222',
  image: '127.0.0.1:5000/dyce/sample-app:v1',
  name: 'melton-app',
};

const issues = (extra: RawInputs): string[] => deployInputIssues({ ...base, ...extra });

describe('redeploy by version', () => {
  it.each([
    ['ghcr.io/acme/app', 'v1.4.1', 'ghcr.io/acme/app:v1.4.1'],
    ['127.0.0.1:5000/acme/app', 'v1.4.1', '127.0.0.1:5000/acme/app:v1.4.1'],
    ['ghcr.io/acme/app:v1.4.2', 'v1.4.1', 'ghcr.io/acme/app:v1.4.2'],
    ['ghcr.io/acme/app@sha256:abc', 'v1', 'ghcr.io/acme/app@sha256:abc'],
    [' ghcr.io/acme/app:v2 ', undefined, 'ghcr.io/acme/app:v2'],
  ])('image %s with version %s runs %s', (image, version, expected) => {
    expect(imageRef(image, version)).toBe(expected);
  });

  it('an untagged image with version deploys image:version and records the version', () => {
    const i = parseInputs(
      deploySpec,
      { ...base, image: '127.0.0.1:5000/dyce/sample-app', version: 'v1.4.1' },
      deployRules,
    );
    const app = appConfigFromInputs(i as Parameters<typeof appConfigFromInputs>[0]);
    expect(app.image).toBe('127.0.0.1:5000/dyce/sample-app:v1.4.1');
    expect(app.version).toBe('v1.4.1');
  });

  it('an untagged image needs a version that is a Docker tag', () => {
    expect(issues({ image: '127.0.0.1:5000/dyce/sample-app' })[0]).toContain(
      'input "image" needs a tag or digest (e.g. 127.0.0.1:5000/dyce/sample-app:v1.4.2), or input "version" as its tag',
    );
    expect(issues({ image: '127.0.0.1:5000/dyce/sample-app', version: 'a@b' })).toEqual([
      'input "version" is the tag of the untagged image 127.0.0.1:5000/dyce/sample-app, so it must be a Docker tag (letters, digits, _ . -), got "a@b"',
    ]);
    expect(issues({ image: '127.0.0.1:5000/dyce/sample-app', version: 'v1.4.1' })).toEqual([]);
  });

  it('keep-versions defaults to 3 and is at least 2 (the running and the previous version)', () => {
    expect(parseInputs(deploySpec, base, deployRules)['keep-versions']).toBe(3);
    expect(issues({ 'keep-versions': '1' })).toEqual(['input "keep-versions" must be at least 2, got 1']);
  });
});

describe('deploy history', () => {
  const e = (image: string, version: string, state: HistoryEntry['state'] = 'ok'): HistoryEntry => ({
    image,
    version,
    state,
  });

  it('parses lines, skipping partial ones', () => {
    expect(parseHistory('a:v1\tv1\tok\nb:v2\tv2\trolled-back\nbroken\nc:v3\tv3\n')).toEqual([
      e('a:v1', 'v1'),
      e('b:v2', 'v2', 'rolled-back'),
    ]);
  });

  it('rollback goes to the last ok version before the current one, never to one rolled back from', () => {
    expect(rollbackTarget([])).toBeUndefined();
    expect(rollbackTarget([e('a', 'v1')])).toBeUndefined();
    expect(rollbackTarget([e('a', 'v1'), e('b', 'v2'), e('c', 'v3')])).toEqual(e('b', 'v2'));
    // After rolling back from v3 to v2, a second rollback goes to v1, not back to v3.
    expect(rollbackTarget([e('c', 'v3', 'rolled-back'), e('a', 'v1'), e('b', 'v2')])).toEqual(e('a', 'v1'));
    expect(rollbackTarget([e('b', 'v2', 'rolled-back'), e('c', 'v3', 'rolled-back'), e('a', 'v1')])).toBeUndefined();
  });

  it('reads what the prune printed', () => {
    expect(parsePruneOutput('pruned\ta:v1\ngone\tb:v2\nspared\tc:v3\nkept\td:v4\tconflict: in use\n')).toEqual({
      pruned: ['a:v1'],
      gone: ['b:v2'],
      kept: [{ image: 'd:v4', why: 'conflict: in use' }],
    });
  });

  it('records through positional arguments only, and refuses a keep below 2 or blanks', () => {
    const argv = recordDeploy({
      path: historyPath('/var/lib/dyce/apps/x'),
      image: 'r/x:v1',
      version: 'v1',
      keep: 3,
      mode: 'rollback',
    });
    expect(argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(argv.slice(3)).toEqual(['sh', '/var/lib/dyce/apps/x/history', 'r/x:v1', 'v1', '3', 'rollback']);
    expect(argv[2]).not.toContain('r/x:v1');
    expect(() => recordDeploy({ path: '/h', image: 'r/x:v1', version: 'v1', keep: 1, mode: 'deploy' })).toThrow(
      'keep must be an integer >= 2',
    );
    expect(() => recordDeploy({ path: '/h', image: 'r/x v1', version: 'v1', keep: 3, mode: 'deploy' })).toThrow(
      'image must be non-empty without blanks',
    );
  });
});
