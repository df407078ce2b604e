import { describe, expect, it } from 'vitest';
import type { DeployResult } from '../../../src/deploy/engine.js';
import { deploySummary } from '../../../src/github/deploy-summary.js';
import { type AppConfig, desiredState } from '../../../src/plan/desired.js';
import type { ObservedContainer } from '../../../src/plan/observed.js';
import { planReplicas } from '../../../src/plan/plan.js';
import { appConfig, deployedContainers, HOST_FACTS } from '../../support/deploy-fixtures.js';

const app = (version: string, replicas: number): AppConfig =>
  appConfig({ image: `reg/web:${version}`, version, replicas });
const facts = HOST_FACTS;

describe('deploySummary', () => {
  const old: ObservedContainer[] = deployedContainers(app('v1', 3));
  const plan = planReplicas(desiredState(app('v2', 2), facts), old, { adopt: false, host: 'vps1' });
  const result: DeployResult = {
    app: 'web',
    version: 'v2',
    dryRun: false,
    changed: true,
    failedHosts: ['vps2'],
    ms: 4200,
    hosts: [
      {
        host: 'vps1',
        state: 'changed',
        plan,
        changed: true,
        ms: 4100,
        steps: [
          { description: 'web3: remove (surplus replica)', kind: 'remove-batch', ms: 300 },
          { description: 'web1: replace v1 -> v2 on port 8000 (...)', kind: 'replace', ms: 1500 },
          { description: 'web2: replace v1 -> v2 on port 8001 (...)', kind: 'replace', ms: 1600 },
        ],
        replicas: [
          { name: 'web1', id: 'a'.repeat(64), port: 8000, state: 'running', version: 'v2' },
          { name: 'web2', id: 'b'.repeat(64), port: 8001, state: 'running', version: 'v2' },
        ],
      },
      {
        host: 'vps2',
        state: 'failed',
        plan: planReplicas(desiredState(app('v2', 2), facts), old, { adopt: false, host: 'vps2' }),
        changed: false,
        ms: 900,
        steps: [],
        replicas: [],
        error:
          'vps2: registry login to reg as bob failed (check registry-username and registry-password): denied\nmore',
      },
      {
        host: 'vps3',
        state: 'skipped',
        skipReason: 'not started: an earlier host failed (max-fail-percentage 0)',
        changed: false,
        ms: 0,
        steps: [],
        replicas: [],
      },
    ],
  };

  it('is one table with a row per host: replicas, versions, action, time and result', () => {
    const md = deploySummary(result);
    expect(md).toContain('### Dyce deploy: web v2');
    expect(md).toContain('| host | replicas | versions | action | time | result |');
    expect(md).toContain(
      '| vps1 | 2 (web1, web2) | v1 → v2 | remove ×1, replace (stop-then-start) ×2 | 4.1s | changed |',
    );
    expect(md).toContain(
      '| vps2 |  | v1 → v2 (not reached) | remove ×1, replace (stop-then-start) ×2 | 900ms | **failed** |',
    );
    expect(md).toContain('| vps3 |  |  | not started |  | skipped |');
    expect(md.match(/^\|---/gm)).toHaveLength(1);
    expect(md).toContain('replaced stop-then-start');
    expect(md).toContain('Changed in 4.2s (1 changed, 1 failed, 1 skipped).');
  });

  it('says why each failed or skipped host ended so (first line only), and lists the steps with their times', () => {
    const md = deploySummary(result);
    expect(md).toContain('**vps2** failed: vps2: registry login to reg as bob failed');
    expect(md).not.toContain('more');
    expect(md).toContain('**vps3** skipped: not started: an earlier host failed');
    expect(md).toContain('- vps1: web1: replace v1 -> v2 on port 8000 (...) (1.5s)');
  });

  it('shows a no-op host with its version and no action', () => {
    const same = planReplicas(desiredState(app('v1', 3), facts), old, { adopt: false, host: 'vps1' });
    const md = deploySummary({
      ...result,
      version: 'v1',
      changed: false,
      failedHosts: [],
      hosts: [
        {
          host: 'vps1',
          state: 'ok',
          plan: same,
          changed: false,
          ms: 80,
          steps: [],
          replicas: ['web1', 'web2', 'web3'].map((name) => ({ name, id: 'c', state: 'running', version: 'v1' })),
        },
      ],
    });
    expect(md).toContain('| vps1 | 3 (web1, web2, web3) | v1 | none | 80ms | ok |');
    expect(md).toContain('Nothing changed in 4.2s.');
  });
});
