import { readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  installFromStdin,
  NGINX_TEST_FAILED,
  nginxLayout,
  RELOAD_CONFIRMED,
  removeConfig,
  renderSite,
  renderUpstream,
  sitePath,
  upstreamPath,
} from '../../src/commands/nginx.js';
import { containerLogTail, describeCheck, dialerFor, waitHealthy } from '../../src/deploy/health.js';
import { RecordingReporter } from '../../src/github/reporter.js';
import { parseKnownHosts } from '../../src/remote/known-hosts.js';
import { runLocal } from '../../src/remote/local.js';
import { SshExecutor } from '../../src/remote/ssh.js';
import { host, hostDocker, lab, tempDir, uniqueName } from '../support/lab.js';

// The health gate and the nginx config against the lab: sample-app containers on vps1's dockerd, checked through
// the SSH tunnel, and vps1's real nginx (nginx -t on its full config, graceful reload, proxying to a container).

const env = lab();
const vps1 = host(env);
const layout = nginxLayout(vps1.nginx.prefix);
const image = (tag: string) => `${env.sampleApp.image}:${tag}`;
const app = uniqueName('gate');
const containers: string[] = [];
const files: string[] = [];
let exec: SshExecutor;
let dir: string;
// Below the ephemeral range (32768+): a client socket's local port there can make a later bind fail.
const base = 25_000 + Math.floor(Math.random() * 5_000);

beforeAll(async () => {
  dir = tempDir('dyce-nginx-');
  exec = new SshExecutor(
    {
      host: vps1.name,
      address: vps1.address,
      port: vps1.sshPort,
      user: 'root',
      privateKey: readFileSync(env.sshKey),
      hostKey: { kind: 'known-hosts', entries: parseKnownHosts(vps1.knownHosts) },
    },
    { reporter: new RecordingReporter() },
  );
  await exec.connect();
  const login = await hostDocker(vps1, ['login', env.registry.url, '-u', env.registry.username, '--password-stdin'], {
    stdin: env.registry.password,
    config: dir,
  });
  expect(login.code, login.stderr).toBe(0);
});

