/**
 * docs/quickstart.md, run against the lab so the page cannot rot: its shell blocks, in order, in one bash, with the
 * lab in place of "your VPS". The substitutions are few and each must still match the page (a changed command that
 * no longer matches fails here, instead of silently running something else):
 * - step 1's variables get the lab host's values (the page's set of variables must be exactly the ones known here);
 * - "your existing login" is an ssh-agent holding the lab's key, and the lab's sshd reads authorized_keys from its
 *   own directory instead of ~/.ssh;
 * - `npx github:org/dyce#v1` is this checkout's CLI; the lab host's state dir is added to the inventory line; the
 *   lab registry needs a login;
 * - `gh` is a stand-in that records the secrets and variables it is given (GitHub is the one SaaS in the loop).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../bundle/runner-protocol.js';
import { host, hostDocker, lab, tempDir, uniqueName } from '../support/lab.js';
import { findSecret } from '../support/leaks.js';

const env = lab();
const vps = host(env, 'vps3');
const page = readFileSync(join(repoRoot, 'docs/quickstart.md'), 'utf8');
const scratch = tempDir('dyce-quickstart-');
const authorizedKeys = join(env.dir, 'ssh', 'authorized_keys');
const appName = uniqueName('qs');
let agent: { sock: string; pid: string } | undefined;

/** The page's ```sh blocks, in order. */
function shellBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** Replaces every occurrence of `from`; the page must still contain it. */
function substitute(text: string, from: string, to: string): string {
  expect(text, `docs/quickstart.md no longer contains ${JSON.stringify(from)}: update the quickstart test`).toContain(
    from,
  );
  return text.split(from).join(to);
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** `gh secret set NAME [--body V]` / `gh variable set NAME --body V`, recorded as files under $GH_RECORD. */
const GH_STAND_IN = `#!/bin/bash
set -euo pipefail
kind="$1"; verb="$2"; name="$3"; shift 3
[ "$verb" = set ] || { echo "gh stand-in: only '$kind set' is known" >&2; exit 2; }
mkdir -p "$GH_RECORD/$kind"
if [ "\${1:-}" = --body ]; then printf '%s' "$2" > "$GH_RECORD/$kind/$name"; else cat > "$GH_RECORD/$kind/$name"; fi
echo "✓ Set $kind $name"
`;

async function script(vars: Record<string, string>): Promise<string> {
  const blocks = shellBlocks(page);
  expect(blocks.length).toBeGreaterThanOrEqual(6);
  // Step 1: the variables, each replaced by the lab's value.
  const names = [...blocks[0]!.matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1]);
  expect(names.sort()).toEqual(Object.keys(vars).sort());
  const first = Object.entries(vars)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join('\n');
  let rest = blocks.slice(1).join('\n');
  rest = substitute(rest, '~/.ssh/authorized_keys', join(authorizedKeys, vars.VPS_USER!));
  rest = substitute(rest, 'mkdir -p ~/.ssh', `mkdir -p ${authorizedKeys}`);
  rest = substitute(rest, 'npx --yes github:org/dyce#v1', `node ${join(repoRoot, 'bin/dyce.js')}`);
  rest = substitute(
    rest,
    '--hosts "vps ansible_host=$VPS_HOST ansible_port=$VPS_PORT ansible_user=$VPS_USER"',
    `--hosts "vps ansible_host=$VPS_HOST ansible_port=$VPS_PORT ansible_user=$VPS_USER dyce_state_dir=${vps.stateDir}"`,
  );
  rest = substitute(rest, '--image "$APP_IMAGE"', `--image "$APP_IMAGE" --registry-username ${env.registry.username}`);
  return `${first}\n${rest}`;
}

function runScript(text: string, cwd: string): { code: number | null; out: string } {
  const bin = join(scratch, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'gh'), GH_STAND_IN);
  chmodSync(join(bin, 'gh'), 0o755);
  const home = join(cwd, 'home');
  mkdirSync(home, { recursive: true });
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', text], {
    cwd,
    encoding: 'utf8',
    timeout: 240_000,
    env: {
      PATH: `${bin}:${process.env.PATH}`,
      HOME: home,
      SSH_AUTH_SOCK: agent!.sock,
      GH_RECORD: join(cwd, 'gh'),
      DYCE_REGISTRY_PASSWORD: env.registry.password,
      // The runner's DOCKER_HOST etc. stay out: everything happens on the "VPS" over SSH.
    },
  });
  return { code: r.status, out: `${r.stdout}\n${r.stderr}` };
}

