import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { constants } from 'node:os';
import { join } from 'node:path';
import { actionOutputText } from '../../src/cli/json.js';
import { nginxLayout, sitePath, upstreamPath } from '../../src/commands/nginx.js';
import type { LabEnv, LabHost } from '../../src/lab/env.js';
import { appDir, lockDir } from '../../src/plan/desired.js';
import { runLocal } from '../../src/remote/local.js';
import { DOCKER_BIN, hostDocker } from './lab.js';

const repoRoot = join(import.meta.dirname, '..', '..');

export interface CliRun {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The `--json` document's outputs (its last stdout line) as text, as the action writes them. */
  outputs: Record<string, string>;
}

export interface RunningCli {
  child: ChildProcess;
  /** Everything written to stderr so far. */
  stderr(): string;
  done: Promise<CliRun>;
}

/** What `dyce` reads from its environment besides PATH and HOME: secrets (`DYCE_*`) and the like. */
export type CliEnv = Record<string, string>;

/**
 * Runs `dyce <command> ... --json` from the source (what the bundle does, without a build) in a clean environment
 * (PATH, HOME and ENV only). FLAGS: `--name value` pairs, or the arguments as they are.
 */
export function startDyce(command: string, flags: Record<string, string> | readonly string[], env: CliEnv): RunningCli {
  const args = Array.isArray(flags) ? flags : Object.entries(flags).flatMap(([k, v]) => [`--${k}`, v]);
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), command, ...args, '--json'],
    {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...env },
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => {
    stdout += d;
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const done = new Promise<CliRun>((resolve) => {
    child.on('close', (code, signal) => {
      let outputs: Record<string, string> = {};
      try {
        // The `--json` document's outputs, as the action would write them (text; lists joined; objects as JSON).
        const doc = JSON.parse(stdout.trim().split('\n').pop() ?? '') as { outputs: Record<string, unknown> };
        outputs = Object.fromEntries(Object.entries(doc.outputs).map(([k, v]) => [k, actionOutputText(k, v)]));
      } catch {}
      // Killed by a signal: the code a shell would report (128 + its number).
      resolve({ code: code ?? (signal ? 128 + constants.signals[signal] : 1), signal, stdout, stderr, outputs });
    });
  });
  return { child, stderr: () => stderr, done };
}

export function runDyce(
  command: string,
  flags: Record<string, string> | readonly string[],
  env: CliEnv,
): Promise<CliRun> {
  return startDyce(command, flags, env).done;
}

/** The lab's SSH key and registry password, as `dyce` reads them from the environment. */
export function labSecrets(env: LabEnv): { DYCE_SSH_PRIVATE_KEY: string; DYCE_REGISTRY_PASSWORD: string } {
  return { DYCE_SSH_PRIVATE_KEY: readFileSync(env.sshKey, 'utf8'), DYCE_REGISTRY_PASSWORD: env.registry.password };
}

/** The `hosts` inventory line of a lab host, as root, with its state dir and nginx prefix. */
export function labHostLine(h: LabHost): string {
  return `${h.name} ansible_host=${h.address} ansible_port=${h.sshPort} ansible_user=root dyce_state_dir=${h.stateDir} dyce_nginx_prefix=${h.nginx.prefix}`;
}

/** GET PATH through a lab host's nginx, with a Host header: status and body ('' with status 0 when no answer). */
export function viaNginx(h: LabHost, serverName: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port: h.nginx.httpPort, path, headers: { host: serverName }, agent: false, timeout: 10_000 },
      (res) => {
        let body = '';
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end();
  });
}

/**
 * Pushes the lab's sample app under a repository of its own (`<registry>/dyce/<name>:<tag>` for each tag), from the
 * runner's Docker: images no other test uses, so a test may count and prune them. Returns the repository.
 */
export async function pushPrivateRepo(env: LabEnv, name: string, tags: string[]): Promise<string> {
  const registry = env.registry.url.replace(/^https?:\/\//, '').replace(/\/$/, '');
  const repo = `${registry}/dyce/${name}`;
  const denv = { ...process.env, DOCKER_HOST: env.runner.dockerHost, DOCKER_CONFIG: env.runner.dockerConfig };
  for (const tag of tags) {
    for (const argv of [
      [DOCKER_BIN, 'tag', `${env.sampleApp.image}:${tag}`, `${repo}:${tag}`],
      [DOCKER_BIN, 'push', '--quiet', `${repo}:${tag}`],
      [DOCKER_BIN, 'rmi', `${repo}:${tag}`],
    ]) {
      const r = await runLocal(argv, { env: denv });
      if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
    }
  }
  return repo;
}

/** An app deployed behind a lab host's nginx, Melton's shape: host networking, replicas from HOST_PORT up. */
export interface NginxApp {
  name: string;
  serverName: string;
  hostPort: number;
}

/** The `dyce deploy` flags every nginx-fronted lab app shares (2 replicas, quick health checks); no image. */
export function nginxAppFlags(env: LabEnv, h: LabHost, app: NginxApp): Record<string, string> {
  return {
    hosts: labHostLine(h),
    'known-hosts': h.knownHosts,
    'registry-username': env.registry.username,
    name: app.name,
    replicas: '2',
    port: String(env.sampleApp.port),
    'host-port': String(app.hostPort),
    'network-mode': 'host',
    proxy: 'nginx',
    'nginx-server-name': app.serverName,
    'nginx-http-listen': `127.0.0.1:${h.nginx.httpPort}`,
    'health-interval': '200ms',
    'health-deadline': '30s',
  };
}

/** Removes what deploying APP left on lab host H: its containers, nginx site and upstream (nginx reloaded), state, lock. */
export async function removeNginxApp(h: LabHost, app: string): Promise<void> {
  const ids = new Set<string>();
  for (const filter of [`label=dyce.app=${app}`, `name=${app}`]) {
    const ps = await hostDocker(h, ['ps', '-aq', '--filter', filter]);
    for (const id of ps.stdout.trim().split('\n').filter(Boolean)) ids.add(id);
  }
  if (ids.size) await hostDocker(h, ['rm', '-f', ...ids]);
  const layout = nginxLayout(h.nginx.prefix);
  await runLocal(['rm', '-f', sitePath(layout, app), upstreamPath(layout, app)]);
  await runLocal(['nginx', '-s', 'reload', '-p', `${layout.prefix}/`, '-c', layout.conf]);
  await runLocal(['rm', '-rf', appDir(h.stateDir, app), lockDir(h.stateDir, app)]);
}
