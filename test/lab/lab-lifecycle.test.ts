import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { labDown, labStatus, labUp } from '../../src/lab/lab.js';
import { httpStatus, sshBanner } from '../../src/lab/probes.js';
import { lab, ssh } from '../support/lab.js';

/** Whether a process is alive; a zombie (exited, not yet reaped by its parent, e.g. the test runner) is not. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('lab lifecycle', () => {
  it('gives every host its own dockerd: different data roots, and the same port on each host does not collide', async () => {
    const env = lab();
    expect(env.hosts.length).toBeGreaterThanOrEqual(2);
    const roots = await Promise.all(
      env.hosts.map((h) => ssh(env, h, 'docker info --format "{{.DockerRootDir}}"').then((r) => r.stdout.trim())),
    );
    expect(new Set(roots).size).toBe(env.hosts.length);
    expect(roots).toEqual(env.hosts.map((h) => h.dockerDataRoot));
    const names = env.hosts.map((h) => `lifecycle-${h.name}`);
    const image = `${env.sampleApp.image}:v1`;
    try {
      const runs = await Promise.all(
        env.hosts.map((h, i) =>
          ssh(
            env,
            h,
            `export DOCKER_CONFIG=$(mktemp -d) && docker login -u ${env.registry.username} --password-stdin ${env.registry.url} >/dev/null 2>&1 && docker rm -f ${names[i]} >/dev/null 2>&1; docker run -d --name ${names[i]} -p 127.0.0.1:${h.portBase + 8600}:8000 ${image} >/dev/null && rm -rf "$DOCKER_CONFIG"`,
            { stdin: env.registry.password },
          ),
        ),
      );
      for (const r of runs) expect(r.stderr).toBe('');
      expect(runs.map((r) => r.code)).toEqual(env.hosts.map(() => 0));
      const ports = env.hosts.map((h) => h.portBase + 8600);
      expect(new Set(ports).size).toBe(env.hosts.length);
    } finally {
      await Promise.all(env.hosts.map((h, i) => ssh(env, h, `docker rm -f ${names[i]} >/dev/null 2>&1 || true`)));
    }
  });

  it('down stops exactly what the lab started and nothing else; up brings it back; a second up starts nothing', async () => {
    const env = lab();
    const sentinel = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
    sentinel.unref();
    const runnerSocketUp = (await httpStatus({ socketPath: '/var/run/docker.sock' }, '/_ping')) === 200;
    try {
      const before = labStatus();
      expect(before.length).toBeGreaterThan(0);
      expect(before.every((s) => s.running)).toBe(true);
      const stopped = await labDown();
      expect([...stopped].sort()).toEqual(before.map((s) => s.name).sort());
      for (const s of before) expect(alive(s.pid), s.name).toBe(false);
      expect(alive(sentinel.pid!)).toBe(true);
      for (const h of env.hosts) expect(await sshBanner(h.sshPort)).toBe(false);
      expect(await httpStatus({ port: 5000 }, '/v2/')).toBeUndefined();
      // A daemon the lab did not start (e.g. a developer's own dockerd) is left running.
      const runnerStarted = before.some((s) => s.name === 'runner-dockerd');
      if (runnerSocketUp && !runnerStarted)
        expect(await httpStatus({ socketPath: '/var/run/docker.sock' }, '/_ping')).toBe(200);

      const stamp = join(env.dir, 'sample-app.stamp');
      const stampTime = statSync(stamp).mtimeMs;
      await labUp({ hosts: env.hosts.length });
      const first = labStatus();
      expect(first.every((s) => s.running)).toBe(true);
      await labUp({ hosts: env.hosts.length });
      const second = labStatus();
      expect(second.map((s) => `${s.name}:${s.pid}`)).toEqual(first.map((s) => `${s.name}:${s.pid}`));
      // Images were not rebuilt: the registry still had them.
      expect(statSync(stamp).mtimeMs).toBe(stampTime);
      const r = await ssh(env, env.hosts[0]!, 'docker ps -q >/dev/null && echo ok');
      expect(r.stdout.trim()).toBe('ok');
    } finally {
      process.kill(sentinel.pid!, 'SIGKILL');
      // Whatever failed above, leave the lab up for the tests that run after this one.
      await labUp({ hosts: env.hosts.length });
    }
  });
});
