import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabEnv, LabHost } from '../../src/lab/env.js';
import { runLocal } from '../../src/remote/local.js';
import { runDyce } from '../support/dyce-cli.js';
import { host, lab, tempDir, uniqueName } from '../support/lab.js';
import { startSshd, type ThrowawaySshd } from '../support/sshd.js';

/**
 * The CLI as a laptop user meets it: with nothing said about SSH, `dyce` does what `ssh` does (known_hosts files,
 * ssh-agent, default keys, ~/.ssh/config aliases); and `dyce play` goes through an inventory's ProxyJump on the
 * same connector as deploy.
 */
let env: LabEnv;
let vps1: LabHost;
let dir: string;

beforeAll(() => {
  env = lab();
  vps1 = host(env, 'vps1');
  dir = tempDir('dyce-sshdef-');
});

/** A HOME with only .ssh/known_hosts (vps1's line), and whatever `more` adds. */
function home(name: string, more: Record<string, string> = {}): string {
  const h = join(dir, name);
  mkdirSync(join(h, '.ssh'), { recursive: true, mode: 0o700 });
  writeFileSync(join(h, '.ssh', 'known_hosts'), `${vps1.knownHosts}\n`);
  for (const [f, text] of Object.entries(more)) writeFileSync(join(h, '.ssh', f), text, { mode: 0o600 });
  return h;
}

/** `dyce plan` of a 1-replica app on the given host line: connects, locks nothing, changes nothing. */
function plan(hostLine: string, envVars: Record<string, string>) {
  return runDyce(
    'plan',
    {
      hosts: hostLine,
      image: `${env.sampleApp.image}:v1`,
      name: uniqueName('sshdef'),
      replicas: '1',
      port: String(env.sampleApp.port),
      'registry-username': env.registry.username,
    },
    { DYCE_REGISTRY_PASSWORD: env.registry.password, ...envVars },
  );
}

describe('ssh-like defaults on the CLI', () => {
  let agent: { sock: string; pid: number } | undefined;
  afterAll(() => {
    if (agent) process.kill(agent.pid, 'SIGTERM');
  });

  it('a deploy with HOME holding .ssh/known_hosts and an ssh-agent, and no key flag, reaches a lab host', async () => {
    const h = home('agent');
    const sock = join(dir, 'agent.sock');
    const out = execFileSync('ssh-agent', ['-a', sock, '-s'], { encoding: 'utf8' });
    agent = { sock, pid: Number(/SSH_AGENT_PID=(\d+)/.exec(out)![1]) };
    execFileSync('ssh-add', ['-q', env.sshKey], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'pipe' });
    const line = `vps1 ansible_host=${vps1.address} ansible_port=${vps1.sshPort} ansible_user=deploy`;

    const r = await plan(line, { HOME: h, SSH_AUTH_SOCK: sock });
    expect(r.code, r.stderr).toBe(0);

    // The same without the agent: no key at all, said clearly; nothing reached the host.
    const none = await plan(line, { HOME: h });
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/no SSH private key/);

    // Without known_hosts (an empty HOME), nothing is trusted on first use.
    const bare = join(dir, 'bare');
    mkdirSync(bare, { recursive: true });
    const unpinned = await plan(line, { HOME: bare, SSH_AUTH_SOCK: sock });
    expect(unpinned.code).not.toBe(0);
    expect(unpinned.stderr).toMatch(/neither ~\/\.ssh\/known_hosts nor \/etc\/ssh\/ssh_known_hosts exists/);
  });

  it('a ~/.ssh/config alias gives HostName, Port, User and IdentityFile; --known-hosts with a path gets a hint', async () => {
    const h = home('config');
    copyFileSync(env.sshKey, join(h, '.ssh', 'lab_key'));
    writeFileSync(
      join(h, '.ssh', 'config'),
      `Host labvps\n  HostName ${vps1.address}\n  Port ${vps1.sshPort}\n  User deploy\n  IdentityFile ~/.ssh/lab_key\n`,
    );
    const r = await plan('labvps', { HOME: h });
    expect(r.code, r.stderr).toBe(0);

    const kh = join(h, '.ssh', 'known_hosts');
    const hint = await runDyce('plan', ['--hosts', 'labvps', '--known-hosts', kh, '--image', 'x:1', '--name', 'hint'], {
      HOME: h,
    });
    expect(hint.code).not.toBe(0);
    expect(hint.stderr).toContain(`use --known-hosts-file ${kh}`);
    const file = await runDyce(
      'plan',
      ['--hosts', 'labvps', '--known-hosts-file', kh, '--image', `${env.sampleApp.image}:v1`, '--name', 'khf'],
      { HOME: h },
    );
    expect(file.code, file.stderr).toBe(0);
  });
});

