import { describe, expect, it } from 'vitest';
import { pullAndIdentify } from '../../../src/commands/host-state.js';
import { deployRules, deploySpec } from '../../../src/config/actions/deploy.js';
import { parseInputs, type RawInputs } from '../../../src/config/input-spec.js';
import { runDeploy } from '../../../src/deploy/entry.js';
import { isMutableTag, mutableTagWarning, parsePulled } from '../../../src/deploy/pull.js';
import { appConfigFromInputs } from '../../../src/deploy/settings.js';
import { RecordingReporter } from '../../../src/github/reporter.js';
import { type AppConfig, desiredState } from '../../../src/plan/desired.js';
import type { ObservedContainer } from '../../../src/plan/observed.js';
import { describeStep, planReplicas } from '../../../src/plan/plan.js';
import type { ExecOptions, ExecResult } from '../../../src/remote/executor.js';
import { RecordingExecutor } from '../../../src/remote/executor.js';
import { appConfig, deployedContainers, HOST_FACTS } from '../../support/deploy-fixtures.js';

const OLD = `sha256:${'a'.repeat(64)}`;
const NEW = `sha256:${'b'.repeat(64)}`;

describe('mutable tags', () => {
  it.each([
    ['reg/app:main', true],
    ['reg/app:latest', true],
    ['reg/app', true],
    ['127.0.0.1:5000/dyce/app:edge', true],
    ['127.0.0.1:5000/dyce/app', true],
    ['reg/app:pr-12', true],
    ['reg/app:v1.4.2', false],
    ['reg/app:1.4.2', false],
    ['reg/app:1.4', false],
    ['reg/app:v2', false],
    ['reg/app:1.4.2-rc.1', false],
    ['reg/app:3.12-alpine', false],
    ['reg/app:sha-abc1234', false],
    ['reg/app:0123456789abcdef0123456789abcdef01234567', false],
    [`reg/app@${NEW}`, false],
    [`reg/app:main@${NEW}`, false],
    ['127.0.0.1:5000/dyce/app:v4', false],
  ])('%s: %s', (ref, mutable) => {
    expect(isMutableTag(ref)).toBe(mutable);
  });

  it('warns with pull: missing only, naming the tag and both ways out', () => {
    const w = mutableTagWarning('reg/app:main', 'missing');
    expect(w).toContain('image reg/app:main: the tag "main" can be rebuilt');
    expect(w).toContain('pull: always');
    expect(w).toContain('version tag');
    expect(mutableTagWarning('reg/app:main', 'always')).toBeUndefined();
    expect(mutableTagWarning('reg/app:v1.4.2', 'missing')).toBeUndefined();
  });
});