afterAll(async () => {
  if (containers.length) await hostDocker(vps1, ['rm', '-f', ...containers]);
  for (const f of files) await exec.run(removeConfig(layout, f));
  await exec.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A sample-app container published on 127.0.0.1:port of vps1. */
async function start(tag: string, port: number, envVars: Record<string, string> = {}): Promise<string> {
  const name = `${app}-${tag}-${port}`;
  const args = ['run', '-d', '--name', name, '-p', `127.0.0.1:${port}:8000`];
  for (const [k, v] of Object.entries(envVars)) args.push('-e', `${k}=${v}`);
  const r = await hostDocker(vps1, [...args, image(tag)], { config: dir });
  expect(r.code, r.stderr).toBe(0);
  containers.push(name);
  return name;
}

const dial = () => dialerFor(exec);
const gate = { path: '/health', timeoutMs: 1000, intervalMs: 200 };

describe('health gate through the SSH tunnel', () => {
  it('v1 passes, and the answer is what the app said', async () => {
    await start('v1', base);
    const r = await waitHealthy(dial(), base, { ...gate, deadlineMs: 30_000 });
    expect(r.healthy, describeCheck(r.last)).toBe(true);
    expect(r.last).toMatchObject({ status: 200, body: 'ok v1' });
  });

  it('never-healthy fails at the deadline with the 503 it saw, and its log tail is readable', async () => {
    const name = await start('never-healthy', base + 1);
    const r = await waitHealthy(dial(), base + 1, { ...gate, deadlineMs: 3000 });
    expect(r.healthy).toBe(false);
    expect(r.checks).toBeGreaterThan(1);
    expect(describeCheck(r.last)).toBe('HTTP 503: "unhealthy never-healthy"');
    const log = await containerLogTail(exec, name, { lines: 100 });
    expect(log).toContain('sample app never-healthy');
    expect(log).toMatch(/path=\/health status=503/);
    expect(await containerLogTail(exec, `${app}-no-such-container`)).toMatch(/docker logs .* failed/);
  });

  it('slow-start passes within the deadline, after failed checks while it starts', async () => {
    await start('slow-start', base + 2, { STARTUP_DELAY: '3' });
    const seen: string[] = [];
    const r = await waitHealthy(dial(), base + 2, {
      ...gate,
      deadlineMs: 30_000,
      onCheck: (c) => seen.push(describeCheck(c)),
    });
    expect(r.healthy, seen.join('\n')).toBe(true);
    expect(seen.length).toBeGreaterThan(1);
    expect(seen[0]).not.toMatch(/^HTTP 200/);
    expect(r.last?.body).toBe('ok slow-start');
  });

  it('slow-start beyond the deadline fails with what the check saw', async () => {
    await start('slow-start', base + 3);
    const r = await waitHealthy(dial(), base + 3, { ...gate, deadlineMs: 2000 });
    expect(r.healthy).toBe(false);
    expect(r.last?.status).toBeUndefined();
    expect(r.last?.error).toBeTruthy();
  });

  it('a port nothing listens on: refused, through the tunnel', async () => {
    const r = await waitHealthy(dial(), base + 9, { ...gate, deadlineMs: 500 });
    expect(r.healthy).toBe(false);
    expect(r.last?.error).toMatch(/refused/);
  });
});

function get(
  port: number,
  hostHeader: string,
  path = '/version',
  tls = false,
): Promise<{ status: number; body: string; location?: string }> {
  return new Promise((resolve, reject) => {
    const opts = { host: '127.0.0.1', port, path, headers: { host: hostHeader }, agent: false as const };
    const req = tls ? httpsRequest({ ...opts, rejectUnauthorized: false, servername: hostHeader }) : httpRequest(opts);
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body,
          ...(res.headers.location ? { location: res.headers.location } : {}),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

async function install(target: string, content: string) {
  return exec.run(installFromStdin(layout, target), { stdin: content });
}

describe('nginx on a lab host', () => {
  const serverName = `${app}.lab.test`;

  it('the rendered upstream and TLS site pass nginx -t and proxy to a sample-app container; 80 redirects to 443', async () => {
    const port = base + 4;
    await start('v1', port);
    expect((await waitHealthy(dial(), port, { ...gate, deadlineMs: 30_000 })).healthy).toBe(true);
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    const made = await runLocal([
      'openssl',
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${serverName}`,
      '-days',
      '1',
      '-keyout',
      key,
      '-out',
      cert,
    ]);
    expect(made.code, made.stderr).toBe(0);
    const static_ = join(dir, 'static');
    await runLocal(['mkdir', '-p', static_]);
    await runLocal([
      'sh',
      '-c',
      'echo "static file" > "$1/hello.txt" && chmod -R a+rX "$1" && chmod a+x "$2"',
      'sh',
      static_,
      dir,
    ]);
    const up = upstreamPath(layout, app);
    const site = sitePath(layout, app);
    files.push(site, up);
    expect((await install(up, renderUpstream({ app, ports: [port] }))).code).toBe(0);
    const r = await install(
      site,
      renderSite({
        app,
        serverNames: [serverName],
        tls: { cert, key },
        httpListen: `127.0.0.1:${vps1.nginx.httpPort}`,
        httpsListen: `127.0.0.1:${vps1.nginx.httpsPort}`,
        staticDir: static_,
      }),
    );
    expect(r.code, r.stderr).toBe(0);
    // The script saw nginx's workers of before leave (found through the pid file of the main config).
    expect(r.stdout.trim()).toBe(RELOAD_CONFIRMED);
    // The reload is asynchronous: the new workers answer shortly after nginx -s reload returns.
    const deadline = Date.now() + 10_000;
    let answer = await get(vps1.nginx.httpsPort, serverName, '/version', true).catch(() => undefined);
    while (answer?.body !== 'v1' && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 100));
      answer = await get(vps1.nginx.httpsPort, serverName, '/version', true).catch(() => undefined);
    }
    expect(answer).toMatchObject({ status: 200, body: 'v1' });
    expect(await get(vps1.nginx.httpsPort, serverName, '/static/hello.txt', true)).toMatchObject({
      status: 200,
      body: 'static file\n',
    });
    // After a reload the old worker may still accept on a port both configs listen on, for a moment.
    let redirect = await get(vps1.nginx.httpPort, serverName, '/version?x=1');
    while (redirect.status !== 301 && Date.now() < deadline + 10_000) {
      await new Promise((res) => setTimeout(res, 100));
      redirect = await get(vps1.nginx.httpPort, serverName, '/version?x=1');
    }
    expect(redirect.status).toBe(301);
    expect(redirect.location).toBe(`https://${serverName}:${vps1.nginx.httpsPort}/version?x=1`);
  });

  it('a config that fails nginx -t is never loaded: the file is restored and nginx keeps serving', async () => {
    const up = upstreamPath(layout, app);
    const before = await exec.run(['cat', up]);
    expect(before.code).toBe(0);
    const bad = `${renderUpstream({ app, ports: [base + 4] })}\nthis is not nginx;\n`;
    const r = await install(up, bad);
    expect(r.code).toBe(NGINX_TEST_FAILED);
    expect(r.stderr).toMatch(/unknown directive "this"/);
    expect((await exec.run(['cat', up])).stdout).toBe(before.stdout);
    expect((await exec.run(['test', '-e', `${up}.dyce-next`])).code).not.toBe(0);
    expect(await get(vps1.nginx.httpsPort, serverName, '/version', true)).toMatchObject({ status: 200, body: 'v1' });
    // A config of someone else's that is already broken also blocks the switch: the full config is tested.
    const other = join(layout.confDir, `${app}-broken.conf`);
    await exec.run(['sh', '-c', 'printf "broken directive;\\n" > "$1"', 'sh', other]);
    try {
      const blocked = await install(up, renderUpstream({ app, ports: [base + 4] }));
      expect(blocked.code).toBe(NGINX_TEST_FAILED);
    } finally {
      await exec.run(['rm', '-f', other]);
    }
  });
});
