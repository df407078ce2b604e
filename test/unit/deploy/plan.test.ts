import { describe, expect, it } from 'vitest';
import { type AppConfig, desiredState, LABEL, LOKI_LOG_DEFAULTS, secretDigest } from '../../../src/plan/desired.js';
import { type ObservedContainer, parsePsLines } from '../../../src/plan/observed.js';
import { describePlan, PlanConflict, planReplicas } from '../../../src/plan/plan.js';
import { Secret } from '../../../src/util/secret.js';
import { appConfig, deployedContainers, HOST_FACTS } from '../../support/deploy-fixtures.js';

const KEY = HOST_FACTS.hmacKey;
const facts = HOST_FACTS;

const app = (over: Partial<AppConfig> = {}): AppConfig =>
  appConfig({ app: 'melton-app', network: 'host', env: { A: '1' }, volumes: ['/srv/static:/code/static'], ...over });

/** What docker inspect would show for containers made from a desired state. */
const running = (cfg: AppConfig, opts: { stopped?: number[] } = {}): ObservedContainer[] =>
  deployedContainers(cfg, opts);

const opts = { adopt: false, host: 'vps1' };
const kinds = (p: ReturnType<typeof planReplicas>) =>
  p.steps.map((s) => `${s.kind}:${'replica' in s ? s.replica.name : s.container.name}`);

describe('desired state', () => {
  it('numbers replicas, labels them and gives each its port', () => {
    const d = desiredState(app(), { ...facts, portBase: 1000 });
    expect(d.replicas.map((r) => [r.name, r.hostPort, r.run.env.PORT])).toEqual([
      ['melton-app1', 9000, '9000'],
      ['melton-app2', 9001, '9001'],
      ['melton-app3', 9002, '9002'],
      ['melton-app4', 9003, '9003'],
    ]);
    expect(d.replicas[1]!.run.labels).toMatchObject({
      [LABEL.app]: 'melton-app',
      [LABEL.version]: 'v1',
      [LABEL.replica]: '2',
      [LABEL.port]: '9001',
      [LABEL.specHash]: d.replicas[1]!.specHash,
    });
    expect(d.replicas[0]!.run.publish).toBeUndefined();
  });

  it('publishes bridge replicas on host-port+i-1 on the given address', () => {
    const d = desiredState(app({ network: 'bridge', hostPort: 18000 }), facts);
    expect(d.replicas.map((r) => r.run.publish)).toEqual(
      [0, 1, 2, 3].map((i) => ({ ip: '127.0.0.1', hostPort: 18000 + i, containerPort: 8000 })),
    );
    expect(d.replicas[0]!.run.env.PORT).toBeUndefined();
  });

  it("merges Dyce's Loki defaults under the user's options, and only for loki", () => {
    const d = desiredState(
      app({ logDriver: 'loki', logOptions: { 'loki-retries': '5', 'loki-url': 'http://l' } }),
      facts,
    );
    expect(d.replicas[0]!.run.logOptions).toEqual({
      ...LOKI_LOG_DEFAULTS,
      'loki-retries': '5',
      'loki-url': 'http://l',
    });
    expect(
      desiredState(app({ logDriver: 'json-file', logOptions: { 'max-size': '1m' } }), facts).replicas[0]!.run
        .logOptions,
    ).toEqual({ 'max-size': '1m' });
  });

  it('puts secrets in 0600 files named by their HMAC, and never in the run spec', () => {
    const d = desiredState(
      app({ secretEnv: { DB_PASSWORD: new Secret('pw-s3cret') }, secretFiles: { 'tls.key': new Secret('KEY\nDATA') } }),
      facts,
    );
    const dir = d.secrets!.dir;
    expect(dir).toMatch(/^\/var\/lib\/dyce\/apps\/melton-app\/secrets\/[0-9a-f]{16}$/);
    expect(d.secrets!.envFile!.path).toBe(`${dir}/env`);
    expect(d.secrets!.envFile!.content.reveal()).toBe('DB_PASSWORD=pw-s3cret\n');
    expect(d.replicas[0]!.run.envFile).toBe(`${dir}/env`);
    expect(d.replicas[0]!.run.volumes).toContain(`${dir}/files/tls.key:/run/secrets/tls.key:ro`);
    expect(JSON.stringify(d.replicas)).not.toContain('s3cret');
  });

  it('hashes secrets only through an HMAC keyed per host', () => {
    const s = { DB: new Secret('guess-me') };
    const a = secretDigest(KEY, s, {});
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(secretDigest('cd'.repeat(32), s, {})).not.toBe(a);
    expect(secretDigest(KEY, { DB: new Secret('guess-me2') }, {})).not.toBe(a);
    expect(secretDigest(KEY, {}, {})).toBeUndefined();
    const h1 = desiredState(app({ secretEnv: s }), facts).replicas[0]!.specHash;
    const h2 = desiredState(app({ secretEnv: s }), { ...facts, hmacKey: 'cd'.repeat(32) }).replicas[0]!.specHash;
    expect(h1).not.toBe(h2);
  });

  it('keeps the spec hash stable across runs and changes it with any setting', () => {
    const h = (c: AppConfig) => desiredState(c, facts).replicas[0]!.specHash;
    expect(h(app())).toBe(h(app()));
    expect(h(app({ env: { A: '1' } }))).toBe(h(app({ env: { A: '1' } })));
    for (const c of [
      app({ env: { A: '2' } }),
      app({ image: 'reg/app:v2', version: 'v2' }),
      app({ volumes: [] }),
      app({ restart: 'always' }),
      app({ command: ['x'] }),
      app({ labels: { team: 'a' } }),
      app({ logDriver: 'loki' }),
      app({ secretEnv: { S: new Secret('1') } }),
    ])
      expect(h(c)).not.toBe(h(app()));
  });
});

