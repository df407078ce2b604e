import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { LabHost } from '../../src/lab/env.js';
import { runLocal } from '../../src/remote/local.js';
import { type CliRun, labSecrets, runDyce, startDyce } from '../support/dyce-cli.js';
import { host, hostDocker, lab, uniqueName } from '../support/lab.js';
import { findSecret } from '../support/leaks.js';
import { ProcSampler } from '../support/proc-sampler.js';

const env = lab();
const vps1 = host(env);
const image = (tag: string) => `${env.sampleApp.image}:${tag}`;
const made: string[] = [];

/** An inline INI inventory line for a lab host (dyce_port_base only when non-zero). */
function hostsLine(h: LabHost, user = 'root', over: { port?: number } = {}): string {
  return [
    h.name,
    `ansible_host=${h.address}`,
    `ansible_port=${over.port ?? h.sshPort}`,
    `ansible_user=${user}`,
    `dyce_state_dir=${h.stateDir}`,
    ...(h.portBase ? [`dyce_port_base=${h.portBase}`] : []),
  ].join(' ');
}

/** Runs `dyce deploy` (the source) with flags; secrets through DYCE_* variables, never argv. */
function dyce(
  args: string[],
  opts: { secrets?: Record<string, string>; cmd?: 'deploy' | 'plan' } = {},
): Promise<CliRun> {
  return runDyce(opts.cmd ?? 'deploy', args, { ...labSecrets(env), ...opts.secrets });
}

function baseArgs(name: string, over: Record<string, string> = {}, h = vps1): string[] {
  made.push(name);
  const flags: Record<string, string> = {
    hosts: hostsLine(h),
    'known-hosts': h.knownHosts,
    image: image('v1'),
    'registry-username': env.registry.username,
    name,
    ...over,
  };
  return Object.entries(flags).flatMap(([k, v]) => [`--${k}`, v]);
}

