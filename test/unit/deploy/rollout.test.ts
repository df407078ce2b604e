import { describe, expect, it } from 'vitest';
import { type AppConfig, desiredState, LABEL } from '../../../src/plan/desired.js';
import type { ObservedContainer } from '../../../src/plan/observed.js';
import { describePlan, planReplicas } from '../../../src/plan/plan.js';
import {
  describeRolloutStep,
  nextPort,
  planRollback,
  planRollout,
  type Rollout,
  type RolloutSettings,
  type RolloutStep,
  retiredName,
  slotPorts,
  withPort,
} from '../../../src/plan/rollout.js';
import { appConfig, deployedContainers, HOST_FACTS } from '../../support/deploy-fixtures.js';

const facts = HOST_FACTS;
const app = appConfig;

/** Containers as a deploy of `cfg` left them, each on the port given (default: the slot's first port). */
const deployed = (cfg: AppConfig, ports: Record<number, number> = {}, stopped: number[] = []): ObservedContainer[] =>
  deployedContainers(cfg, { ports, stopped });

const settings = (over: Partial<RolloutSettings> = {}): RolloutSettings => ({
  maxUnavailable: 1,
  drainMs: 2000,
  firstPort: 8000,
  replicas: 4,
  portBase: 0,
  portEnv: 'PORT',
  ...over,
});

function rollout(from: AppConfig, to: AppConfig, over: Partial<RolloutSettings> = {}, observed = deployed(from)) {
  const plan = planReplicas(desiredState(to, facts), observed, { adopt: false, host: 'vps1' });
  return planRollout(plan, settings({ replicas: to.replicas, ...over }));
}

const shape = (r: Rollout) => r.steps.map(shapeOf);

function shapeOf(s: RolloutStep): string {
  switch (s.kind) {
    case 'retire':
      return `retire ${s.name}`;
    case 'start':
      return `${s.mode} ${s.name}@${s.port}`;
    case 'gate':
      return `gate ${s.targets.map((t) => `${t.name}@${t.port}`).join(',')}`;
    case 'switch':
      return `switch ${s.ports.join(',')}`;
    case 'drain':
      return `drain ${s.ms} ${s.ports.join(',')}`;
    case 'stop-old':
      return `stop ${s.names.join(',')}`;
  }
}

const old = (n: number) => retiredName(`web${n}`, `${n}`.repeat(12));

describe('slot ports', () => {
  it('slot i alternates between host-port+i-1 and host-port+replicas+i-1, plus the port base', () => {
    const s = settings({ portBase: 1000 });
    expect([1, 2, 3, 4].map((i) => slotPorts(s, i))).toEqual([
      [9000, 9004],
      [9001, 9005],
      [9002, 9006],
      [9003, 9007],
    ]);
    expect(nextPort(s, 2, 9001)).toBe(9005);
    expect(nextPort(s, 2, 9005)).toBe(9001);
    // Unknown (adopted) port: assumed to be the first one.
    expect(nextPort(s, 2, undefined)).toBe(9005);
  });

  it('moves a bridge replica by its published port, a host-network one by its port env; the spec hash label stays', () => {
    const [bridge] = desiredState(app(), facts).replicas;
    const moved = withPort(bridge!.run, 8004, 'PORT');
    expect(moved.publish).toEqual({ ip: '127.0.0.1', hostPort: 8004, containerPort: 8000 });
    expect(moved.labels[LABEL.port]).toBe('8004');
    expect(moved.labels[LABEL.specHash]).toBe(bridge!.run.labels[LABEL.specHash]);
    expect(bridge!.run.publish?.hostPort).toBe(8000);
    const [host] = desiredState(app({ network: 'host', portEnv: 'APP_PORT' }), facts).replicas;
    const h = withPort(host!.run, 8004, 'APP_PORT');
    expect(h.env.APP_PORT).toBe('8004');
    expect(h.publish).toBeUndefined();
    expect(host!.run.env.APP_PORT).toBe('8000');
  });
});

