import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployRules, deploySpec } from '../../src/config/actions/deploy.js';
import { parseInputs } from '../../src/config/input-spec.js';
import { runDeployInputs } from '../../src/deploy/entry.js';
import { RecordingReporter } from '../../src/github/reporter.js';
import type { LabEnv, LabHost } from '../../src/lab/env.js';
import { runDyce } from '../support/dyce-cli.js';
import { host, hostDocker, lab, tempDir, uniqueName } from '../support/lab.js';
import { startSshd, type ThrowawaySshd } from '../support/sshd.js';

/**
 * One SSH login per host for a whole run, and at most 3 sessions (remote shells) there: counted in the auth log of
 * throwaway sshds (LogLevel VERBOSE: one "Accepted publickey" per login, one "Starting session" per session
 * channel). Each sshd stands for a host and reaches a lab VPS's dockerd (SetEnv DOCKER_HOST), with its own state
 * dir and port base.
 */
let env: LabEnv;
let vpss: LabHost[];
let dir: string;
const sshds: ThrowawaySshd[] = [];
const APP = uniqueName('sess');

beforeAll(async () => {
  env = lab();
  vpss = [host(env, 'vps1'), host(env, 'vps2')];
  dir = tempDir('dyce-sess-');
  const pub = readFileSync(`${env.sshKey}.pub`, 'utf8').trim();
  for (let i = 0; i < 2; i++)
    sshds.push(
      await startSshd({
        hostKeyTypes: ['ed25519'],
        authorizedKeys: { deploy: pub, root: pub },
        extraConfig: [`SetEnv DOCKER_HOST=${vpss[i]!.dockerHost}`],
      }),
    );
});

afterAll(async () => {
  for (const vps of vpss) await hostDocker(vps, ['rm', '-f', `${APP}-a1`, `${APP}-a2`]).catch(() => {});
  await Promise.all(sshds.map((s) => s.stop()));
});

/** Logins and sessions each sshd logged since `marks` (log offsets). */
function counts(marks: number[]): { logins: number; sessions: number }[] {
  return sshds.map((s, k) => {
    const text = readFileSync(s.log, 'utf8').slice(marks[k]);
    return {
      logins: (text.match(/Accepted publickey for /g) ?? []).length,
      sessions: (text.match(/Starting session: /g) ?? []).length,
    };
  });
}
const marks = () => sshds.map((s) => readFileSync(s.log, 'utf8').length);

function inventory(user: string): string {
  return sshds
    .map(
      (s, k) =>
        `h${k + 1} ansible_host=127.0.0.1 ansible_port=${s.port} ansible_user=${user} ` +
        `dyce_state_dir=${join(dir, `state${k + 1}`)} dyce_port_base=${vpss[k]!.portBase}`,
    )
    .join('\n');
}
const knownHosts = () => sshds.map((s) => s.hostKeys.ed25519!.knownHosts).join('\n');

describe('one SSH login per host per run', () => {
  it('a playbook then a 2-replica image deploy, then its no-op rerun: 1 login and at most 3 sessions per host each', async () => {
    const playbook = join(dir, 'prepare.yml');
    writeFileSync(
      playbook,
      `- hosts: all
  gather_facts: true
  become: true
  tasks:
    - name: no leftover container
      docker_container:
        name: ${APP}-gone-{{ inventory_hostname }}
        state: absent
    - name: nor this one
      docker_container:
        name: ${APP}-gone2-{{ inventory_hostname }}
        state: absent
`,
    );
    const raw = {
      hosts: inventory('deploy'),
      'known-hosts': knownHosts(),
      'ssh-private-key': readFileSync(env.sshKey, 'utf8'),
      image: `${env.sampleApp.image}:v1`,
      'registry-username': env.registry.username,
      'registry-password': env.registry.password,
      name: `${APP}-a`,
      replicas: '2',
      port: String(env.sampleApp.port),
      'host-port': String(26000 + Math.floor(Math.random() * 800)),
      parallel: '2',
      playbook,
    };
    for (const round of ['first', 'no-op']) {
      const before = marks();
      const reporter = new RecordingReporter();
      const r = await runDeployInputs(parseInputs(deploySpec, raw, deployRules), reporter).catch((e: unknown) => {
        throw new Error(`${round}: ${(e as Error).message}\n${reporter.lines.join('\n')}`);
      });
      expect(r.deploy?.failedHosts, round).toEqual([]);
      expect(r.playbook?.exitCode, round).toBe(0);
      if (round === 'first') expect(r.deploy?.changed).toBe(true);
      else expect(r.deploy?.changed).toBe(false);
      for (const c of counts(before)) {
        expect(c.logins, round).toBe(1);
        expect(c.sessions, round).toBeGreaterThanOrEqual(1);
        expect(c.sessions, round).toBeLessThanOrEqual(3);
      }
    }
  });

  it('dyce play as a process: 1 login and at most 3 sessions per host', async () => {
    const playbook = join(dir, 'play.yml');
    writeFileSync(
      playbook,
      `- hosts: all
  gather_facts: true
  tasks:
    - docker_container:
        name: ${APP}-gone-{{ inventory_hostname }}
        state: absent
    - docker_container:
        name: ${APP}-gone2-{{ inventory_hostname }}
        state: absent
`,
    );
    const inv = join(dir, 'inventory');
    writeFileSync(inv, `${inventory('root')}\n`);
    const kh = join(dir, 'known_hosts');
    writeFileSync(kh, `${knownHosts()}\n`);
    const before = marks();
    const r = await runDyce('play', ['-i', inv, '--known-hosts-file', kh, '--private-key', env.sshKey, playbook], {});
    expect(r.code, r.stderr).toBe(0);
    for (const c of counts(before)) {
      expect(c.logins).toBe(1);
      expect(c.sessions).toBeGreaterThanOrEqual(1);
      expect(c.sessions).toBeLessThanOrEqual(3);
    }
  });
});
