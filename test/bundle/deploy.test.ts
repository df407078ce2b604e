import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { host, hostDocker, lab, uniqueName } from '../support/lab.js';
import { type CopiedAction, copyAction, runAction } from './runner-protocol.js';

/** The committed bundle of the deploy action, run the way the runner runs it (Node 24, file commands, post step), against the lab. */
const env = lab();
const vps1 = host(env);
const name = uniqueName('bundle');
let action: CopiedAction;

const inputs = (over: Record<string, string> = {}) => ({
  hosts: `vps1 ansible_host=${vps1.address} ansible_port=${vps1.sshPort} ansible_user=root dyce_state_dir=${vps1.stateDir}`,
  'known-hosts': vps1.knownHosts,
  'ssh-private-key': readFileSync(env.sshKey, 'utf8'),
  image: `${env.sampleApp.image}:v1`,
  'registry-username': env.registry.username,
  'registry-password': env.registry.password,
  'secret-env': 'BUNDLE_TOKEN=planted-bundle-secret',
  name,
  replicas: '2',
  port: '8000',
  'host-port': '18720',
  ...over,
});

beforeAll(() => {
  action = copyAction('deploy');
});
afterAll(async () => {
  const ids = (await hostDocker(vps1, ['ps', '-aq', '--filter', `label=dyce.app=${name}`])).stdout
    .trim()
    .split('\n')
    .filter(Boolean);
  if (ids.length) await hostDocker(vps1, ['rm', '-f', ...ids]);
  action.cleanup();
});

describe('deploy bundle under Node 24 with the runner protocol', () => {
  it('declares node24 with a post step', () => {
    expect(action.yml.runs).toMatchObject({ using: 'node24', main: 'dist/index.js', post: 'dist/index.js' });
  });

  it('deploys, writes outputs and the summary, masks secrets first, and the post step finds no lock to remove', async () => {
    const { main, post } = await runAction(action, { inputs: inputs(), timeoutMs: 120_000 });
    expect(main.stderr).toBe('');
    expect(main.code).toBe(0);
    expect(main.outputs).toMatchObject({ success: 'true', changed: 'true', version: 'v1', 'rolled-back': 'false' });
    const replicas = JSON.parse(main.outputs.replicas!) as Record<string, { name: string; port: number }[]>;
    expect(replicas.vps1!.map((r) => [r.name, r.port])).toEqual([
      [`${name}1`, 18720],
      [`${name}2`, 18721],
    ]);
    expect(main.summary).toContain(`### Dyce deploy: ${name} v1`);
    // One row per host: replicas, versions, action, time, result.
    expect(main.summary).toMatch(
      new RegExp(`\\| vps1 \\| 2 \\(${name}1, ${name}2\\) \\| → v1 \\| create ×2 \\| [0-9.]+m?s \\| changed \\|`),
    );
    const lines = main.stdout.split('\n');
    for (const secret of ['planted-bundle-secret', env.registry.password]) {
      const leaks = lines.filter((l) => l.includes(secret));
      expect(leaks.length).toBeGreaterThan(0);
      expect(leaks.every((l) => l.startsWith('::add-mask::'))).toBe(true);
      expect(lines.findIndex((l) => l.includes(secret))).toBeLessThan(
        lines.findIndex((l) => !l.startsWith('::add-mask::') && l !== ''),
      );
    }
    expect(main.summary).not.toContain('planted-bundle-secret');
    expect(main.state.deploy_locks).toBeDefined();
    expect(post!.code).toBe(0);
    expect(post!.warnings).toEqual([]);
  }, 180_000);

  it('fails with outputs written and an ::error:: annotation', async () => {
    const { main } = await runAction(action, { inputs: inputs({ replicas: '0' }) });
    expect(main.code).not.toBe(0);
    expect(main.outputs.success).toBe('false');
    expect(main.errors.join('\n')).toContain('input "replicas" must be at least 1, got 0');
  });

  it("the post step removes a lock left by this run, and never another run's", async () => {
    const mine = `${vps1.stateDir}/locks/${name}-mine.lock`;
    const theirs = `${vps1.stateDir}/locks/${name}-theirs.lock`;
    for (const [dir, id] of [
      [mine, 'this-run'],
      [theirs, 'other-run'],
    ] as const) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(`${dir}/holder.json`, `${JSON.stringify({ id, who: 'x' })}\n`);
    }
    const state = JSON.stringify([
      { host: 'vps1', dir: mine, holderId: 'this-run', sudo: false },
      { host: 'vps1', dir: theirs, holderId: 'this-run', sudo: false },
    ]);
    // With the post step's state (isPost), the entry point runs the post handler.
    const { main: postRun } = await runAction(action, {
      inputs: inputs(),
      env: { STATE_isPost: 'true', STATE_deploy_locks: state },
      timeoutMs: 60_000,
    });
    expect(postRun.code).toBe(0);
    expect(postRun.warnings.join('\n')).toContain('vps1: removed the deploy lock this run had left behind');
    expect(() => readFileSync(`${mine}/holder.json`)).toThrow();
    expect(readFileSync(`${theirs}/holder.json`, 'utf8')).toContain('other-run');
  }, 120_000);
});
