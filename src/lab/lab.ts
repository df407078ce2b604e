import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runLocal } from '../remote/local.js';
import { UserError } from '../util/errors.js';
import { type LabEnv, type LabHost, labDir, labEnvPath } from './env.js';
import { labLokiUp } from './loki/lab-loki.js';
import {
  ensureMachine,
  ensureMachineImage,
  ensureMachineNetwork,
  gatewayForwarders,
  machineName,
  machineStatus,
  stopMachines,
} from './machines.js';
import { ensurePackages, LAB_PACKAGES } from './packages.js';
import { httpStatus, sshBanner, waitFor } from './probes.js';
import { isRunning, readRecord, startProcess, stopProcess, tailFile } from './processes.js';
import {
  APP_BASE_IMAGE,
  BASE_IMAGE_APPLETS,
  SAMPLE_APP_DOCKERFILE,
  SAMPLE_APP_SERVER,
  SAMPLE_APP_VARIANTS,
} from './sample-app.js';

/** Debian's docker.io client (20.10, BuildKit built in), which `lab up` installs. */
const DEBIAN_DOCKER = '/usr/bin/docker';

/**
 * The Docker client the lab drives, chosen when it is needed, never when this module loads: on a fresh machine the
 * module loads before `lab up` installs docker.io, and another client (a 28.x one without buildx) may be first on
 * PATH. So this is Debian's client, which the lab's package step guarantees, and a clear error before that step ran.
 */
export function labDockerBin(): string {
  if (existsSync(DEBIAN_DOCKER)) return DEBIAN_DOCKER;
  throw new UserError(
    `the lab's Docker client ${DEBIAN_DOCKER} (Debian's docker.io) is missing: run \`dyce lab up\` first, which installs it`,
  );
}
export const REGISTRY_PORT = 5000;
export const LOKI_PORT = 3100;
const RUNNER_SOCKET = '/var/run/docker.sock';
const REGISTRY_USER = 'dyce';
const SAMPLE_REPO = 'dyce/sample-app';
const BASE_IMAGE = 'dyce-lab/base:latest';

export interface LabUpOptions {
  hosts?: number;
  /** Machine VPSs (mvps1..N), each a Debian system of its own; kept at the largest count asked for so far. */
  machines?: number;
  /** Machines to recreate from the image first (fresh VPSs for a test), e.g. ['mvps1']. */
  freshMachines?: string[];
  log?: (message: string) => void;
}

interface Layout {
  dir: string;
  pids: string;
  logs: string;
  ssh: string;
}

function layout(dir = labDir()): Layout {
  return { dir, pids: join(dir, 'pids'), logs: join(dir, 'logs'), ssh: join(dir, 'ssh') };
}

/** Host i (1-based): its ports, paths and names. Everything a host owns is derived from its index. */
function hostPlan(
  l: Layout,
  i: number,
): LabHost & { bridge: string; bridgeCidr: string; execRoot: string; hostKey: string; sshdConfig: string } {
  const name = `vps${i}`;
  const root = join(l.dir, 'hosts', name);
  const portBase = (i - 1) * 1000;
  // Unix socket paths are limited to 108 bytes: keep the exec root short.
  const execRoot = `/run/dyce-lab/${name}`;
  const prefix = join(root, 'nginx');
  return {
    name,
    address: '127.0.0.1',
    sshPort: 2221 + i,
    users: ['root', 'deploy'],
    knownHosts: '',
    fingerprint: '',
    dockerHost: `unix://${execRoot}/docker.sock`,
    dockerDataRoot: join(root, 'docker'),
    stateDir: join(root, 'dyce'),
    portBase,
    nginx: {
      prefix,
      conf: join(prefix, 'nginx.conf'),
      confDir: join(prefix, 'conf.d'),
      httpPort: 18080 + portBase,
      httpsPort: 18443 + portBase,
    },
    sshdLog: join(l.logs, `${name}-sshd.log`),
    bridge: `dyce-br${i}`,
    bridgeCidr: `172.31.${100 + i}.1/24`,
    execRoot,
    hostKey: join(root, 'ssh_host_ed25519_key'),
    sshdConfig: join(root, 'sshd_config'),
  };
}