async function containers(name: string): Promise<{ name: string; id: string }[]> {
  const r = await hostDocker(vps1, [
    'ps',
    '-a',
    '--filter',
    `label=dyce.app=${name}`,
    '--format',
    '{{.Names}} {{.ID}}',
  ]);
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => ({ name: l.split(' ')[0]!, id: l.split(' ')[1]! }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

async function inspect(name: string): Promise<Record<string, any>> {
  const r = await hostDocker(vps1, ['inspect', name]);
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as Record<string, any>[])[0]!;
}

const replicasOf = (r: CliRun) =>
  (JSON.parse(r.outputs.replicas ?? '{}') as Record<string, { name: string; id: string; port: number }[]>).vps1 ?? [];

async function httpText(port: number, path: string): Promise<string> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}${path}`);
      return await r.text();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function lokiPluginPresent(): Promise<boolean> {
  const r = await hostDocker(vps1, ['plugin', 'inspect', '--format', '{{.Enabled}}', 'loki']);
  return r.code === 0 && r.stdout.trim() === 'true';
}

afterAll(async () => {
  for (const name of made) {
    const ids = (await hostDocker(vps1, ['ps', '-aq', '--filter', `label=dyce.app=${name}`])).stdout
      .trim()
      .split('\n')
      .filter(Boolean);
    const named = (await hostDocker(vps1, ['ps', '-aq', '--filter', `name=${name}`])).stdout
      .trim()
      .split('\n')
      .filter(Boolean);
    if (ids.length || named.length) await hostDocker(vps1, ['rm', '-f', ...new Set([...ids, ...named])]);
    await runLocal(['rm', '-rf', `${vps1.stateDir}/apps/${name}`, `${vps1.stateDir}/locks/${name}.lock`]);
  }
});

describe('deploy: the Melton shape', () => {
  const name = uniqueName('melton');
  const port = 18610;
  const dbPassword = `db-${uniqueName('pw')}-$(id)-"q"`;
  const tlsKey = `-----BEGIN PRIVATE KEY-----\nMIIE${uniqueName('k')}Xline2secret\n-----END PRIVATE KEY-----`;
  const hostile = `a'b"c $(touch /tmp/pwned) \`id\` \\ done`;
  const staticDir = `/tmp/${name}-static`;
  let first: CliRun;
  let flags: string[];

  it('runs 4 replicas with env, runtime secrets, a volume, restart policy and labels; no secret in any argv or output', async () => {
    const useLoki = await lokiPluginPresent();
    // The lab installs the plugin on its pluginHosts: do not let a broken lab turn these checks off silently.
    if (env.loki?.pluginHosts.includes(vps1.name)) expect(useLoki).toBe(true);
    flags = baseArgs(name, {
      replicas: '4',
      'network-mode': 'host',
      port: String(port),
      volumes: `${staticDir}:/code/api/static/`,
      env: `HOSTILE=${hostile}\nDJANGO_SETTINGS=prod`,
      labels: `team=${hostile}`,
      ...(useLoki
        ? {
            'log-driver': 'loki',
            'log-options': `loki-url=${env.loki?.pushUrl ?? 'http://127.0.0.1:3100/loki/api/v1/push'}\nloki-retries=5\nloki-batch-size=400\nloki-external-labels=tag=melton,dyce_test=${name}`,
          }
        : {}),
    });
    const secrets = { DYCE_SECRET_ENV: `DB_PASSWORD=${dbPassword}`, DYCE_SECRET_FILES: `tls.key<<EOF\n${tlsKey}\nEOF` };
    const sampler = new ProcSampler([env.registry.password, dbPassword, 'Xline2secret']);
    await sampler.start();
    await sampler.proveItself(0);
    await sampler.proveItself(1);
    first = await dyce(flags, { secrets });
    const report = await sampler.stop();
    expect(first.stderr).not.toMatch(/internal error/);
    expect(first.code, first.stderr).toBe(0);
    expect(report.sweeps).toBeGreaterThan(5);
    expect(report.hits).toEqual([]);
    for (const secret of [env.registry.password, dbPassword, tlsKey])
      expect(findSecret(first.stdout + first.stderr, secret)).toEqual([]);
    // The search can find what it looks for.
    expect(findSecret(`x${dbPassword}x`, dbPassword)).not.toEqual([]);

    expect(first.outputs).toMatchObject({ success: 'true', changed: 'true', version: 'v1', 'rolled-back': 'false' });
    const reps = replicasOf(first);
    expect(reps.map((r) => [r.name, r.port])).toEqual([1, 2, 3, 4].map((i) => [`${name}${i}`, port + i - 1]));

    for (let i = 1; i <= 4; i++) {
      const c = await inspect(`${name}${i}`);
      expect(c.Config.Image).toBe(image('v1'));
      expect(c.State.Running).toBe(true);
      expect(c.Config.Env).toEqual(
        expect.arrayContaining([`HOSTILE=${hostile}`, `PORT=${port + i - 1}`, `DB_PASSWORD=${dbPassword}`]),
      );
      expect(c.HostConfig.NetworkMode).toBe('host');
      expect(c.HostConfig.RestartPolicy.Name).toBe('unless-stopped');
      expect(c.Config.Labels).toMatchObject({
        'dyce.app': name,
        'dyce.version': 'v1',
        'dyce.replica': String(i),
        team: hostile,
      });
      expect(c.Config.Labels['dyce.spec-hash']).toMatch(/^[0-9a-f]{32}$/);
      const mounts = c.Mounts as { Source: string; Destination: string; RW: boolean }[];
      expect(mounts).toContainEqual(
        expect.objectContaining({ Source: staticDir, Destination: '/code/api/static', RW: true }),
      );
      const secretMount = mounts.find((m) => m.Destination === '/run/secrets/tls.key')!;
      expect(secretMount.RW).toBe(false);
      const st = await runLocal(['stat', '-c', '%a %U', secretMount.Source]);
      expect(st.stdout.trim()).toBe('600 root');
      expect(readFileSync(secretMount.Source, 'utf8')).toBe(tlsKey);
      if (useLoki) {
        expect(c.HostConfig.LogConfig.Type).toBe('loki');
        expect(c.HostConfig.LogConfig.Config).toMatchObject({
          'loki-retries': '5',
          'loki-batch-size': '400',
          'loki-external-labels': `tag=melton,dyce_test=${name}`,
          mode: 'non-blocking',
          'max-buffer-size': '4m',
          'loki-timeout': '1s',
          'loki-max-backoff': '800ms',
          'keep-file': 'true',
          'max-size': '10m',
          'max-file': '3',
        });
      }
    }
    // The hostile value reached the container byte for byte and ran nowhere.
    const echoed = await hostDocker(vps1, ['exec', `${name}1`, 'sh', '-c', 'printf %s "$HOSTILE"']);
    if (echoed.code === 0) expect(echoed.stdout).toBe(hostile);
    expect((await runLocal(['test', '-e', '/tmp/pwned'])).code).not.toBe(0);
    // Each replica answers on its own port (host networking, told through PORT).
    for (let i = 0; i < 4; i++) expect(await httpText(port + i, '/version')).toBe('v1');
    // The Loki receiver holds their log lines.
    if (useLoki && env.loki) {
      const deadline = Date.now() + 20_000;
      let lines = 0;
      while (lines === 0 && Date.now() < deadline) {
        const q = new URLSearchParams({ query: `{tag="melton",dyce_test="${name}"}`, limit: '1000' });
        const r = (await (await fetch(`${env.loki.url}/loki/api/v1/query_range?${q}`)).json()) as {
          data: { result: { values: [string, string][] }[] };
        };
        lines = r.data.result.reduce((n, s) => n + s.values.length, 0);
        if (lines === 0) await new Promise((res) => setTimeout(res, 500));
      }
      expect(lines).toBeGreaterThan(0);
    }
    // One audit line.
    const audit = readFileSync(`${vps1.stateDir}/audit.log`, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(audit.filter((a) => a.app === name)).toEqual([
      expect.objectContaining({ result: 'success', to: 'v1', from: [] }),
    ]);
  });

  it('a second identical run changes nothing, and says so', async () => {
    const before = await containers(name);
    const r = await dyce(flags, {
      secrets: { DYCE_SECRET_ENV: `DB_PASSWORD=${dbPassword}`, DYCE_SECRET_FILES: `tls.key<<EOF\n${tlsKey}\nEOF` },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.outputs.changed).toBe('false');
    expect(r.stderr).toContain(`vps1: ${name} is up to date (4 replicas unchanged)`);
    expect(r.stderr).toContain('nothing changed');
    expect(await containers(name)).toEqual(before);
    expect(replicasOf(r).map((x) => x.id)).toEqual(
      before.map((c) => c.id).map((id) => expect.stringMatching(`^${id}`)),
    );
  });

  it('a changed secret value replaces the replicas (through the HMAC), and plan shows it without changing anything', async () => {
    const before = await containers(name);
    const secrets = {
      DYCE_SECRET_ENV: `DB_PASSWORD=${dbPassword}-rotated`,
      DYCE_SECRET_FILES: `tls.key<<EOF\n${tlsKey}\nEOF`,
    };
    const planned = await dyce(flags, { secrets, cmd: 'plan' });
    expect(planned.code, planned.stderr).toBe(0);
    expect(planned.stderr).toContain(`${name}1: replace v1 -> v1`);
    expect(planned.stderr).toContain('dry run: nothing was changed');
    expect(await containers(name)).toEqual(before);
    const r = await dyce(flags, { secrets });
    expect(r.code, r.stderr).toBe(0);
    expect(r.outputs.changed).toBe('true');
    const after = await containers(name);
    expect(after.map((c) => c.id).some((id) => before.map((b) => b.id).includes(id))).toBe(false);
    expect((await inspect(`${name}2`)).Config.Env).toContain(`DB_PASSWORD=${dbPassword}-rotated`);
  });
});