describe('the pull round trip', () => {
  it('takes every variable part as a positional argument; the password only on stdin', () => {
    const argv = pullAndIdentify({
      config: '/var/lib/dyce/docker-config',
      image: 'reg.example/app:main',
      login: { registry: 'reg.example', username: 'ci' },
      containers: ['c1', 'c2'],
    });
    expect(argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(argv.slice(3)).toEqual([
      'sh',
      '/var/lib/dyce/docker-config',
      'reg.example/app:main',
      'reg.example',
      'ci',
      'c1',
      'c2',
    ]);
    expect(argv[2]).toContain('--password-stdin');
    expect(argv[2]).not.toContain('reg.example');
    expect(
      pullAndIdentify({ config: '/c', image: 'reg/app:main', containers: [] }).slice(3),
      'no login: empty registry and user',
    ).toEqual(['sh', '/c', 'reg/app:main', '', '']);
  });

  it('parses the image ID and each container image ID; refuses an answer without the image ID', () => {
    const p = parsePulled(`image ${NEW}\ncontainer c1 ${OLD}\ncontainer c2 ${NEW}\n`, 'vps1');
    expect(p.imageId).toBe(NEW);
    expect([...p.containers]).toEqual([
      ['c1', OLD],
      ['c2', NEW],
    ]);
    expect(() => parsePulled(`container c1 ${OLD}\n`, 'vps1')).toThrow(/vps1: the pulled image has no ID/);
  });
});

const cfg = (over: Partial<AppConfig> = {}): AppConfig =>
  appConfig({ image: 'reg/app:main', version: 'main', replicas: 2, ...over });
const facts = HOST_FACTS;

const observed = (app: AppConfig, imageIds: (string | undefined)[], running = true): ObservedContainer[] =>
  deployedContainers(app, { imageIds, stopped: running ? [] : Array.from({ length: app.replicas }, (_, k) => k + 1) });

describe('planning with the pulled image ID', () => {
  const app = cfg();
  const desired = desiredState(app, facts);
  const plan = (c: ObservedContainer[], imageId?: string) =>
    planReplicas(desired, c, { adopt: false, host: 'vps1', strategy: 'rolling', ...(imageId ? { imageId } : {}) });

  it('replaces (rolling) a replica whose container runs another image than the tag names now', () => {
    const p = plan(observed(app, [OLD, NEW]), NEW);
    expect(p.changed).toBe(true);
    expect(p.steps.map((s) => s.kind)).toEqual(['replace', 'keep']);
    const s = p.steps[0]!;
    expect(s.kind === 'replace' && s.strategy).toBe('rolling');
    expect(describeStep(s)).toBe(
      `web1: replace main -> main (image reg/app:main was rebuilt: ${'a'.repeat(12)} -> ${'b'.repeat(12)}; rolling: the old replica serves until its successor passes its health gate)`,
    );
  });

  it('keeps replicas on the pulled image, and ones whose image ID is unknown', () => {
    expect(plan(observed(app, [NEW, NEW]), NEW).changed).toBe(false);
    expect(plan(observed(app, [undefined, undefined]), NEW).changed).toBe(false);
    // Without a pull (pull: missing) the image IDs decide nothing.
    expect(plan(observed(app, [OLD, OLD])).changed).toBe(false);
  });

  it('a stopped replica on the old image is replaced, not started again', () => {
    expect(plan(observed(app, [OLD, OLD], false), NEW).steps.map((s) => s.kind)).toEqual(['replace', 'replace']);
    expect(plan(observed(app, [NEW, NEW], false), NEW).steps.map((s) => s.kind)).toEqual(['start', 'start']);
  });

  it('a changed spec says so even when the image was rebuilt too', () => {
    const before = observed(cfg({ env: { A: '1' } }), [OLD, OLD]);
    const s = plan(before, NEW).steps[0]!;
    expect(s.kind === 'replace' && s.reason).toBe('spec changed');
  });
});

/**
 * The engine's host path over a RecordingExecutor that answers like a host would (the lock script's observation,
 * the pull script's image IDs): which round trips each `pull` mode costs, and what it decides.
 */
async function deployRecorded(raw: RawInputs, host: { runningImage: string; tagNow: string }) {
  const inputs = parseInputs(
    deploySpec,
    {
      hosts: 'vps1 ansible_host=192.0.2.1',
      'insecure-skip-host-key-check': 'true',
      image: 'reg.example/app:main',
      name: 'web',
      replicas: '2',
      port: '8000',
      ...raw,
    },
    deployRules,
  );
  const app = appConfigFromInputs(inputs as Parameters<typeof appConfigFromInputs>[0]);
  const desired = desiredState(app, { stateDir: '/var/lib/dyce', portBase: 0, hmacKey: 'ab'.repeat(32) });
  const rows = desired.replicas.map(
    (r, k) =>
      `${String(k + 1).padStart(64, 'c')}\t${r.name}\trunning\t${r.run.image}\tweb\t${r.replica}\t${r.version}\t${r.specHash}\t${r.hostPort}`,
  );
  const answer = (argv: readonly string[], o: ExecOptions): ExecResult => {
    const ok = (stdout = '') => ({ code: 0, stdout, stderr: '' });
    if (o.label === 'take the deploy lock') {
      // The host's own verdict (src/commands/host-state.ts) when it was asked for one: every spec hash matches here.
      const asked =
        String(o.stdin ?? '')
          .trim()
          .split('\n').length === 2;
      return ok(`key ${'ab'.repeat(32)}\n${asked ? 'verdict noop\n' : ''}containers\n${rows.join('\n')}\n`);
    }
    if (o.label?.startsWith('docker pull'))
      return ok(
        `image ${host.tagNow}\n${rows.map((l) => `container ${l.split('\t')[0]} ${host.runningImage}`).join('\n')}\n`,
      );
    if (o.label?.startsWith('docker run')) return ok(`${'d'.repeat(64)}\n`);
    return ok(argv.join(' ').includes('holder.json') ? 'released\n' : '');
  };
  const exec = new RecordingExecutor('vps1', answer);
  const reporter = new RecordingReporter();
  await runDeploy(inputs, reporter, { connect: async () => exec });
  return {
    labels: exec.calls.map((c) => c.opts.label ?? c.argv.slice(0, 3).join(' ')),
    calls: exec.calls,
    reporter,
  };
}

describe('pull modes in the engine', () => {
  const same = { runningImage: OLD, tagNow: OLD };
  const rebuilt = { runningImage: OLD, tagNow: NEW };

  it('pull: missing stays the one round trip of the host-side no-op verdict, and warns once about the tag', async () => {
    const r = await deployRecorded({}, rebuilt);
    expect(r.labels.filter((l) => l.startsWith('docker pull'))).toEqual([]);
    expect(r.labels[0]).toBe('take the deploy lock');
    expect(r.reporter.outputs.changed).toBe('false');
    const warnings = r.reporter.lines.filter((w) => w.startsWith('warning:') && w.includes('can be rebuilt'));
    expect(warnings).toHaveLength(1);
  });

  it('pull: always on an unchanged tag: the pull and one more round trip (the audit and release), nothing replaced', async () => {
    const missing = await deployRecorded({}, same);
    const always = await deployRecorded({ pull: 'always' }, same);
    expect(always.reporter.outputs.changed).toBe('false');
    // The host's no-op verdict is the whole deploy (it audits and releases the lock itself, and records nothing);
    // with pull: always the pull comes after the lock, then the record rides with the audit and release.
    expect(missing.labels).toEqual(['take the deploy lock']);
    expect(always.labels.filter((l) => !missing.labels.includes(l))).toEqual([
      'docker pull reg.example/app:main',
      'record the deploy, prune old images, audit and release the lock',
    ]);
    expect(always.labels.length).toBe(missing.labels.length + 2);
    expect(always.reporter.lines.filter((w) => w.includes('can be rebuilt'))).toEqual([]);
  });

  it('pull: always on a rebuilt tag replaces every replica running the old image; the image is pulled once', async () => {
    const r = await deployRecorded({ pull: 'always' }, rebuilt);
    expect(r.reporter.outputs.changed).toBe('true');
    expect(r.labels.filter((l) => l.startsWith('docker pull'))).toHaveLength(1);
    expect(r.labels.filter((l) => l.startsWith('docker run'))).toEqual(['docker run web1', 'docker run web2']);
    expect(r.reporter.lines.join('\n')).toContain('image reg.example/app:main was rebuilt');
  });

  it('the registry password reaches the pull through stdin only', async () => {
    const r = await deployRecorded(
      { pull: 'always', 'registry-username': 'ci', 'registry-password': 'planted-s3cret' },
      same,
    );
    const pull = r.calls.find((c) => c.opts.label?.startsWith('docker pull'))!;
    expect(pull.opts.stdin).toBe('planted-s3cret');
    expect(pull.argv.join(' ')).toContain('ci');
    for (const c of r.calls) expect(c.argv.join(' ')).not.toContain('planted-s3cret');
  });
});