describe('planRollout', () => {
  it('replaces 4 replicas one at a time: start on the alternate port, gate, switch; one drain and ONE stop at the end', () => {
    const r = rollout(app(), app({ image: 'reg/app:v2', version: 'v2' }));
    expect(shape(r)).toEqual([
      'retire web1',
      'run web1@8004',
      'gate web1@8004',
      'switch 8004,8001,8002,8003',
      'retire web2',
      'run web2@8005',
      'gate web2@8005',
      'switch 8004,8005,8002,8003',
      'retire web3',
      'run web3@8006',
      'gate web3@8006',
      'switch 8004,8005,8006,8003',
      'retire web4',
      'run web4@8007',
      'gate web4@8007',
      'switch 8004,8005,8006,8007',
      'drain 2000 8000,8001,8002,8003',
      `stop ${old(1)},${old(2)},${old(3)},${old(4)}`,
    ]);
    expect(r.initialPorts).toEqual([8000, 8001, 8002, 8003]);
    expect(r.finalPorts).toEqual([8004, 8005, 8006, 8007]);
    expect(r.commitIndex).toBe(r.steps.length - 1);
    // Every upstream in between has all 4 slots: nothing less than N serves at any time.
    for (const s of r.steps) if (s.kind === 'switch') expect(s.ports).toHaveLength(4);
    // Exactly one stop command for all old replicas: their stop timeouts cannot add up.
    expect(r.steps.filter((s) => s.kind === 'stop-old')).toHaveLength(1);
  });

  it('the new containers carry the new version, the moved port and the retired name is unique per container', () => {
    const r = rollout(app(), app({ image: 'reg/app:v2', version: 'v2' }));
    const starts = r.steps.filter((s) => s.kind === 'start');
    expect(starts.map((s) => [s.run.image, s.run.publish?.hostPort, s.run.labels[LABEL.version]])).toEqual([
      ['reg/app:v2', 8004, 'v2'],
      ['reg/app:v2', 8005, 'v2'],
      ['reg/app:v2', 8006, 'v2'],
      ['reg/app:v2', 8007, 'v2'],
    ]);
    const retires = r.steps.filter((s) => s.kind === 'retire');
    expect(retires[0]).toEqual({ kind: 'retire', slot: 1, name: 'web1', to: 'web1-old-111111111111', version: 'v1' });
    expect(new Set(retires.map((s) => s.to)).size).toBe(4);
  });

  it('comes back to the first ports on the next version (alternation)', () => {
    const v2 = app({ image: 'reg/app:v2', version: 'v2' });
    const observed = deployed(v2, { 1: 8004, 2: 8005, 3: 8006, 4: 8007 });
    const r = rollout(v2, app({ image: 'reg/app:v3', version: 'v3' }), {}, observed);
    expect(r.initialPorts).toEqual([8004, 8005, 8006, 8007]);
    expect(r.finalPorts).toEqual([8000, 8001, 8002, 8003]);
  });

  it('a mix of ports (an earlier partial rollout) moves each slot to the port it does not hold', () => {
    const v2 = app({ image: 'reg/app:v2', version: 'v2' });
    const r = rollout(v2, app({ image: 'reg/app:v3', version: 'v3' }), {}, deployed(v2, { 1: 8004, 3: 8006 }));
    expect(r.initialPorts).toEqual([8004, 8001, 8006, 8003]);
    expect(r.finalPorts).toEqual([8000, 8005, 8002, 8007]);
  });

  it('max-unavailable 2 replaces two at a time (one gate, one switch per batch); 3 leaves a batch of one', () => {
    const to = app({ image: 'reg/app:v2', version: 'v2' });
    expect(shape(rollout(app(), to, { maxUnavailable: 2 }))).toEqual([
      'retire web1',
      'run web1@8004',
      'retire web2',
      'run web2@8005',
      'gate web1@8004,web2@8005',
      'switch 8004,8005,8002,8003',
      'retire web3',
      'run web3@8006',
      'retire web4',
      'run web4@8007',
      'gate web3@8006,web4@8007',
      'switch 8004,8005,8006,8007',
      'drain 2000 8000,8001,8002,8003',
      `stop ${old(1)},${old(2)},${old(3)},${old(4)}`,
    ]);
    const three = shape(rollout(app(), to, { maxUnavailable: 3 }));
    expect(three.filter((s) => s.startsWith('gate'))).toEqual(['gate web1@8004,web2@8005,web3@8006', 'gate web4@8007']);
    const all = shape(rollout(app(), to, { maxUnavailable: 10 }));
    expect(all.filter((s) => s.startsWith('switch'))).toEqual(['switch 8004,8005,8006,8007']);
  });

  it('an unchanged spec has nothing to do', () => {
    const r = rollout(app(), app());
    expect(r.steps).toEqual([]);
    expect(r.initialPorts).toEqual(r.finalPorts);
    expect(planRollback(r, 0)).toEqual([]);
  });

  it('first deploy: new replicas on the first ports, gated, switched in; nothing to drain or stop', () => {
    const r = rollout(app(), app({ replicas: 2 }), { replicas: 2 }, []);
    expect(shape(r)).toEqual([
      'run web1@8000',
      'gate web1@8000',
      'switch 8000',
      'run web2@8001',
      'gate web2@8001',
      'switch 8000,8001',
    ]);
    expect(r.initialPorts).toEqual([]);
    expect(r.commitIndex).toBe(r.steps.length);
  });

  it('scale 4 -> 2 with the same spec: surplus out of the upstream, drained, stopped (no gate)', () => {
    const r = rollout(app(), app({ replicas: 2 }), { replicas: 2 }, deployed(app()));
    expect(shape(r)).toEqual(['switch 8000,8001', 'drain 2000 8002,8003', 'stop web3,web4']);
    expect(r.initialPorts).toEqual([8000, 8001, 8002, 8003]);
  });

  it('scale 2 -> 4: the two new slots are added; the kept ones are never touched', () => {
    const two = app({ replicas: 2 });
    const r = rollout(two, app(), {}, deployed(two));
    expect(shape(r)).toEqual([
      'run web3@8002',
      'gate web3@8002',
      'switch 8000,8001,8002',
      'run web4@8003',
      'gate web4@8003',
      'switch 8000,8001,8002,8003',
    ]);
  });

  it('a new version while scaling down: surplus leaves first (its ports are the new alternates), then the rollout', () => {
    const r = rollout(app(), app({ replicas: 2, image: 'reg/app:v2', version: 'v2' }), { replicas: 2 });
    // With 2 replicas the slots alternate between 8000/8002 and 8001/8003.
    expect(shape(r)).toEqual([
      'switch 8000,8001',
      'drain 2000 8002,8003',
      'stop web3,web4',
      'retire web1',
      'run web1@8002',
      'gate web1@8002',
      'switch 8002,8001',
      'retire web2',
      'run web2@8003',
      'gate web2@8003',
      'switch 8002,8003',
      'drain 2000 8000,8001',
      `stop ${old(1)},${old(2)}`,
    ]);
    // A rollback restores the two remaining old replicas (the surplus ones are gone by then).
    expect(planRollback(r, 5)[0]).toMatchObject({ kind: 'switch', ports: [8000, 8001] });
  });

  it('a stopped replica is replaced too, but never in the upstream before its successor', () => {
    const r = rollout(app(), app({ image: 'reg/app:v2', version: 'v2' }), {}, deployed(app(), {}, [2]));
    expect(r.initialPorts).toEqual([8000, 8002, 8003]);
    expect(shape(r).slice(4, 8)).toEqual([
      'retire web2',
      'run web2@8005',
      'gate web2@8005',
      'switch 8004,8005,8002,8003',
    ]);
  });

  it('a stopped replica with the desired spec is started, gated and switched in', () => {
    const r = rollout(app(), app(), {}, deployed(app(), {}, [3]));
    expect(shape(r)).toEqual(['start web3@8002', 'gate web3@8002', 'switch 8000,8001,8002,8003']);
  });

  it('host networking: the new replica is told its alternate port through port-env', () => {
    const from = app({ network: 'host' });
    const r = rollout(from, app({ network: 'host', image: 'reg/app:v2', version: 'v2' }));
    const first = r.steps.find((s) => s.kind === 'start');
    expect(first?.run.env.PORT).toBe('8004');
  });

  it('refuses a max-unavailable below 1', () => {
    expect(() => rollout(app(), app({ version: 'v2' }), { maxUnavailable: 0 })).toThrow(/max-unavailable/);
  });
});