describe('deploy: changes and scaling', () => {
  const name = uniqueName('scale');
  const port = 18630;
  const args = (over: Record<string, string> = {}) =>
    baseArgs(name, { replicas: '4', port: '8000', 'host-port': String(port), env: 'MODE=a', ...over });

  it('an env change replaces the replicas, stop-then-start, and the summary says so', async () => {
    expect((await dyce(args())).code).toBe(0);
    const before = await containers(name);
    expect(before).toHaveLength(4);
    const r = await dyce(args({ env: 'MODE=b' }));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('stop-then-start');
    const after = await containers(name);
    expect(after.map((c) => c.name)).toEqual(before.map((c) => c.name));
    for (const c of after) expect(before.map((b) => b.id)).not.toContain(c.id);
    expect((await inspect(`${name}1`)).Config.Env).toContain('MODE=b');
    expect((await inspect(`${name}1`)).HostConfig.PortBindings['8000/tcp']).toEqual([
      { HostIp: '127.0.0.1', HostPort: String(port) },
    ]);
  });

  it('scales 4 -> 2 (removes 3 and 4) and 2 -> 4 (adds two), leaving the others untouched', async () => {
    const before = await containers(name);
    const down = await dyce(args({ env: 'MODE=b', replicas: '2' }));
    expect(down.code, down.stderr).toBe(0);
    expect(down.stderr).toContain(`${name}3: remove (surplus replica)`);
    expect(await containers(name)).toEqual(before.slice(0, 2));
    const up = await dyce(args({ env: 'MODE=b', replicas: '4' }));
    expect(up.code, up.stderr).toBe(0);
    const after = await containers(name);
    expect(after.map((c) => c.name)).toEqual([1, 2, 3, 4].map((i) => `${name}${i}`));
    expect(after.slice(0, 2)).toEqual(before.slice(0, 2));
  });
});