describe('planReplicas', () => {
  it('creates every replica on an empty host', () => {
    const p = planReplicas(desiredState(app(), facts), [], opts);
    expect(kinds(p)).toEqual(['create:melton-app1', 'create:melton-app2', 'create:melton-app3', 'create:melton-app4']);
    expect(p.changed).toBe(true);
  });

  it('changes nothing when the spec is unchanged', () => {
    const p = planReplicas(desiredState(app(), facts), running(app()), opts);
    expect(p.steps.every((s) => s.kind === 'keep')).toBe(true);
    expect(p.changed).toBe(false);
    expect(describePlan(p, 'vps1')).toEqual(['vps1: melton-app is up to date (4 replicas unchanged)']);
  });

  it('replaces every replica when the env changes, stop-then-start, and says so', () => {
    const p = planReplicas(desiredState(app({ env: { A: '2' } }), facts), running(app()), opts);
    expect(kinds(p)).toEqual([
      'replace:melton-app1',
      'replace:melton-app2',
      'replace:melton-app3',
      'replace:melton-app4',
    ]);
    expect(p.steps[0]).toMatchObject({ strategy: 'stop-then-start', reason: 'spec changed' });
    expect(describePlan(p, 'vps1').join('\n')).toContain('stop-then-start');
  });

  it('names the version change', () => {
    const p = planReplicas(desiredState(app({ image: 'reg/app:v2', version: 'v2' }), facts), running(app()), opts);
    expect(p.steps[0]).toMatchObject({ kind: 'replace', reason: 'version v1 -> v2' });
    expect(p.previousVersions).toEqual(['v1']);
  });

  it('scales 4 -> 2 by removing replicas 3 and 4 first, and 2 -> 4 by adding two', () => {
    const down = planReplicas(desiredState(app({ replicas: 2 }), facts), running(app()), opts);
    expect(kinds(down)).toEqual(['remove:melton-app3', 'remove:melton-app4', 'keep:melton-app1', 'keep:melton-app2']);
    expect(down.steps[0]).toMatchObject({ reason: 'surplus replica' });
    const up = planReplicas(desiredState(app(), facts), running(app({ replicas: 2 })), opts);
    expect(kinds(up)).toEqual(['keep:melton-app1', 'keep:melton-app2', 'create:melton-app3', 'create:melton-app4']);
  });

  it('starts a stopped replica whose spec is unchanged', () => {
    const p = planReplicas(desiredState(app(), facts), running(app(), { stopped: [2] }), opts);
    expect(kinds(p)).toEqual(['keep:melton-app1', 'start:melton-app2', 'keep:melton-app3', 'keep:melton-app4']);
    expect(p.changed).toBe(true);
  });

  const ansible: ObservedContainer = {
    id: 'f'.repeat(64),
    name: 'melton-app2',
    running: true,
    status: 'running',
    image: 'meltondevops/melton-app-server:v1.4.1',
    labels: {},
  };

  it('refuses an unlabelled container holding a replica name, by name, and plans nothing', () => {
    let err: unknown;
    try {
      planReplicas(desiredState(app(), facts), [ansible], opts);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PlanConflict);
    const e = err as PlanConflict;
    expect(e.message).toBe("vps1: containers are in the way of melton-app's replicas; nothing was changed");
    expect(e.details.join('\n')).toContain(
      'melton-app2 (ffffffffffff, meltondevops/melton-app-server:v1.4.1, running) has no Dyce labels',
    );
    expect(e.details.join('\n')).toContain('adopt: true');
  });

  it('adopts it when asked (replaced like a changed replica)', () => {
    const p = planReplicas(desiredState(app(), facts), [ansible], { ...opts, adopt: true });
    expect(kinds(p)).toEqual(['create:melton-app1', 'replace:melton-app2', 'create:melton-app3', 'create:melton-app4']);
    expect(p.steps[1]).toMatchObject({
      reason: 'adopted (was meltondevops/melton-app-server:v1.4.1, not made by Dyce)',
    });
  });

  it("never adopts another Dyce app's container", () => {
    const other = { ...ansible, app: 'melton', labels: { [LABEL.app]: 'melton' } };
    expect(() => planReplicas(desiredState(app(), facts), [other], { ...opts, adopt: true })).toThrow(PlanConflict);
  });

  it('ignores unrelated containers whose names merely contain the app name', () => {
    const unrelated = { ...ansible, name: 'old-melton-app2' };
    const p = planReplicas(desiredState(app({ replicas: 1 }), facts), [unrelated], opts);
    expect(kinds(p)).toEqual(['create:melton-app1']);
  });

  it("removes this app's containers with names that are not replica names", () => {
    const stray = { ...running(app())[0]!, name: 'melton-app1.next', id: 'e'.repeat(64) };
    const p = planReplicas(desiredState(app(), facts), [...running(app()), stray], opts);
    expect(kinds(p)[0]).toBe('remove:melton-app1.next');
    expect(p.steps[0]).toMatchObject({ reason: 'not a replica name' });
  });
});