describe('planRollback', () => {
  const r = rollout(app(), app({ image: 'reg/app:v2', version: 'v2' }));
  const at = (k: string) => shape(r).indexOf(k);

  it('a failed first gate: the new replica is removed and the old one gets its name back; nginx was never touched', () => {
    expect(planRollback(r, at('gate web1@8004'))).toEqual([
      { kind: 'remove-new', names: ['web1'] },
      { kind: 'restore', renames: [{ from: old(1), to: 'web1' }] },
    ]);
  });

  it('a failed docker run is undone too (the container may exist half-made)', () => {
    expect(planRollback(r, at('run web1@8004'))).toEqual([
      { kind: 'remove-new', names: ['web1'] },
      { kind: 'restore', renames: [{ from: old(1), to: 'web1' }] },
    ]);
    expect(planRollback(r, at('retire web1'))).toEqual([{ kind: 'restore', renames: [{ from: old(1), to: 'web1' }] }]);
  });

  it('a failed third gate: the upstream goes back to every old port, then drain, then every new replica goes', () => {
    expect(planRollback(r, at('gate web3@8006'))).toEqual([
      { kind: 'switch', ports: [8000, 8001, 8002, 8003], reason: expect.stringContaining('rollback') },
      { kind: 'drain', ms: 2000, ports: [8004, 8005, 8006] },
      { kind: 'remove-new', names: ['web1', 'web2', 'web3'] },
      {
        kind: 'restore',
        renames: [
          { from: old(1), to: 'web1' },
          { from: old(2), to: 'web2' },
          { from: old(3), to: 'web3' },
        ],
      },
    ]);
  });

  it('a failed switch is undone (the file may have been written)', () => {
    const k = at('switch 8004,8001,8002,8003');
    expect(planRollback(r, k)[0]).toMatchObject({ kind: 'switch', ports: [8000, 8001, 8002, 8003] });
  });

  it('an interruption during the final drain still rolls back (old replicas are all running)', () => {
    expect(planRollback(r, at('drain 2000 8000,8001,8002,8003')).map((s) => s.kind)).toEqual([
      'switch',
      'drain',
      'remove-new',
      'restore',
    ]);
  });

  it('a batch whose rename failed in one slot: that slot is not undone (its name is still the old replica)', () => {
    const two = rollout(app(), app({ image: 'reg/app:v2', version: 'v2' }), { maxUnavailable: 2 });
    const k = shape(two).indexOf('run web2@8005');
    const skipped = new Set([shape(two).indexOf('retire web2'), k]);
    expect(planRollback(two, k, skipped)).toEqual([
      { kind: 'remove-new', names: ['web1'] },
      { kind: 'restore', renames: [{ from: old(1), to: 'web1' }] },
    ]);
  });

  it('steps that never began (a switch after a failed gate, while the next batch started) are not undone', () => {
    const g = at('gate web1@8004');
    const next = at('run web2@8005');
    const skipped = new Set([g + 1]);
    expect(planRollback(r, next, skipped).map((s) => s.kind)).toEqual(['remove-new', 'restore']);
    expect(planRollback(r, next).map((s) => s.kind)).toEqual(['switch', 'drain', 'remove-new', 'restore']);
  });

  it('once the old replicas are being stopped, the rollout is committed', () => {
    expect(planRollback(r, r.commitIndex)).toEqual([]);
    expect(planRollback(r, r.steps.length)).toEqual([]);
  });

  it('for every prefix: the rollback removes exactly the started containers and restores exactly the retired names', () => {
    for (let k = 0; k < r.commitIndex; k++) {
      const done = r.steps.slice(0, k + 1);
      const back = planRollback(r, k);
      const started = done.flatMap((s) => (s.kind === 'start' ? [s.name] : []));
      const retired = done.flatMap((s) => (s.kind === 'retire' ? [s.to] : []));
      expect(back.flatMap((s) => (s.kind === 'remove-new' ? s.names : []))).toEqual(started);
      expect(back.flatMap((s) => (s.kind === 'restore' ? s.renames.map((x) => x.from) : []))).toEqual(retired);
      const switched = done.some((s) => s.kind === 'switch');
      expect(back[0]?.kind === 'switch').toBe(switched);
      // Removal only after the upstream no longer points at the new replicas.
      const sw = back.findIndex((s) => s.kind === 'switch');
      const rm = back.findIndex((s) => s.kind === 'remove-new');
      if (sw >= 0 && rm >= 0) expect(sw).toBeLessThan(rm);
    }
  });

  it('a scale-up rolled back removes the new slots; a started container is stopped again', () => {
    const two = app({ replicas: 2 });
    const up = rollout(two, app(), {}, deployed(two));
    expect(planRollback(up, 3)).toEqual([
      { kind: 'switch', ports: [8000, 8001], reason: expect.any(String) },
      { kind: 'drain', ms: 2000, ports: [8002, 8003] },
      { kind: 'remove-new', names: ['web3', 'web4'] },
    ]);
    const st = rollout(app(), app(), {}, deployed(app(), {}, [3]));
    expect(planRollback(st, 1)).toEqual([{ kind: 'stop', names: ['web3'] }]);
  });
});

describe('describeRolloutStep', () => {
  it('says what each step does in one line', () => {
    const r = rollout(app(), app({ image: 'reg/app:v2', version: 'v2' }));
    const lines = r.steps.map(describeRolloutStep);
    expect(lines[0]).toBe('web1: renamed web1-old-111111111111 (v1, keeps serving until the switch)');
    expect(lines[1]).toBe('web1: start v2 on port 8004');
    expect(lines.at(-1)).toMatch(/in parallel/);
  });
});

describe('plan strategy', () => {
  it('behind a proxy the plan says rolling, and never that the replica is down', () => {
    const plan = planReplicas(desiredState(app({ version: 'v2', image: 'reg/app:v2' }), facts), deployed(app()), {
      adopt: false,
      host: 'vps1',
      strategy: 'rolling',
    });
    const replace = plan.steps.find((s) => s.kind === 'replace');
    expect(replace && 'strategy' in replace ? replace.strategy : undefined).toBe('rolling');
    const line = describePlan(plan, 'vps1')[1]!;
    expect(line).toMatch(/rolling: the old replica serves until its successor passes its health gate/);
    expect(line).not.toMatch(/down/);
  });
});