describe('deploy: bad input and faults, each a clear error that changes nothing', () => {
  const name = uniqueName('bad');

  async function expectRefused(
    over: Record<string, string>,
    message: string | RegExp,
    secrets: Record<string, string> = {},
    code = 1,
  ) {
    const r = await dyce(baseArgs(name, { port: '8000', 'host-port': '18650', ...over }), { secrets });
    expect(r.code, r.stderr).toBe(code);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    expect(r.stderr).toMatch(message);
    expect(r.outputs.success).toBe(r.outputs.success === undefined ? undefined : 'false');
    expect(await containers(name)).toEqual([]);
    return r;
  }

  it.each([
    [{ replicas: '0' }, '--replicas must be at least 1, got 0'],
    [{ replicas: '-1' }, '--replicas must be at least 1, got -1'],
    [{ name: 'Bad Name' }, '--name must match [a-z0-9][a-z0-9_.-]*'],
    [
      { 'log-driver': 'loki', 'log-options': 'loki-retires=5' },
      'loki-retires (line 1) is not an option of the loki log driver (did you mean loki-retries?)',
    ],
    [{ hosts: 'vps1 ansible_port=notaport' }, /hosts:1: .*ansible_port/],
  ])('input %j (exit 2: bad input, nothing touched)', async (over, message) => {
    await expectRefused(over, message, {}, 2);
  });

  it('a secret-env value with a newline, naming the key and not the value', async () => {
    const r = await expectRefused(
      {},
      'the value of API_TOKEN contains a newline',
      { DYCE_SECRET_ENV: 'API_TOKEN<<EOF\nfirst-line-zz9\nsecond\nEOF' },
      2,
    );
    expect(r.stderr).not.toContain('first-line-zz9');
  });

  it('a mismatched known-hosts entry: refused before authentication', async () => {
    const other = env.hosts[1]!.knownHosts.split(' ').slice(1).join(' ');
    await expectRefused({ 'known-hosts': `[${vps1.address}]:${vps1.sshPort} ${other}` }, /host key/i);
  });

  it('a wrong key', async () => {
    await expectRefused({}, /auth|publickey|rejected/i, {
      DYCE_SSH_PRIVATE_KEY: readFileSync(env.wrongSshKey, 'utf8'),
    });
  });

  it('a closed loopback port', async () => {
    const server: Server = createServer();
    const free = await new Promise<number>((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
    );
    await new Promise((r) => server.close(r));
    await expectRefused({ hosts: hostsLine(vps1, 'root', { port: free }) }, /refused/i);
  });

  it('a silent loopback listener: a timeout, distinct from a refusal', async () => {
    // Accepts TCP connections and never says a word (no SSH banner).
    const held: import('node:net').Socket[] = [];
    const server: Server = createServer((sock) => held.push(sock));
    const port = await new Promise<number>((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
    );
    try {
      const r = await expectRefused({ hosts: hostsLine(vps1, 'root', { port }) }, /time/i);
      expect(r.stderr).not.toMatch(/refused/i);
    } finally {
      for (const s of held) s.destroy();
      server.close();
    }
  }, 240_000);

  it('a wrong registry password', async () => {
    await expectRefused({}, /registry login to 127\.0\.0\.1:5000 as dyce failed/, {
      DYCE_REGISTRY_PASSWORD: 'not-the-password',
    });
  });

  it('a missing image tag', async () => {
    await expectRefused({ image: image('no-such-tag') }, /cannot pull .*no-such-tag/);
  });

  it('a missing Loki plugin, saying how to install it', async () => {
    if (await lokiPluginPresent()) return;
    await expectRefused(
      { 'log-driver': 'loki', 'log-options': 'loki-url=http://127.0.0.1:3100/loki/api/v1/push' },
      /needs the Docker plugin "loki", which is not installed; nothing was changed.*--install-log-plugin/,
    );
  });

  it('an unlabelled container in the way, refused by name unless adopt', async () => {
    const squatter = `${name}1`;
    // As Ansible's docker_container left Melton's replicas: same name, no Dyce labels.
    const run = await hostDocker(vps1, ['run', '-d', '--name', squatter, image('v1')]);
    expect(run.code, run.stderr).toBe(0);
    try {
      const r = await dyce(baseArgs(name, { port: '8000', 'host-port': '18650' }));
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`containers are in the way of ${name}'s replicas; nothing was changed`);
      expect(r.stderr).toContain(`${squatter} (`);
      expect(r.stderr).toContain('add --adopt to replace');
      expect((await inspect(squatter)).State.Running).toBe(true);
      const adopted = await dyce(baseArgs(name, { port: '8000', 'host-port': '18650', adopt: 'true' }));
      expect(adopted.code, adopted.stderr).toBe(0);
      expect((await inspect(squatter)).Config.Labels['dyce.app']).toBe(name);
    } finally {
      await hostDocker(vps1, ['rm', '-f', squatter]);
    }
  });
});

describe('deploy: the lock', () => {
  it('serialises two deploys started at once', async () => {
    const name = uniqueName('lock');
    const a = dyce(baseArgs(name, { replicas: '2', port: '8000', 'host-port': '18660', env: 'RUN=a' }));
    const b = dyce(baseArgs(name, { replicas: '2', port: '8000', 'host-port': '18660', env: 'RUN=b' }));
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra.code, ra.stderr).toBe(0);
    expect(rb.code, rb.stderr).toBe(0);
    expect(`${ra.stderr}\n${rb.stderr}`).toContain('waiting for the deploy lock held by');
    const audit = readFileSync(`${vps1.stateDir}/audit.log`, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((x) => x.app === name);
    expect(audit).toHaveLength(2);
    // The second deploy started after the first had finished: it saw the first one's replicas.
    expect(audit[0].from).toEqual([]);
    expect(audit[1].from).toEqual(['v1']);
    expect((await runLocal(['test', '-e', `${vps1.stateDir}/locks/${name}.lock`])).code).not.toBe(0);
  });

  it('fails clearly, naming the holder, after lock-wait', async () => {
    const name = uniqueName('held');
    const dir = `${vps1.stateDir}/locks/${name}.lock`;
    await runLocal(['mkdir', '-p', dir]);
    await runLocal([
      'sh',
      '-c',
      `printf '%s\\n' '{"id":"x","who":"alice@laptop","version":"v9","since":"now"}' > ${dir}/holder.json`,
    ]);
    made.push(name);
    const r = await dyce(baseArgs(name, { 'lock-wait': '2s' }));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`another deploy of ${name} holds the lock: alice@laptop deploying v9`);
    expect(r.stderr).toContain('lock-wait');
    expect(await containers(name)).toEqual([]);
  });

  it('a deploy killed with SIGTERM releases its lock, and the next deploy runs', async () => {
    const name = uniqueName('term');
    const lock = `${vps1.stateDir}/locks/${name}.lock`;
    const args = baseArgs(name, { replicas: '4', port: '8000', 'host-port': '18670' });
    const running = startDyce('deploy', args, labSecrets(env));
    // Wait until the lock is taken, then cancel.
    for (let i = 0; i < 200 && (await runLocal(['test', '-e', `${lock}/holder.json`])).code !== 0; i++)
      await new Promise((r) => setTimeout(r, 25));
    running.child.kill('SIGTERM');
    const r = await running.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cancelled/);
    expect((await runLocal(['test', '-e', lock])).code).not.toBe(0);
    const next = await dyce(args);
    expect(next.code, next.stderr).toBe(0);
  });

  it('a deploy killed with SIGKILL leaves a lock that is taken over after lock-stale', async () => {
    const name = uniqueName('kill');
    const lock = `${vps1.stateDir}/locks/${name}.lock`;
    const args = baseArgs(name, { port: '8000', 'host-port': '18680', 'lock-stale': '3s' });
    const running = startDyce('deploy', args, labSecrets(env));
    for (let i = 0; i < 200 && (await runLocal(['test', '-e', `${lock}/holder.json`])).code !== 0; i++)
      await new Promise((r) => setTimeout(r, 25));
    running.child.kill('SIGKILL');
    await running.done;
    expect((await runLocal(['test', '-e', lock])).code).toBe(0);
    const next = await dyce(args);
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toMatch(/was not refreshed for .* \(lock-stale 3s\): taking it over/);
    expect((await runLocal(['test', '-e', lock])).code).not.toBe(0);
  });
});

