import { describe, expect, it } from 'vitest';
import type { DeployResult } from '../../../src/deploy/engine.js';
import { deploySummary } from '../../../src/deploy/summary.js';
import { type AppConfig, desiredState } from '../../../src/plan/desired.js';
import type { ObservedContainer } from '../../../src/plan/observed.js';
import { planReplicas } from '../../../src/plan/plan.js';

const app = (version: string, replicas: number): AppConfig => ({
  app: 'web',
  image: `reg/web:${version}`,
  version,
  replicas,
  network: 'bridge',
  port: 8000,
  hostIp: '127.0.0.1',
  portEnv: 'PORT',
  env: {},
  labels: {},
  volumes: [],
  command: [],
  restart: 'unless-stopped',
  secretEnv: {},
  secretFiles: {},
  logOptions: {},
});
const facts = { stateDir: '/var/lib/dyce', portBase: 0, hmacKey: '00'.repeat(32) };

describe('deploySummary', () => {
  it('shows each replica with its action, old -> new version, port, container and time, and says replacements were stop-then-start', () => {
    const old: ObservedContainer[] = desiredState(app('v1', 3), facts).replicas.map((r) => ({
      id: `${r.replica}`.repeat(64),
      name: r.name,
      running: true,
      status: 'running',
      image: r.run.image,
      labels: r.run.labels,
      app: 'web',
      replica: r.replica,
      version: 'v1',
      specHash: r.specHash,
    }));
    const plan = planReplicas(desiredState(app('v2', 2), facts), old, { adopt: false, host: 'vps1' });
    const result: DeployResult = {
      app: 'web',
      version: 'v2',
      dryRun: false,
      changed: true,
      ms: 4200,
      hosts: [
        {
          host: 'vps1',
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
      ],
    };
    const md = deploySummary(result);
    expect(md).toContain('### Dyce deploy: web v2');
    expect(md).toContain('| vps1 | web3 | remove | v1 → (removed) |  |  | 300ms |');
    expect(md).toContain(`| vps1 | web1 | replace (stop-then-start) | v1 → v2 | 8000 | ${'a'.repeat(12)} | 1.5s |`);
    expect(md).toContain('replaced stop-then-start');
    expect(md).toContain('Changed in 4.2s.');
  });
});