describe('parsePsLines', () => {
  it("reads the observe script's tab-separated lines, labels included", () => {
    const id = 'a'.repeat(64);
    const text = `${id}\tmelton-app1\trunning\treg/app:v1\tmelton-app\t1\tv1\thash1\t8001\n${'b'.repeat(64)}\tmelton-app2\texited\treg/old:1\t\t\t\t\t\n`;
    const [a, b] = parsePsLines(text, 'vps1');
    expect(a).toEqual({
      id,
      name: 'melton-app1',
      running: true,
      status: 'running',
      image: 'reg/app:v1',
      app: 'melton-app',
      replica: 1,
      version: 'v1',
      specHash: 'hash1',
      port: 8001,
      labels: {
        [LABEL.app]: 'melton-app',
        [LABEL.replica]: '1',
        [LABEL.version]: 'v1',
        [LABEL.specHash]: 'hash1',
        [LABEL.port]: '8001',
      },
    });
    expect(b).toMatchObject({ name: 'melton-app2', running: false, status: 'exited', labels: {} });
    expect(b!.app).toBeUndefined();
    expect(parsePsLines('', 'vps1')).toEqual([]);
  });

  it('fails clearly on anything else', () => {
    expect(() => parsePsLines('Cannot connect to the Docker daemon', 'vps1')).toThrow(
      'vps1: unexpected docker ps output',
    );
  });
});