describe('deploy: as the non-root deploy user', () => {
  it('deploys through sudo -n, with secrets, and reruns as a no-op', async () => {
    const name = uniqueName('sudo');
    const args = baseArgs(name, {
      hosts: hostsLine(vps1, 'deploy'),
      replicas: '2',
      port: '8000',
      'host-port': '18690',
    });
    const secrets = { DYCE_SECRET_ENV: 'TOKEN=sudo-secret-1' };
    const r = await dyce(args, { secrets });
    expect(r.code, r.stderr).toBe(0);
    expect((await containers(name)).map((c) => c.name)).toEqual([`${name}1`, `${name}2`]);
    expect((await inspect(`${name}1`)).Config.Env).toContain('TOKEN=sudo-secret-1');
    const again = await dyce(args, { secrets });
    expect(again.code, again.stderr).toBe(0);
    expect(again.outputs.changed).toBe('false');
  });
});

describe('deploy: the Loki plugin on a host without it', () => {
  const vps3 = env.hosts.find((h) => h.name === 'vps3');
  const ready = !!(vps3 && env.loki && !env.loki.pluginHosts.includes('vps3'));
  const name = uniqueName('lokiinst');
  const docker3 = (args: string[]) => hostDocker(vps3!, args);

  afterAll(async () => {
    if (!ready) return;
    const ids = (await docker3(['ps', '-aq', '--filter', `label=dyce.app=${name}`])).stdout
      .trim()
      .split('\n')
      .filter(Boolean);
    if (ids.length) await docker3(['rm', '-f', ...ids]);
    // Leave the lab as it was: this host has no plugin.
    await docker3(['plugin', 'rm', '-f', 'loki']);
  });

  it.skipIf(!ready)(
    'fails clearly without install-log-plugin, then installs it from the lab registry when allowed',
    async () => {
      expect((await docker3(['plugin', 'inspect', 'loki'])).code).not.toBe(0);
      const args = (over: Record<string, string>) =>
        baseArgs(
          name,
          {
            port: '8000',
            'host-port': '18740',
            'log-driver': 'loki',
            'log-options': `loki-url=${env.loki!.pushUrl}`,
            ...over,
          },
          vps3!,
        );
      const refused = await dyce(args({}));
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(
        'vps3: log-driver loki needs the Docker plugin "loki", which is not installed; nothing was changed',
      );
      expect(refused.stderr).toContain('Add --install-log-plugin');
      expect((await docker3(['ps', '-aq', '--filter', `label=dyce.app=${name}`])).stdout.trim()).toBe('');

      const installed = await dyce(args({ 'install-log-plugin': 'true', 'log-plugin': env.loki!.pluginRef }));
      expect(installed.code, installed.stderr).toBe(0);
      expect(installed.stderr).toContain(`installing the Docker plugin ${env.loki!.pluginRef} as loki`);
      expect((await docker3(['plugin', 'inspect', '--format', '{{.Enabled}}', 'loki'])).stdout.trim()).toBe('true');
      const c = JSON.parse((await docker3(['inspect', `${name}1`])).stdout)[0];
      expect(c.HostConfig.LogConfig.Type).toBe('loki');
      expect(c.HostConfig.LogConfig.Config).toMatchObject({
        mode: 'non-blocking',
        'loki-retries': '2',
        'keep-file': 'true',
      });
    },
  );
});