beforeAll(() => {
  // "Your existing login": an agent with the lab's key, as a user's own key would be.
  const out = execFileSync('ssh-agent', ['-s', '-a', join(scratch, 'agent.sock')], { encoding: 'utf8' });
  agent = { sock: join(scratch, 'agent.sock'), pid: /SSH_AGENT_PID=(\d+)/.exec(out)![1]! };
  execFileSync('ssh-add', ['-q', env.sshKey], { env: { ...process.env, SSH_AUTH_SOCK: agent.sock } });
});

afterAll(async () => {
  if (agent) process.kill(Number(agent.pid));
  await hostDocker(vps, ['rm', '-f', `${appName}1`]);
  rmSync(scratch, { recursive: true, force: true });
});

describe('docs/quickstart.md against the lab', () => {
  const labVars = async () => ({
    VPS_HOST: vps.address,
    VPS_PORT: String(vps.sshPort),
    VPS_USER: 'root',
    VPS_FINGERPRINT: vps.fingerprint,
    APP_NAME: appName,
    APP_IMAGE: `${env.sampleApp.image}:v1`,
    APP_PORT: String(env.sampleApp.port),
    APP_HOST_PORT: String(await freePort()),
  });

  it('a wrong fingerprint stops at step 3: no known_hosts, and nothing after it logs in', async () => {
    const dir = join(scratch, 'mismatch');
    mkdirSync(dir);
    const vars = { ...(await labVars()), VPS_FINGERPRINT: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' };
    const r = runScript(await script(vars), dir);
    expect(r.out).toContain('MISMATCH');
    expect(existsSync(join(dir, 'known_hosts'))).toBe(false);
    expect(r.code).not.toBe(0);
    expect(r.out).not.toContain('logged in as');
  });

  it('runs every command of the page: key, verified host key, login, Docker, a deploy that answers, the secrets', async () => {
    const dir = join(scratch, 'run');
    mkdirSync(dir);
    const vars = await labVars();
    let pub = '';
    try {
      const r = runScript(await script(vars), dir);
      pub = readFileSync(join(dir, 'dyce_deploy_key.pub'), 'utf8').trim();
      expect(r.out).toContain('host key verified');
      expect(r.out).toContain('logged in as root with the deploy key');
      expect(r.out).toMatch(/docker \S+ is running/);
      expect(r.out).toContain('the app answers');
      expect(r.code).toBe(0);

      // The deploy ran the image on the host, published where step 1 said.
      const ps = await hostDocker(vps, ['ps', '--filter', `name=^${appName}1$`, '--format', '{{.Image}} {{.Ports}}']);
      expect(ps.stdout).toContain(`${vars.APP_IMAGE} 127.0.0.1:${vars.APP_HOST_PORT}->8000/tcp`);

      // What `gh` was given: the private key of the public key that got in, the verified known_hosts line, the hosts.
      const recorded = (kind: string, name: string) => readFileSync(join(dir, 'gh', kind, name), 'utf8');
      const key = recorded('secret', 'DEPLOY_SSH_KEY');
      writeFileSync(join(scratch, 'recorded_key'), key, { mode: 0o600 });
      const derived = execFileSync('ssh-keygen', ['-y', '-f', join(scratch, 'recorded_key')], { encoding: 'utf8' });
      expect(pub.startsWith(derived.trim())).toBe(true);
      expect(recorded('secret', 'DEPLOY_KNOWN_HOSTS').trim()).toBe(vps.knownHosts);
      expect(recorded('variable', 'DEPLOY_HOSTS')).toBe(
        `vps ansible_host=${vps.address} ansible_port=${vps.sshPort} ansible_user=root`,
      );
      expect(recorded('secret', 'APP_SECRET_KEY')).toBe('change-me');
      expect(existsSync(join(dir, 'dyce_deploy_key'))).toBe(false);

      // The private key never showed in the output (the search finds it when planted).
      expect(findSecret(`x${key}y`, key)).not.toEqual([]);
      expect(findSecret(r.out, key)).toEqual([]);
    } finally {
      // The lab's authorized_keys is shared: take out exactly the line the page added.
      const file = join(authorizedKeys, 'root');
      if (pub)
        writeFileSync(
          file,
          readFileSync(file, 'utf8')
            .split('\n')
            .filter((l) => l.trim() !== pub)
            .join('\n'),
        );
    }
  }, 300_000);
});
