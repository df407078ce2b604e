import { describe, expect, it } from 'vitest';
import { renderUpstream } from '../../../src/commands/nginx.js';
import { desiredState } from '../../../src/plan/desired.js';
import { hostPlanSteps, orderReplicaSteps, planPrep } from '../../../src/plan/host-plan.js';
import { planReplicas } from '../../../src/plan/plan.js';
import { planNginxRepairs, planRollout } from '../../../src/plan/rollout.js';
import { appConfig, deployedContainers, HOST_FACTS } from '../../support/deploy-fixtures.js';

const v1 = appConfig({ replicas: 2 });
const v2 = appConfig({ replicas: 2, image: 'reg/app:v2', version: 'v2' });
const settings = { maxUnavailable: 1, drainMs: 2000, firstPort: 8000, replicas: 2, portBase: 0, portEnv: 'PORT' };
const upstream = (ports: number[]) => renderUpstream({ app: 'web', ports });

function plans(rolling: boolean) {
  const replicas = planReplicas(desiredState(v2, HOST_FACTS), deployedContainers(v1, { ports: {} }), {
    adopt: false,
    host: 'vps1',
    strategy: rolling ? 'rolling' : 'stop-then-start',
  });
  return { replicas, rollout: planRollout(replicas, settings) };
}

describe('planPrep', () => {
  const { replicas } = plans(false);
  const facts = { image: 'reg/app:v2', pull: 'missing' as const, secretPaths: [] as string[] };

  it('pulls only when a replica is created, with the login in the same step when credentials are given', () => {
    expect(planPrep(replicas, facts)).toEqual([{ kind: 'pull', image: 'reg/app:v2', mode: 'missing', login: false }]);
    expect(planPrep(replicas, { ...facts, login: { registry: 'reg', username: 'u' } })[0]).toMatchObject({
      login: true,
    });
    const unchanged = planReplicas(desiredState(v1, HOST_FACTS), deployedContainers(v1), { adopt: false, host: 'h' });
    expect(planPrep(unchanged, facts)).toEqual([]);
    // pull: always pulled before planning.
    expect(planPrep(replicas, { ...facts, pull: 'always' })).toEqual([]);
  });

  it('installs or enables the log plugin first (after a login), and writes secrets before any container', () => {
    const steps = planPrep(replicas, {
      ...facts,
      login: { registry: 'reg', username: 'u' },
      plugin: { state: 'missing', ref: 'grafana/loki:1', alias: 'loki' },
      secretPaths: ['/s/env'],
    });
    expect(steps.map((s) => s.kind)).toEqual(['login', 'plugin', 'pull', 'secrets']);
    expect(planPrep(replicas, { ...facts, plugin: { state: 'false', ref: 'x', alias: 'loki' } })[0]).toMatchObject({
      kind: 'plugin',
      action: 'enable',
    });
    expect(planPrep(replicas, { ...facts, plugin: { state: 'true', ref: 'x', alias: 'loki' } })).toHaveLength(1);
  });
});

describe('planNginxRepairs', () => {
  const site = 'server { }\n';
  it('without container steps, rewrites only a missing or differing upstream, and installs a missing site', () => {
    const none = { steps: [], finalPorts: [8000, 8001] };
    const want = { upstream: upstream([8000, 8001]), site };
    expect(planNginxRepairs(none, { upstream: upstream([8000, 8001]), site }, want)).toEqual([]);
    expect(planNginxRepairs(none, { site }, want)).toEqual([{ kind: 'write-upstream', ports: [8000, 8001] }]);
    expect(planNginxRepairs(none, { upstream: upstream([8000, 9001]) }, want)).toEqual([
      { kind: 'write-upstream', ports: [8000, 8001] },
      { kind: 'install-site' },
    ]);
    // The user's own site: only the upstream is Dyce's.
    expect(planNginxRepairs(none, {}, { upstream: want.upstream })).toEqual([
      { kind: 'write-upstream', ports: [8000, 8001] },
    ]);
  });

  it('with a rollout the switches write the upstream; nothing to route to means nothing to install', () => {
    const { rollout } = plans(true);
    expect(planNginxRepairs(rollout, {}, { upstream: 'x', site })).toEqual([{ kind: 'install-site' }]);
    expect(planNginxRepairs({ steps: [], finalPorts: [] }, {}, { upstream: undefined, site })).toEqual([]);
  });
});

describe('hostPlanSteps: what dyce plan prints', () => {
  it('behind nginx: the batches with their alternate ports, gates, switches, drain and stop', () => {
    const { replicas, rollout } = plans(true);
    const steps = hostPlanSteps({ replicas, prep: [], replicaSteps: [], rollout, repairs: [{ kind: 'install-site' }] });
    expect(steps.map((s) => s.kind)).toEqual([
      'retire',
      'start',
      'gate',
      'switch',
      'retire',
      'start',
      'gate',
      'switch',
      'drain',
      'stop-old',
      'install-site',
    ]);
    expect(steps[1]!.description).toBe('web1: start v2 on port 8002');
    expect(steps[5]!.description).toBe('web2: start v2 on port 8003');
    expect(steps[3]!.description).toMatch(/^upstream -> 8002, 8001/);
  });

  it('without a proxy: the replica steps in the order apply runs them (removes first)', () => {
    const replicas = planReplicas(desiredState(appConfig({ replicas: 1 }), HOST_FACTS), deployedContainers(v1), {
      adopt: false,
      host: 'h',
    });
    expect(orderReplicaSteps(replicas).map((s) => s.kind)).toEqual(['remove']);
    const grown = planReplicas(
      desiredState(appConfig({ replicas: 3, image: 'reg/app:v2', version: 'v2' }), HOST_FACTS),
      deployedContainers(v1),
      {
        adopt: false,
        host: 'h',
      },
    );
    expect(orderReplicaSteps(grown).map((s) => s.kind)).toEqual(['replace', 'replace', 'create']);
  });
});