describe('dyce play through an inventory ProxyJump', () => {
  // A network namespace holds the hidden host (its own loopback only) and the bastion (on a veth address).
  const tag = Math.floor(Math.random() * 0xffff)
    .toString(16)
    .padStart(4, '0');
  const ns = `dyce-pj-${tag}`;
  const vethOut = `dyp${tag}o`;
  const vethIn = `dyp${tag}i`;
  const net = `10.232.${Number.parseInt(tag.slice(0, 2), 16) % 250}`;
  const bastionAddr = `${net}.2`;
  let hidden: ThrowawaySshd;
  let bastion: ThrowawaySshd;
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });

  beforeAll(async () => {
    const vps3 = host(env, 'vps3');
    ip('netns', 'add', ns);
    ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
    ip('link', 'add', vethOut, 'type', 'veth', 'peer', 'name', vethIn);
    ip('link', 'set', vethIn, 'netns', ns);
    ip('addr', 'add', `${net}.1/30`, 'dev', vethOut);
    ip('link', 'set', vethOut, 'up');
    ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${bastionAddr}/30`, 'dev', vethIn);
    ip('netns', 'exec', ns, 'ip', 'link', 'set', vethIn, 'up');
    const pub = readFileSync(`${env.sshKey}.pub`, 'utf8').trim();
    hidden = await startSshd({
      hostKeyTypes: ['ed25519'],
      authorizedKeys: { root: pub },
      netns: ns,
      extraConfig: [`SetEnv DOCKER_HOST=${vps3.dockerHost}`],
    });
    bastion = await startSshd({
      hostKeyTypes: ['ed25519'],
      authorizedKeys: { root: pub },
      netns: ns,
      listenAddress: bastionAddr,
    });
  });

  afterAll(async () => {
    await hidden?.stop();
    await bastion?.stop();
    await runLocal(['ip', 'netns', 'del', ns]);
    await runLocal(['ip', 'link', 'del', vethOut]);
  });

  it('reaches the hidden host only through the bastion, with one login at each', async () => {
    const playbook = join(dir, 'pj.yml');
    writeFileSync(
      playbook,
      `- hosts: all
  gather_facts: false
  tasks:
    - docker_container:
        name: ${uniqueName('pj-gone')}
        state: absent
`,
    );
    const kh = join(dir, 'pj_known_hosts');
    writeFileSync(kh, `${hidden.hostKeys.ed25519!.knownHosts}\n${bastion.hostKeys.ed25519!.knownHosts}\n`);
    const line = `hidden ansible_host=127.0.0.1 ansible_port=${hidden.port} ansible_user=root`;
    const play = (inventoryLine: string) => {
      const inv = join(dir, `pj-inv-${Math.random().toString(36).slice(2)}`);
      writeFileSync(inv, `${inventoryLine}\n`);
      return runDyce('play', ['-i', inv, '--known-hosts-file', kh, '--private-key', env.sshKey, playbook], {});
    };

    const direct = await play(line);
    expect(direct.code).toBe(4);
    expect(direct.stdout + direct.stderr).toMatch(/connection refused/);

    const logins = (s: ThrowawaySshd) => readFileSync(s.log, 'utf8').match(/Accepted publickey for root/g)?.length ?? 0;
    const before = [logins(bastion), logins(hidden)];
    const via = await play(`${line} ansible_ssh_common_args='-o ProxyJump=root@${bastionAddr}:${bastion.port}'`);
    expect(via.code, via.stdout + via.stderr).toBe(0);
    expect(logins(bastion) - before[0]!).toBe(1);
    expect(logins(hidden) - before[1]!).toBe(1);
    // The hidden host's sshd saw the connection come from inside the namespace (the bastion), not from here.
    expect(readFileSync(bastion.log, 'utf8')).toMatch(new RegExp(`Accepted publickey for root from ${net}\\.1 `));
  });
});