async function must(argv: string[], what: string, opts: Parameters<typeof runLocal>[1] = {}): Promise<string> {
  const r = await runLocal(argv, opts);
  if (r.code !== 0)
    throw new UserError(
      `${what} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-8).join('\n')}`,
    );
  return r.stdout;
}

/** The argv of the lab's Docker client against one daemon. */
export function labDocker(dockerHost: string, ...args: string[]): string[] {
  return [labDockerBin(), '-H', dockerHost, ...args];
}

function fingerprintOf(pubLine: string): string {
  const blob = Buffer.from(pubLine.trim().split(/\s+/)[1] ?? '', 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

async function ensureKey(path: string, comment: string): Promise<void> {
  if (existsSync(path) && existsSync(`${path}.pub`)) return;
  rmSync(path, { force: true });
  rmSync(`${path}.pub`, { force: true });
  await must(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path], `ssh-keygen ${path}`);
  chmodSync(path, 0o600);
}

async function ensureUsers(l: Layout): Promise<void> {
  if ((await runLocal(['id', '-u', 'deploy'])).code !== 0) {
    await must(['useradd', '--create-home', '--shell', '/bin/bash', 'deploy'], 'useradd deploy');
  }
  // A locked password ('!') makes sshd refuse even key logins when PAM is off; '*' means "no password" without locking.
  const shadow = readFileSync('/etc/shadow', 'utf8');
  if (/^deploy:!/m.test(shadow)) await must(['usermod', '-p', '*', 'deploy'], 'usermod deploy');
  const sudoers = '/etc/sudoers.d/dyce-lab';
  const wanted =
    '# Written by `dyce lab up`: the lab user `deploy` has passwordless sudo; DOCKER_HOST selects the lab host\'s own dockerd.\nDefaults env_keep += "DOCKER_HOST"\ndeploy ALL=(ALL:ALL) NOPASSWD: ALL\n';
  if (!existsSync(sudoers) || readFileSync(sudoers, 'utf8') !== wanted) {
    const tmp = join(l.dir, 'sudoers.tmp');
    writeFileSync(tmp, wanted, { mode: 0o440 });
    await must(['visudo', '-cf', tmp], 'visudo check of the lab sudoers file');
    writeFileSync(sudoers, wanted, { mode: 0o440 });
    rmSync(tmp);
  }
  const pub = readFileSync(join(l.ssh, 'id_ed25519.pub'), 'utf8');
  const ak = join(l.ssh, 'authorized_keys');
  mkdirSync(ak, { recursive: true, mode: 0o755 });
  for (const u of ['root', 'deploy']) {
    const file = join(ak, u);
    if (existsSync(file) && readFileSync(file, 'utf8') === pub) continue;
    // Write then rename: sshd must never read a half-written file (a concurrent `lab up` and a login).
    writeFileSync(`${file}.tmp`, pub, { mode: 0o644 });
    renameSync(`${file}.tmp`, file);
  }
}

async function ensureRegistry(l: Layout): Promise<{ password: string; passwordFile: string }> {
  const root = join(l.dir, 'registry');
  mkdirSync(join(root, 'data'), { recursive: true });
  const passwordFile = join(root, 'password');
  if (!existsSync(passwordFile)) writeFileSync(passwordFile, randomBytes(18).toString('base64url'), { mode: 0o600 });
  const password = readFileSync(passwordFile, 'utf8').trim();
  const htpasswd = join(root, 'htpasswd');
  if (!existsSync(htpasswd)) {
    // -i reads the password from stdin: never on a command line.
    await must(['htpasswd', '-B', '-i', '-c', htpasswd, REGISTRY_USER], 'htpasswd', { stdin: password });
  }
  const config = join(root, 'config.yml');
  const secretFile = join(root, 'http-secret');
  if (!existsSync(secretFile)) writeFileSync(secretFile, randomBytes(24).toString('hex'), { mode: 0o600 });
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(root, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${REGISTRY_PORT}`,
      `  secret: ${readFileSync(secretFile, 'utf8').trim()}`,
      'auth:',
      '  htpasswd:',
      '    realm: dyce-lab',
      `    path: ${htpasswd}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  if (!isRunning(readRecord(l.pids, 'registry'))) {
    if ((await httpStatus({ port: REGISTRY_PORT }, '/v2/')) !== undefined)
      throw new UserError(
        `port ${REGISTRY_PORT} is taken by a process the lab did not start; stop it, or it will shadow the lab registry`,
      );
    startProcess(l.pids, 'registry', ['/usr/bin/docker-registry', 'serve', config], {
      log: join(l.logs, 'registry.log'),
    });
  }
  return { password, passwordFile };
}

/** Starts a dockerd unless one answers on the socket; cleans a stale pidfile left by a killed daemon. */
async function ensureDockerd(l: Layout, name: string, socket: string, args: string[], pidfile: string): Promise<void> {
  if ((await httpStatus({ socketPath: socket }, '/_ping')) === 200) return;
  const rec = readRecord(l.pids, name);
  if (isRunning(rec)) return; // starting; the caller waits for it
  if (existsSync(pidfile)) {
    const pid = Number(readFileSync(pidfile, 'utf8').trim());
    if (!pid || !existsSync(`/proc/${pid}`)) rmSync(pidfile, { force: true });
    else throw new UserError(`a dockerd (pid ${pid}) owns ${pidfile} but does not answer on ${socket}`);
  }
  startProcess(l.pids, name, ['/usr/sbin/dockerd', ...args], { log: join(l.logs, `${name}.log`) });
}

function writeSshdConfig(l: Layout, h: ReturnType<typeof hostPlan>): void {
  writeFileSync(
    h.sshdConfig,
    [
      '# Written by `dyce lab up`: a lab "VPS". Key-only logins for root and deploy.',
      `Port ${h.sshPort}`,
      `ListenAddress ${h.address}`,
      `HostKey ${h.hostKey}`,
      `PidFile ${join(h.execRoot, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(l.ssh, 'authorized_keys', '%u')}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'UsePAM yes',
      'StrictModes yes',
      'LogLevel VERBOSE',
      'MaxSessions 100',
      'MaxStartups 100:30:200',
      'ClientAliveInterval 30',
      'PrintMotd no',
      `SetEnv DOCKER_HOST=${h.dockerHost} DYCE_LAB_HOST=${h.name}`,
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  );
}

function writeNginxConfig(h: ReturnType<typeof hostPlan>): void {
  const p = h.nginx.prefix;
  for (const d of ['conf.d', 'logs', 'tmp', 'html']) mkdirSync(join(p, d), { recursive: true });
  writeFileSync(
    h.nginx.conf,
    [
      "# Written by `dyce lab up`: this lab host's nginx. Sites and upstreams go in conf.d/.",
      'worker_processes 1;',
      'worker_rlimit_nofile 16384;',
      `pid ${join(p, 'nginx.pid')};`,
      `error_log ${join(p, 'logs', 'error.log')} warn;`,
      'events { worker_connections 4096; }',
      'http {',
      `  access_log ${join(p, 'logs', 'access.log')};`,
      `  client_body_temp_path ${join(p, 'tmp', 'body')};`,
      `  proxy_temp_path ${join(p, 'tmp', 'proxy')};`,
      `  fastcgi_temp_path ${join(p, 'tmp', 'fastcgi')};`,
      `  uwsgi_temp_path ${join(p, 'tmp', 'uwsgi')};`,
      `  scgi_temp_path ${join(p, 'tmp', 'scgi')};`,
      '  server {',
      `    listen 127.0.0.1:${h.nginx.httpPort} default_server;`,
      '    location = /__lab { return 200 "lab nginx\\n"; }',
      '  }',
      `  include ${join(p, 'conf.d', '*.conf')};`,
      '}',
      '',
    ].join('\n'),
  );
}

async function ensureBridge(h: ReturnType<typeof hostPlan>): Promise<void> {
  if ((await runLocal(['ip', 'link', 'show', h.bridge])).code === 0) return;
  await must(['ip', 'link', 'add', 'name', h.bridge, 'type', 'bridge'], `ip link add ${h.bridge}`);
  await must(['ip', 'addr', 'add', h.bridgeCidr, 'dev', h.bridge], `ip addr add ${h.bridgeCidr}`);
  await must(['ip', 'link', 'set', h.bridge, 'up'], `ip link set ${h.bridge} up`);
}

async function startHost(l: Layout, h: ReturnType<typeof hostPlan>): Promise<void> {
  for (const d of [h.execRoot, h.dockerDataRoot, h.stateDir, join(l.dir, 'hosts', h.name)])
    mkdirSync(d, { recursive: true });
  await ensureBridge(h);
  await ensureKey(h.hostKey, `dyce-lab ${h.name} host key`);
  writeSshdConfig(l, h);
  writeNginxConfig(h);
  const socket = h.dockerHost.replace('unix://', '');
  await ensureDockerd(
    l,
    `${h.name}-dockerd`,
    socket,
    [
      '--data-root',
      h.dockerDataRoot,
      '--exec-root',
      h.execRoot,
      '--pidfile',
      join(h.execRoot, 'docker.pid'),
      '-H',
      h.dockerHost,
      '--iptables=false',
      '--ip-masq=false',
      '-b',
      h.bridge,
      '--log-level',
      'warn',
      '--shutdown-timeout',
      '10',
    ],
    join(h.execRoot, 'docker.pid'),
  );
  if (!isRunning(readRecord(l.pids, `${h.name}-sshd`))) {
    if (await sshBanner(h.sshPort))
      throw new UserError(`port ${h.sshPort} already has an SSH server the lab did not start`);
    const check = await runLocal(['/usr/sbin/sshd', '-t', '-f', h.sshdConfig]);
    if (check.code !== 0) throw new UserError(`sshd config for ${h.name} is invalid: ${check.stderr.trim()}`);
    startProcess(l.pids, `${h.name}-sshd`, ['/usr/sbin/sshd', '-D', '-e', '-f', h.sshdConfig], { log: h.sshdLog });
  }
  if (!isRunning(readRecord(l.pids, `${h.name}-nginx`))) {
    const test = await runLocal(['nginx', '-t', '-p', `${h.nginx.prefix}/`, '-c', h.nginx.conf]);
    if (test.code !== 0) throw new UserError(`nginx config for ${h.name} is invalid: ${test.stderr.trim()}`);
    startProcess(
      l.pids,
      `${h.name}-nginx`,
      ['/usr/sbin/nginx', '-p', `${h.nginx.prefix}/`, '-c', h.nginx.conf, '-g', 'daemon off;'],
      { log: join(l.logs, `${h.name}-nginx.log`) },
    );
  }
  await Promise.all([
    waitFor(
      `${h.name} dockerd`,
      async () => (await httpStatus({ socketPath: socket }, '/_ping')) === 200,
      60_000,
      () => tailFile(join(l.logs, `${h.name}-dockerd.log`)),
    ),
    waitFor(
      `${h.name} sshd`,
      () => sshBanner(h.sshPort),
      15_000,
      () => tailFile(h.sshdLog),
    ),
    waitFor(
      `${h.name} nginx`,
      async () => (await httpStatus({ port: h.nginx.httpPort }, '/__lab')) === 200,
      15_000,
      () => tailFile(join(l.logs, `${h.name}-nginx.log`)),
    ),
  ]);
  const pub = readFileSync(`${h.hostKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  h.knownHosts = `[${h.address}]:${h.sshPort} ${pub}`;
  h.fingerprint = fingerprintOf(pub);
}

/** Builds the base image offline: busybox-static in a rootfs, `docker import`. */
async function ensureBaseImage(l: Layout, dockerHost: string): Promise<void> {
  if ((await runLocal(labDocker(dockerHost, 'image', 'inspect', BASE_IMAGE))).code === 0) return;
  const rootfs = join(l.dir, 'base-rootfs');
  rmSync(rootfs, { recursive: true, force: true });
  for (const d of ['bin', 'tmp', 'etc', 'app']) mkdirSync(join(rootfs, d), { recursive: true });
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  writeFileSync(join(rootfs, 'bin', 'busybox'), readFileSync('/bin/busybox'), { mode: 0o755 });
  for (const a of BASE_IMAGE_APPLETS) symlinkSync('busybox', join(rootfs, 'bin', a));
  writeFileSync(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(join(rootfs, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  const tar = join(l.dir, 'base-rootfs.tar');
  await must(['tar', '-C', rootfs, '-cf', tar, '.'], 'tar of the base rootfs');
  await must(
    labDocker(dockerHost, 'import', '--change', 'ENV PATH=/bin', '--change', 'CMD ["/bin/sh"]', tar, BASE_IMAGE),
    'docker import of the base image',
  );
  rmSync(tar, { force: true });
}

/**
 * The app base image: the busybox base plus the `node` binary running this process and the shared libraries it links
 * (found with `ldd`), each copied to the path the dynamic loader looks for. Rebuilt when that node binary changes.
 */
async function ensureAppBaseImage(l: Layout, dockerHost: string): Promise<string> {
  const node = realpathSync(process.execPath);
  const stamp = createHash('sha256')
    .update(`${node} ${statSync(node).size} ${statSync(node).mtimeMs}`)
    .digest('hex');
  const inspect = await runLocal(
    labDocker(dockerHost, 'image', 'inspect', '--format', '{{index .Config.Labels "dyce.node"}}', APP_BASE_IMAGE),
  );
  if (inspect.code === 0 && inspect.stdout.trim() === stamp.slice(0, 16)) return stamp;
  const ldd = await must(['ldd', node], `ldd ${node}`);
  const libs = [...ldd.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((m) => m[1] as string);
  const ctx = join(l.dir, 'app-base');
  rmSync(ctx, { recursive: true, force: true });
  mkdirSync(join(ctx, 'files', 'bin'), { recursive: true });
  copyFileSync(node, join(ctx, 'files', 'bin', 'node'));
  for (const lib of libs) {
    mkdirSync(join(ctx, 'files', dirname(lib)), { recursive: true });
    copyFileSync(realpathSync(lib), join(ctx, 'files', lib));
  }
  writeFileSync(join(ctx, 'Dockerfile'), `FROM ${BASE_IMAGE}\nCOPY files/ /\nLABEL dyce.node=${stamp.slice(0, 16)}\n`);
  await must(labDocker(dockerHost, 'build', '-q', '-t', APP_BASE_IMAGE, ctx), 'docker build of the app base image', {
    env: { ...process.env, DOCKER_BUILDKIT: '1' },
  });
  rmSync(ctx, { recursive: true, force: true });
  return stamp;
}

function sampleAppFingerprint(appBase: string): string {
  return createHash('sha256')
    .update(appBase)
    .update(SAMPLE_APP_SERVER)
    .update(SAMPLE_APP_DOCKERFILE)
    .update(JSON.stringify(SAMPLE_APP_VARIANTS))
    .digest('hex')
    .slice(0, 16);
}

/** Writes the sample app's build context (Dockerfile, handler, entrypoint) into an empty or new directory. */
export function writeSampleAppContext(ctx: string): void {
  rmSync(ctx, { recursive: true, force: true });
  mkdirSync(ctx, { recursive: true });
  writeFileSync(join(ctx, 'server.js'), SAMPLE_APP_SERVER);
  writeFileSync(join(ctx, 'Dockerfile'), SAMPLE_APP_DOCKERFILE);
}

async function registryHas(repo: string, tag: string, auth: string): Promise<boolean> {
  return (
    (await httpStatus({ port: REGISTRY_PORT }, `/v2/${repo}/manifests/${tag}`, {
      Authorization: `Basic ${auth}`,
      Accept: 'application/vnd.docker.distribution.manifest.v2+json',
    })) === 200
  );
}

/** Builds every sample-app variant with BuildKit and pushes it; skipped when the registry already has this exact build. */
async function ensureSampleApp(
  l: Layout,
  dockerHost: string,
  dockerConfig: string,
  registry: string,
  password: string,
  appBase: string,
  log: (m: string) => void,
): Promise<void> {
  const fp = sampleAppFingerprint(appBase);
  const stamp = join(l.dir, 'sample-app.stamp');
  const auth = Buffer.from(`${REGISTRY_USER}:${password}`).toString('base64');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === fp) {
    const present = await Promise.all(SAMPLE_APP_VARIANTS.map((v) => registryHas(SAMPLE_REPO, v.tag, auth)));
    if (present.every(Boolean)) return;
  }
  log('building the sample app (BuildKit) and pushing it to the lab registry');
  const ctx = join(l.dir, 'sample-app');
  writeSampleAppContext(ctx);
  const env = { ...process.env, DOCKER_BUILDKIT: '1', DOCKER_CONFIG: dockerConfig };
  for (const v of SAMPLE_APP_VARIANTS) {
    const ref = `${registry}/${SAMPLE_REPO}:${v.tag}`;
    const args = Object.entries(v.args).flatMap(([k, val]) => ['--build-arg', `${k}=${val}`]);
    await must(
      labDocker(dockerHost, 'build', '-q', '-t', ref, '-t', `dyce-sample-app:${v.tag}`, ...args, ctx),
      `docker build of the sample app ${v.tag}`,
      { env },
    );
    await must(labDocker(dockerHost, 'push', '-q', ref), `docker push ${ref}`, { env });
  }
  writeFileSync(stamp, fp);
}

async function ensureRunnerLogin(dockerConfig: string, registry: string, password: string): Promise<void> {
  mkdirSync(dockerConfig, { recursive: true, mode: 0o700 });
  const cfg = join(dockerConfig, 'config.json');
  if (existsSync(cfg) && readFileSync(cfg, 'utf8').includes(registry)) return;
  await must(
    [labDockerBin(), '--config', dockerConfig, 'login', registry, '-u', REGISTRY_USER, '--password-stdin'],
    `docker login ${registry}`,
    { stdin: password },
  );
}

/** The checkout's bin/dyce.js, found from this module whether it runs from src/ or from the build/ bundle. */
function dyceBin(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const bin = join(dir, 'bin', 'dyce.js');
    if (existsSync(bin) && existsSync(join(dir, 'build', 'cli.js'))) return bin;
    dir = dirname(dir);
  }
  throw new UserError(
    'the Loki receiver runs as `dyce lab serve-loki`, but build/cli.js is missing: run `npm install` (or `npm run build`) first',
  );
}

/** The Loki-compatible receiver on 127.0.0.1:3100, as a recorded long-lived process. */
async function ensureLokiReceiver(l: Layout): Promise<void> {
  const ready = async () => (await httpStatus({ port: LOKI_PORT }, '/ready')) === 200;
  if (!isRunning(readRecord(l.pids, 'loki-receiver'))) {
    if (await ready()) throw new UserError(`port ${LOKI_PORT} already has a Loki the lab did not start; stop it first`);
    mkdirSync(join(l.dir, 'loki'), { recursive: true });
    startProcess(
      l.pids,
      'loki-receiver',
      [
        process.execPath,
        dyceBin(),
        'lab',
        'serve-loki',
        '--host',
        '127.0.0.1',
        '--port',
        String(LOKI_PORT),
        '--dir',
        join(l.dir, 'loki'),
      ],
      {
        log: join(l.logs, 'loki-receiver.log'),
      },
    );
  }
  await waitFor('Loki receiver', ready, 15_000, () => tailFile(join(l.logs, 'loki-receiver.log')));
}

/** Brings the lab up, idempotently: only what is missing is installed, started or built. */
export async function labUp(opts: LabUpOptions = {}): Promise<LabEnv> {
  const log = opts.log ?? (() => {});
  if (process.getuid?.() !== 0)
    throw new UserError('the lab needs root: it installs Debian packages and starts dockerd, sshd and nginx');
  const l = layout();
  for (const d of [l.dir, l.pids, l.logs, l.ssh]) mkdirSync(d, { recursive: true });
  chmodSync(l.dir, 0o755);
  await ensurePackages(LAB_PACKAGES, log);
  // Only now: the packages above may just have installed the client (see labDockerBin).
  const dockerBin = labDockerBin();
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  await ensureKey(join(l.ssh, 'id_ed25519'), 'dyce-lab');
  await ensureKey(join(l.ssh, 'wrong_ed25519'), 'dyce-lab wrong key');
  await ensureUsers(l);

  const previous = existsSync(labEnvPath(l.dir))
    ? (JSON.parse(readFileSync(labEnvPath(l.dir), 'utf8')) as LabEnv)
    : undefined;
  const count = Math.max(opts.hosts ?? 1, previous?.hosts.length ?? 1);
  const hosts = Array.from({ length: count }, (_, i) => hostPlan(l, i + 1));

  const { password, passwordFile } = await ensureRegistry(l);
  await ensureDockerd(l, 'runner-dockerd', RUNNER_SOCKET, ['--log-level', 'warn'], '/var/run/docker.pid');
  const registry = `127.0.0.1:${REGISTRY_PORT}`;
  const runnerHost = `unix://${RUNNER_SOCKET}`;
  const dockerConfig = join(l.dir, 'runner-docker-config');

  // Hosts come up while the runner builds: they share nothing.
  const hostsReady = Promise.all(hosts.map((h) => startHost(l, h)));
  // Awaited below; this only keeps an early failure from being reported as an unhandled rejection.
  hostsReady.catch(() => {});
  await Promise.all([
    waitFor(
      'runner dockerd',
      async () => (await httpStatus({ socketPath: RUNNER_SOCKET }, '/_ping')) === 200,
      60_000,
      () => tailFile(join(l.logs, 'runner-dockerd.log')),
    ),
    waitFor(
      'registry',
      async () => (await httpStatus({ port: REGISTRY_PORT }, '/v2/')) === 401,
      15_000,
      () => tailFile(join(l.logs, 'registry.log')),
    ),
  ]);
  await ensureRunnerLogin(dockerConfig, registry, password);
  await ensureBaseImage(l, runnerHost);
  const appBase = await ensureAppBaseImage(l, runnerHost);
  await ensureSampleApp(l, runnerHost, dockerConfig, registry, password, appBase, log);
  await ensureLokiReceiver(l);
  const machineCount = Math.max(opts.machines ?? 0, previous?.machines?.length ?? 0);
  let machines: LabEnv['machines'];
  if (machineCount > 0) {
    const ctx = { dir: l.dir, dockerBin, runnerHost, log };
    const image = await ensureMachineImage(ctx);
    await ensureMachineNetwork(ctx);
    await ensurePackages(['systemd'], log);
    for (const f of gatewayForwarders())
      if (!isRunning(readRecord(l.pids, f.name)))
        startProcess(l.pids, f.name, f.argv, { log: join(l.logs, `${f.name}.log`) });
    const labPub = readFileSync(join(l.ssh, 'id_ed25519.pub'), 'utf8');
    machines = await Promise.all(
      Array.from({ length: machineCount }, (_, i) =>
        ensureMachine(ctx, i + 1, image, labPub, opts.freshMachines?.includes(machineName(i + 1)) ?? false),
      ),
    );
  }
  await hostsReady;
  // The plugin goes on the first host only: the others lack it, as a fresh VPS would, so deploys can show installing it.
  const runnerTarget = { bin: dockerBin, host: runnerHost, config: dockerConfig };
  const lokiHosts = hosts.slice(0, 1);
  const loki = await labLokiUp({
    runner: runnerTarget,
    registry,
    hosts: lokiHosts.map((h) => ({ name: h.name, docker: { ...runnerTarget, host: h.dockerHost } })),
    previousRef: previous?.loki?.pluginRef,
    workDir: join(l.dir, 'tmp'),
    log,
  });

  const env: LabEnv = {
    dir: l.dir,
    sshKey: join(l.ssh, 'id_ed25519'),
    wrongSshKey: join(l.ssh, 'wrong_ed25519'),
    knownHostsFile: join(l.ssh, 'known_hosts'),
    registry: { url: registry, username: REGISTRY_USER, password, passwordFile },
    runner: { dockerHost: runnerHost, dockerConfig },
    dockerBin,
    loki: {
      url: `http://127.0.0.1:${LOKI_PORT}`,
      pushUrl: `http://127.0.0.1:${LOKI_PORT}/loki/api/v1/push`,
      port: LOKI_PORT,
      pluginRef: loki.ref,
      latestPluginRef: loki.latestRef,
      pluginHosts: lokiHosts.map((h) => h.name),
    },
    sampleApp: { image: `${registry}/${SAMPLE_REPO}`, tags: SAMPLE_APP_VARIANTS.map((v) => v.tag), port: 8000 },
    baseImage: BASE_IMAGE,
    hosts: hosts.map(({ bridge: _b, bridgeCidr: _c, execRoot: _e, hostKey: _k, sshdConfig: _s, ...h }) => h),
    ...(machines ? { machines } : {}),
  };
  writeFileSync(env.knownHostsFile, `${[...env.hosts, ...(machines ?? [])].map((h) => h.knownHosts).join('\n')}\n`);
  writeFileSync(labEnvPath(l.dir), `${JSON.stringify(env, null, 2)}\n`, { mode: 0o600 });
  return env;
}

/** Stops every process the lab recorded, and nothing else. Data (images, registry, keys) stays for a fast next `up`. */
export async function labDown(log: (m: string) => void = () => {}): Promise<string[]> {
  const l = layout();
  if (!existsSync(l.pids)) return [];
  const names = readdirSync(l.pids)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -5));
  // Front ends first, daemons last: nginx and sshd, then the hosts' dockerds and services, then the runner's dockerd.
  const order = (n: string) => (/-(nginx|sshd)$/.test(n) ? 0 : n === 'runner-dockerd' ? 2 : 1);
  const stopped: string[] = [];
  for (const stage of [0, 1, 2]) {
    // The machine VPSs run in the runner's engine: they stop before it does.
    if (stage === 2 && existsSync(labEnvPath(l.dir)) && existsSync(RUNNER_SOCKET)) {
      const env = JSON.parse(readFileSync(labEnvPath(l.dir), 'utf8')) as LabEnv;
      if (env.machines?.length) {
        const runner = { dir: l.dir, dockerBin: env.dockerBin, runnerHost: `unix://${RUNNER_SOCKET}` };
        for (const m of await stopMachines(runner, env.machines)) {
          stopped.push(m);
          log(`stopped ${m}`);
        }
      }
    }
    await Promise.all(
      names
        .filter((n) => order(n) === stage)
        .map(async (n) => {
          if (await stopProcess(l.pids, n)) {
            stopped.push(n);
            log(`stopped ${n}`);
          }
        }),
    );
  }
  return stopped;
}

export interface LabStatusEntry {
  name: string;
  pid: number;
  running: boolean;
}

export function labStatus(): LabStatusEntry[] {
  const l = layout();
  if (!existsSync(l.pids)) return [];
  const processes = readdirSync(l.pids)
    .filter((f) => f.endsWith('.json'))
    .map((f) => {
      const rec = readRecord(l.pids, f.slice(0, -5));
      return { name: f.slice(0, -5), pid: rec?.pid ?? 0, running: isRunning(rec) };
    });
  const env = existsSync(labEnvPath(l.dir))
    ? (JSON.parse(readFileSync(labEnvPath(l.dir), 'utf8')) as LabEnv)
    : undefined;
  const machines = env?.machines?.length
    ? machineStatus({ dir: l.dir, dockerBin: env.dockerBin, runnerHost: `unix://${RUNNER_SOCKET}` }, env.machines)
    : [];
  return [...processes, ...machines];
}

export function labTmpDir(prefix: string): string {
  return join(tmpdir(), `${prefix}-${randomBytes(4).toString('hex')}`);
}
