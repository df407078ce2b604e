import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { LabEnv, LabMachine } from '../../src/lab/env.js';
import { runLocal } from '../../src/remote/local.js';
import { DOCKER_BIN, machines, ssh, uniqueName } from '../support/lab.js';

/** What a playbook could change on a machine: its packages, users, groups, firewall rules and sudoers. */
async function machineState(): Promise<Record<string, string>> {
  const read = async (argv: string[]) => (await runLocal(argv)).stdout;
  // The runner's engine adds and removes its own DOCKER chains as containers come and go; those are not ours.
  const rules = (s: string) =>
    s
      .split('\n')
      .filter((l) => !/DOCKER/.test(l))
      .join('\n');
  return {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
    packages: await read(['dpkg-query', '-W', '-f=${Package} ${Version}\n']),
    passwd: await read(['cat', '/etc/passwd']),
    group: await read(['cat', '/etc/group']),
    sudoers: await read(['ls', '/etc/sudoers.d']),
    iptables: rules(await read(['iptables', '-S'])),
    nat: rules(await read(['iptables', '-t', 'nat', '-S'])),
    ip6tables: rules(await read(['ip6tables', '-S'])),
  };
}

async function on(env: LabEnv, m: LabMachine, script: string, user = 'root', stdin?: string) {
  const r = await ssh(env, m, script, { user, ...(stdin === undefined ? {} : { stdin }) });
  return { ...r, out: r.stdout.trim() };
}

describe('lab machine VPSs: machines of their own', () => {
  it('boots Debian 12 with systemd as PID 1, its own address, engine and process tree; root and deploy log in with keys', async () => {
    const { env, vps } = await machines(2);
    const [a, b] = vps as [LabMachine, LabMachine];
    const sentinelArg = `${uniqueName('labvps-sentinel')}`;
    const sentinel = spawn('sh', ['-c', `sleep 300; : ${sentinelArg}`], { detached: true, stdio: 'ignore' });
    sentinel.unref();
    try {
      const facts = await on(
        env,
        a,
        'cat /proc/1/comm; . /etc/os-release; echo $VERSION_CODENAME; systemctl is-system-running --wait; ip -4 -o addr show eth0 | awk \'{print $4}\'; docker info --format "{{.ID}}"; ps -eo args',
      );
      expect(facts.code).toBe(0);
      const [pid1, codename, systemState, addr, engineA, ...procs] = facts.out.split('\n');
      expect(pid1).toBe('systemd');
      expect(codename).toBe('bookworm');
      expect(systemState).toBe('running');
      expect(addr).toBe(`${a.address}/24`);
      // Its process tree holds none of this machine's processes.
      expect(procs.join('\n')).not.toContain(sentinelArg);
      expect((await runLocal(['pgrep', '-f', sentinelArg])).code).toBe(0);
      const engineB = (await on(env, b, 'docker info --format "{{.ID}}"')).out;
      const runner = (await runLocal([DOCKER_BIN, '-H', env.runner.dockerHost, 'info', '--format', '{{.ID}}'])).stdout;
      expect(new Set([engineA, engineB, runner.trim()]).size).toBe(3);
      const deploy = await on(env, a, 'id -un; sudo -n id -un', 'deploy');
      expect(deploy.out).toBe('deploy\nroot');
      const wrong = await ssh(env, a, 'true', { key: env.wrongSshKey });
      expect(wrong.code).toBe(255);
    } finally {
      sentinel.kill();
    }
  });

  it('a package, a user, a service and a ufw rule inside one VPS appear neither on the machine nor on another VPS', async () => {
    const before = await machineState();
    const { env, vps } = await machines(2, { fresh: true });
    const [a, b] = vps as [LabMachine, LabMachine];
    const user = uniqueName('labiso').replace('-', '');
    // What a host-setup playbook does: a package, a user, two services, a firewall with 22 and 80 open.
    const setup = await on(
      env,
      a,
      [
        'set -e',
        'export DEBIAN_FRONTEND=noninteractive',
        'apt-get install -y -qq hello >/dev/null',
        `useradd --create-home ${user}`,
        'mkdir -p /srv/site && echo machine-site > /srv/site/index.html',
        'systemd-run --unit lab-web80 --working-directory /srv/site python3 -m http.server 80',
        'systemd-run --unit lab-web8080 --working-directory /srv/site python3 -m http.server 8080',
        'ufw allow 22/tcp >/dev/null && ufw allow 80/tcp >/dev/null && ufw --force enable >/dev/null',
        'for i in $(seq 50); do curl -fsS localhost:80 >/dev/null 2>&1 && curl -fsS localhost:8080 >/dev/null 2>&1 && break; sleep 0.2; done',
        'systemctl is-active lab-web80 lab-web8080',
      ].join('\n'),
    );
    expect(setup.code).toBe(0);
    expect(setup.out).toBe('active\nactive');
    // Inside a: all of it is there.
    const inA = await on(env, a, `dpkg -s hello | grep Status; id -un ${user}; ufw status | grep -c ALLOW`);
    expect(inA.stderr).toBe('');
    expect(inA.out).toBe(`Status: install ok installed\n${user}\n4`);
    // Another VPS reaches a's port 80, and not 8080 (closed by a's own firewall), and has none of a's changes.
    const fromB = await on(
      env,
      b,
      `curl -sS -m 5 http://${a.address}/; curl -sS -m 3 -o /dev/null http://${a.address}:8080/ || echo blocked; dpkg -s hello >/dev/null 2>&1 || echo no-hello; id ${user} >/dev/null 2>&1 || echo no-user; ufw status`,
    );
    expect(fromB.out).toBe('machine-site\nblocked\nno-hello\nno-user\nStatus: inactive');
    // The machine can still reach a's port 8080 only if a's firewall were not a's own: it is closed from here too.
    const fromMachine = await runLocal(['curl', '-sS', '-m', '3', `http://${a.address}:8080/`]);
    expect(fromMachine.code).not.toBe(0);
    // And the machine itself is unchanged.
    const after = await machineState();
    expect(after).toEqual(before);
    expect((await runLocal(['id', user])).code).not.toBe(0);
  });

  it('reaches the lab registry and Loki receiver on its own 127.0.0.1, and publishes ports on its own address', async () => {
    const { env, vps } = await machines(2);
    const [a, b] = vps as [LabMachine, LabMachine];
    const name = uniqueName('machine-app');
    const run = await on(
      env,
      a,
      [
        'set -e',
        'export DOCKER_CONFIG=$(mktemp -d)',
        `docker login -u ${env.registry.username} --password-stdin ${env.registry.url} >/dev/null`,
        `docker run -d --name ${name} -p 8000:8000 ${env.sampleApp.image}:v2 >/dev/null`,
        'rm -rf "$DOCKER_CONFIG"',
        'curl -s -o /dev/null -w "%{http_code}\\n" 127.0.0.1:3100/ready',
      ].join('\n'),
      'root',
      env.registry.password,
    );
    try {
      expect(run.code).toBe(0);
      expect(run.out).toBe('200');
      const seen = await on(
        env,
        b,
        `for i in $(seq 50); do curl -fsS -m 2 http://${a.address}:8000/version && break; sleep 0.2; done`,
      );
      expect(seen.out).toBe('v2');
      // Another VPS's engine does not have it: each runs its own dockerd.
      expect((await on(env, b, `docker ps -aq --filter name=${name}`)).out).toBe('');
    } finally {
      await on(env, a, `docker rm -f ${name} >/dev/null 2>&1 || true`);
    }
  });
});
