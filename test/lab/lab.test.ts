import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLocal } from '../../src/remote/local.js';
import { DOCKER_BIN, host, hostDocker, lab, ssh, tempDir, uniqueName, writeTemp } from '../support/lab.js';

const env = lab();
const vps1 = host(env);

function http(
  port: number,
  path: string,
  opts: { method?: string; body?: string } = {},
): Promise<{ status: number; body: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: opts.method ?? 'GET', agent: false, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString(),
            ms: performance.now() - started,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

async function waitHttp(port: number, path: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await http(port, path);
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe('lab sshd', () => {
  it("runs docker ps as root with the generated key, against the host's own dockerd", async () => {
    const r = await ssh(
      env,
      vps1,
      'docker ps --format "{{.ID}}" >/dev/null && docker info --format "{{.DockerRootDir}}"',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(vps1.dockerDataRoot);
  });

  it('runs docker ps as deploy only through sudo (deploy is not in the docker group)', async () => {
    const plain = await ssh(env, vps1, 'id -un; docker ps', { user: 'deploy' });
    expect(plain.stdout).toContain('deploy');
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).toContain('permission denied');
    const sudo = await ssh(
      env,
      vps1,
      'sudo -n docker ps --format "{{.ID}}" && sudo -n docker info --format "{{.DockerRootDir}}"',
      { user: 'deploy' },
    );
    expect(sudo.code).toBe(0);
    expect(sudo.stdout.trim().split('\n').pop()).toBe(vps1.dockerDataRoot);
  });

  it('refuses a key that is not authorised', async () => {
    const r = await ssh(env, vps1, 'true', { key: env.wrongSshKey });
    expect(r.code).toBe(255);
    expect(r.stderr).toContain('Permission denied (publickey)');
  });

  it('is refused by the client when known_hosts holds another key for it', async () => {
    const dir = tempDir();
    const otherKey = readFileSync(`${env.wrongSshKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    const kh = writeTemp(dir, 'known_hosts', `[${vps1.address}]:${vps1.sshPort} ${otherKey}\n`);
    const r = await ssh(env, vps1, 'true', { knownHostsFile: kh });
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });
});

describe('lab registry', () => {
  const ref = `${env.registry.url}/dyce/lab-test:${uniqueName('t')}`;

  it('accepts a push with the credentials and refuses one without, clearly', async () => {
    const runner = { ...process.env, DOCKER_HOST: env.runner.dockerHost };
    expect((await runLocal([DOCKER_BIN, 'tag', env.baseImage, ref], { env: runner })).code).toBe(0);
    const anonymous = tempDir('dyce-docker-config-');
    const denied = await runLocal([DOCKER_BIN, '--config', anonymous, 'push', ref], { env: runner });
    expect(denied.code).not.toBe(0);
    expect(denied.stderr + denied.stdout).toMatch(/no basic auth credentials|unauthorized/);
    const pushed = await runLocal([DOCKER_BIN, '--config', env.runner.dockerConfig, 'push', ref], { env: runner });
    expect(pushed.stderr).toBe('');
    expect(pushed.code).toBe(0);
  });

  it('serves a pull to a lab host after a login with the password on stdin, and refuses it without', async () => {
    const config = tempDir('dyce-docker-config-');
    const denied = await hostDocker(vps1, ['pull', ref], { config });
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/no basic auth credentials|unauthorized/);
    const bad = await hostDocker(vps1, ['login', env.registry.url, '-u', env.registry.username, '--password-stdin'], {
      config,
      stdin: 'not-the-password',
    });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/unauthorized|401/);
    const login = await hostDocker(vps1, ['login', env.registry.url, '-u', env.registry.username, '--password-stdin'], {
      config,
      stdin: env.registry.password,
    });
    expect(login.code).toBe(0);
    const pulled = await hostDocker(vps1, ['pull', '-q', ref], { config });
    expect(pulled.code).toBe(0);
    expect(pulled.stdout.trim()).toBe(ref);
    await hostDocker(vps1, ['rmi', ref]);
  });
});

describe('sample app and nginx on a lab host', () => {
  const name = uniqueName('lab-sample');
  const port = vps1.portBase + 8700;
  const proxyPort = vps1.portBase + 8790;
  const config = tempDir('dyce-docker-config-');
  const site = join(vps1.nginx.confDir, `${name}.conf`);

  beforeAll(async () => {
    await hostDocker(vps1, ['login', env.registry.url, '-u', env.registry.username, '--password-stdin'], {
      config,
      stdin: env.registry.password,
    });
    const run = await hostDocker(
      vps1,
      ['run', '-d', '--name', name, '-p', `127.0.0.1:${port}:8000`, `${env.sampleApp.image}:v1`],
      { config },
    );
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.code).toBe(0);
    await waitHttp(port, '/health');
  });

  afterAll(async () => {
    await hostDocker(vps1, ['rm', '-f', name]);
    await runLocal(['rm', '-f', site]);
    await runLocal(['nginx', '-p', `${vps1.nginx.prefix}/`, '-c', vps1.nginx.conf, '-s', 'reload']);
  });

  it('answers /health, /version, POST /echo and /sleep as described', async () => {
    expect(await http(port, '/health')).toMatchObject({ status: 200 });
    expect((await http(port, '/version')).body).toBe('v1');
    const hostile = `a'b"c $(id) \`id\` \\ done`;
    expect((await http(port, '/echo', { method: 'POST', body: hostile })).body).toBe(hostile);
    const slept = await http(port, '/sleep?ms=400');
    expect(slept.body).toBe('slept 400ms');
    expect(slept.ms).toBeGreaterThanOrEqual(400);
    expect((await http(port, '/nope')).status).toBe(404);
  });

  it('fails /health when asked to, and recovers', async () => {
    await http(port, '/admin/health?state=fail', { method: 'POST' });
    expect((await http(port, '/health')).status).toBe(503);
    await http(port, '/admin/health?state=ok', { method: 'POST' });
    expect((await http(port, '/health')).status).toBe(200);
  });

  it('logs a line for each request', async () => {
    await http(port, '/version?marker=1');
    const logs = await hostDocker(vps1, ['logs', name]);
    expect(logs.stderr).toMatch(/version=v1 method=GET path=\/version status=200/);
  });

  it("is proxied by the host's nginx", async () => {
    const conf = `server {\n  listen 127.0.0.1:${proxyPort};\n  location / { proxy_pass http://127.0.0.1:${port}; }\n}\n`;
    writeTemp(vps1.nginx.confDir, `${name}.conf`, conf, 0o644);
    const t = await runLocal(['nginx', '-t', '-p', `${vps1.nginx.prefix}/`, '-c', vps1.nginx.conf]);
    expect(t.code).toBe(0);
    expect((await runLocal(['nginx', '-p', `${vps1.nginx.prefix}/`, '-c', vps1.nginx.conf, '-s', 'reload'])).code).toBe(
      0,
    );
    await waitHttp(proxyPort, '/version');
    const r = await http(proxyPort, '/version');
    expect(r).toMatchObject({ status: 200, body: 'v1' });
  });
});

describe('sample app variants', () => {
  it('has a version that never becomes healthy', async () => {
    const name = uniqueName('lab-never');
    const port = vps1.portBase + 8710;
    const r = await hostDocker(
      vps1,
      ['run', '-d', '--rm', '--name', name, '-p', `127.0.0.1:${port}:8000`, `dyce-sample-app:never-healthy`],
      {},
    );
    if (r.code !== 0) {
      // The variant lives in the registry; the host pulls it like any other image.
      const config = tempDir('dyce-docker-config-');
      await hostDocker(vps1, ['login', env.registry.url, '-u', env.registry.username, '--password-stdin'], {
        config,
        stdin: env.registry.password,
      });
      const r2 = await hostDocker(
        vps1,
        ['run', '-d', '--rm', '--name', name, '-p', `127.0.0.1:${port}:8000`, `${env.sampleApp.image}:never-healthy`],
        { config },
      );
      expect(r2.code).toBe(0);
    }
    try {
      await waitHttp(port, '/version');
      expect((await http(port, '/health')).status).toBe(503);
      expect((await http(port, '/version')).body).toBe('never-healthy');
    } finally {
      await hostDocker(vps1, ['rm', '-f', name]);
    }
  });

  it('has a version that is slow to start', async () => {
    const config = tempDir('dyce-docker-config-');
    await hostDocker(vps1, ['login', env.registry.url, '-u', env.registry.username, '--password-stdin'], {
      config,
      stdin: env.registry.password,
    });
    const name = uniqueName('lab-slow');
    const port = vps1.portBase + 8720;
    const r = await hostDocker(
      vps1,
      [
        'run',
        '-d',
        '--rm',
        '--name',
        name,
        '-e',
        'STARTUP_DELAY=3',
        '-p',
        `127.0.0.1:${port}:8000`,
        `${env.sampleApp.image}:slow-start`,
      ],
      { config },
    );
    expect(r.code).toBe(0);
    const started = Date.now();
    try {
      await new Promise((res) => setTimeout(res, 1000));
      await expect(http(port, '/health')).rejects.toThrow();
      await waitHttp(port, '/health', 15_000);
      expect(Date.now() - started).toBeGreaterThanOrEqual(2500);
      expect((await http(port, '/health')).status).toBe(200);
    } finally {
      await hostDocker(vps1, ['rm', '-f', name]);
    }
  });
});
