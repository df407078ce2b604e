import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { runLocal } from '../remote/local.js';
import { UserError } from '../util/errors.js';
import type { LabMachine } from './env.js';
import { ensurePackages } from './packages.js';
import { sshBanner, waitFor } from './probes.js';

/**
 * Lab VPSs that are machines of their own: a Debian 12 root filesystem built with debootstrap from Debian's packages,
 * booted with systemd as PID 1 in a system container of the runner's Docker engine. Each has its own process tree,
 * network namespace and IP address, package database, users, firewall (ufw/iptables in its own netns), service
 * manager and Docker engine (its /var/lib/docker is a volume of its own, so overlay2 works inside).
 */

const SUITE = 'bookworm';
const MIRROR = 'http://deb.debian.org/debian';
/** What a fresh small VPS has, plus what Ansible's modules need on the target (python3-apt, acl, passlib, docker SDK). */
export const MACHINE_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'openssh-server',
  'sudo',
  'docker.io',
  'iptables',
  'ufw',
  'iproute2',
  'python3',
  'python3-apt',
  'python3-docker',
  'python3-passlib',
  'python3-pip',
  'ca-certificates',
  'curl',
  'procps',
  'gnupg',
  'acl',
  'netcat-openbsd',
];
export const DEPLOY_UID = 1000;

/** Runs in the new root filesystem (chroot) once, when the image is built. Host keys are made per machine at `up`. */
const SETUP_SCRIPT = `set -eu
rm -f /etc/ssh/ssh_host_*
useradd --create-home --shell /bin/bash --uid ${DEPLOY_UID} deploy
usermod -p '*' deploy
printf 'deploy ALL=(ALL:ALL) NOPASSWD: ALL\\n' > /etc/sudoers.d/deploy
chmod 440 /etc/sudoers.d/deploy
printf 'PasswordAuthentication no\\nKbdInteractiveAuthentication no\\nPermitRootLogin prohibit-password\\nMaxSessions 100\\nMaxStartups 100:30:200\\n' > /etc/ssh/sshd_config.d/dyce-lab.conf
printf 'deb ${MIRROR} ${SUITE} main\\ndeb ${MIRROR} ${SUITE}-updates main\\ndeb http://deb.debian.org/debian-security ${SUITE}-security main\\n' > /etc/apt/sources.list
# A container has no consoles, kernel modules or hardware clock to manage.
for u in getty@tty1.service console-getty.service systemd-modules-load.service sys-kernel-config.mount sys-kernel-debug.mount systemd-timesyncd.service; do ln -sf /dev/null /etc/systemd/system/$u; done
apt-get update -qq
apt-get clean
rm -f /etc/machine-id /var/lib/dbus/machine-id && touch /etc/machine-id
`;

/** Capabilities the machine VPSs do not get: those that act on the kernel or hardware the machine shares with them. */
const DROPPED_CAPS = [
  'SYS_RESOURCE', // not in this machine's bounding set: --privileged is refused here for that reason
  'SYS_MODULE',
  'SYS_TIME',
  'SYS_BOOT',
  'SYS_RAWIO',
  'SYSLOG',
  'MAC_ADMIN',
  'MAC_OVERRIDE',
  'AUDIT_CONTROL',
  'WAKE_ALARM',
  'BLOCK_SUSPEND',
];

export const MACHINE_NETWORK = 'dyce-lab-machines';
const SUBNET_PREFIX = '172.30.0';
/** The machine's own address on the machines' network: where the VPSs reach the lab's registry and Loki receiver. */
export const MACHINE_GATEWAY = `${SUBNET_PREFIX}.1`;
/**
 * Lab services that listen on the machine's loopback (registry 5000, Loki 3100). Each machine VPS reaches them on its
 * own 127.0.0.1 too (a socket-activated systemd-socket-proxyd to the gateway), so image references and Loki URLs are
 * the same for every lab host.
 */
export const FORWARDED_PORTS = [5000, 3100];
const LABEL = 'dyce.lab.machine';

export function machineRecipeFingerprint(): string {
  return createHash('sha256')
    .update(JSON.stringify({ SUITE, MIRROR, MACHINE_PACKAGES, SETUP_SCRIPT }))
    .digest('hex')
    .slice(0, 12);
}

export interface MachineContext {
  dir: string;
  dockerBin: string;
  runnerHost: string;
  log: (m: string) => void;
}

async function must(argv: string[], what: string, opts: Parameters<typeof runLocal>[1] = {}): Promise<string> {
  const r = await runLocal(argv, opts);
  if (r.code !== 0)
    throw new UserError(
      `${what} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-8).join('\n')}`,
    );
  return r.stdout;
}

function docker(ctx: MachineContext, ...args: string[]): string[] {
  return [ctx.dockerBin, '-H', ctx.runnerHost, ...args];
}

/**
 * The machine image `dyce-lab/machine:<fingerprint of the recipe>`. The root filesystem is built once per recipe and
 * kept as a tarball in the lab's data dir, so a removed image is re-imported in seconds, and a changed recipe builds anew.
 */
export async function ensureMachineImage(ctx: MachineContext): Promise<string> {
  const fp = machineRecipeFingerprint();
  const image = `dyce-lab/machine:${fp}`;
  if ((await runLocal(docker(ctx, 'image', 'inspect', '--format', '{{.Id}}', image))).code === 0) return image;
  const cache = join(ctx.dir, 'rootfs');
  mkdirSync(cache, { recursive: true });
  const tar = join(cache, `${fp}.tar`);
  if (!existsSync(tar)) {
    await ensurePackages(['debootstrap'], ctx.log);
    // Older recipes' tarballs are of no further use.
    for (const f of readdirSync(cache)) if (f.endsWith('.tar')) rmSync(join(cache, f), { force: true });
    const root = join(cache, `${fp}.build`);
    rmSync(root, { recursive: true, force: true });
    ctx.log(`building the machine VPS root filesystem (debootstrap ${SUITE}, ${MACHINE_PACKAGES.length} packages)`);
    await must(
      ['debootstrap', '--variant=minbase', `--include=${MACHINE_PACKAGES.join(',')}`, SUITE, root, MIRROR],
      'debootstrap of the machine VPS root filesystem',
    );
    writeFileSync(join(root, 'etc', 'resolv.conf'), readFileSync('/etc/resolv.conf'));
    writeFileSync(join(root, 'tmp', 'dyce-setup.sh'), SETUP_SCRIPT);
    await must(['chroot', root, '/bin/sh', '/tmp/dyce-setup.sh'], 'the machine VPS setup script (chroot)');
    rmSync(join(root, 'tmp', 'dyce-setup.sh'));
    writeFileSync(join(root, 'etc', 'resolv.conf'), '');
    await must(['tar', '--numeric-owner', '-C', root, '-cf', `${tar}.tmp`, '.'], 'tar of the machine root filesystem');
    renameSync(`${tar}.tmp`, tar);
    rmSync(root, { recursive: true, force: true });
  }
  await must(
    docker(ctx, 'import', '--change', 'CMD ["/lib/systemd/systemd"]', '--change', 'ENV container=docker', tar, image),
    'docker import of the machine VPS image',
  );
  return image;
}

/** The machines' own bridge network, made once before any machine (they come up in parallel). */
export async function ensureMachineNetwork(ctx: MachineContext): Promise<void> {
  if ((await runLocal(docker(ctx, 'network', 'inspect', MACHINE_NETWORK))).code === 0) return;
  await must(
    docker(
      ctx,
      'network',
      'create',
      '--driver',
      'bridge',
      '--subnet',
      `${SUBNET_PREFIX}.0/24`,
      '--gateway',
      `${SUBNET_PREFIX}.1`,
      '--label',
      `${LABEL}=network`,
      MACHINE_NETWORK,
    ),
    `docker network create ${MACHINE_NETWORK}`,
  );
}

export function machineName(i: number): string {
  return `mvps${i}`;
}

function containerName(name: string): string {
  return `dyce-lab-${name}`;
}

function machineAddress(i: number): string {
  return `${SUBNET_PREFIX}.${10 + i}`;
}

async function ensureHostKey(path: string, comment: string): Promise<void> {
  if (existsSync(path) && existsSync(`${path}.pub`)) return;
  rmSync(path, { force: true });
  rmSync(`${path}.pub`, { force: true });
  await must(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path], `ssh-keygen ${path}`);
}

function fingerprintOf(pubLine: string): string {
  const blob = Buffer.from(pubLine.trim().split(/\s+/)[1] ?? '', 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** What goes into a new machine before it boots: its host key, the lab key for root and deploy, the lab forwards. */
async function seedTar(dir: string, name: string, labPub: string): Promise<string> {
  const seed = join(dir, 'seed');
  rmSync(seed, { recursive: true, force: true });
  for (const d of ['etc/ssh', 'root/.ssh', 'home/deploy/.ssh']) mkdirSync(join(seed, d), { recursive: true });
  const key = join(dir, 'ssh_host_ed25519_key');
  await ensureHostKey(key, `dyce-lab ${name} host key`);
  writeFileSync(join(seed, 'etc/ssh/ssh_host_ed25519_key'), readFileSync(key), { mode: 0o600 });
  writeFileSync(join(seed, 'etc/ssh/ssh_host_ed25519_key.pub'), readFileSync(`${key}.pub`), { mode: 0o644 });
  for (const u of ['root', 'home/deploy'])
    writeFileSync(join(seed, u, '.ssh/authorized_keys'), labPub, { mode: 0o600 });
  const units = join(seed, 'etc/systemd/system');
  mkdirSync(join(units, 'sockets.target.wants'), { recursive: true });
  for (const port of FORWARDED_PORTS) {
    const unit = `dyce-lab-forward-${port}`;
    writeFileSync(
      join(units, `${unit}.socket`),
      `[Unit]\nDescription=dyce lab: 127.0.0.1:${port} is the lab's port ${port}\n[Socket]\nListenStream=127.0.0.1:${port}\n[Install]\nWantedBy=sockets.target\n`,
    );
    writeFileSync(
      join(units, `${unit}.service`),
      `[Unit]\nDescription=dyce lab: forward to ${MACHINE_GATEWAY}:${port}\n[Service]\nExecStart=/lib/systemd/systemd-socket-proxyd ${MACHINE_GATEWAY}:${port}\n`,
    );
    symlinkSync(`../${unit}.socket`, join(units, 'sockets.target.wants', `${unit}.socket`));
  }
  const tar = join(dir, 'seed.tar');
  // Owners as on the machine: everything root's but deploy's home.
  await must(
    ['tar', '--numeric-owner', '--owner=0', '--group=0', '-C', seed, '-cf', tar, '--exclude=home', '.'],
    'tar of the machine seed',
  );
  await must(
    ['tar', '--numeric-owner', `--owner=${DEPLOY_UID}`, `--group=${DEPLOY_UID}`, '-C', seed, '-rf', tar, 'home/deploy'],
    'tar of the machine seed (deploy)',
  );
  rmSync(seed, { recursive: true, force: true });
  return tar;
}

/** Bumped when what seedTar writes changes: machines made with an older seed are recreated. */
const SEED_VERSION = '3';

interface Inspected {
  running: boolean;
  image: string;
  seed: string;
}

async function inspectContainer(ctx: MachineContext, name: string): Promise<Inspected | undefined> {
  const r = await runLocal(
    docker(
      ctx,
      'container',
      'inspect',
      '--format',
      `{{.State.Running}} {{.Config.Image}} {{index .Config.Labels "${LABEL}.seed"}}`,
      name,
    ),
  );
  if (r.code !== 0) return undefined;
  const [running, image, seed] = r.stdout.trim().split(' ');
  return { running: running === 'true', image: image ?? '', seed: seed ?? '' };
}

/**
 * Machine VPS i: created from the image (or recreated when the image changed, or when `fresh` asks for a new
 * machine), started, and reachable over SSH on its own address, port 22. Idempotent.
 */
export async function ensureMachine(
  ctx: MachineContext,
  i: number,
  image: string,
  labPub: string,
  fresh = false,
): Promise<LabMachine> {
  const name = machineName(i);
  const container = containerName(name);
  const address = machineAddress(i);
  const dir = join(ctx.dir, 'machines', name);
  mkdirSync(dir, { recursive: true });
  const volume = `${container}-docker`;
  let state = await inspectContainer(ctx, container);
  if (state && (fresh || state.image !== image || state.seed !== SEED_VERSION)) {
    await must(docker(ctx, 'rm', '--force', '--volumes', container), `docker rm ${container}`);
    await runLocal(docker(ctx, 'volume', 'rm', '--force', volume));
    state = undefined;
  }
  if (!state) {
    await must(
      docker(
        ctx,
        'create',
        '--name',
        container,
        '--hostname',
        name,
        // systemd as PID 1 shuts down on this signal.
        '--stop-signal',
        'SIGRTMIN+3',
        '--label',
        `${LABEL}=${name}`,
        '--label',
        `${LABEL}.seed=${SEED_VERSION}`,
        '--network',
        MACHINE_NETWORK,
        '--ip',
        address,
        '--cap-add',
        'ALL',
        ...DROPPED_CAPS.flatMap((c) => ['--cap-drop', c]),
        '--security-opt',
        'seccomp=unconfined',
        '--security-opt',
        'apparmor=unconfined',
        '--tmpfs',
        '/run',
        '--tmpfs',
        '/run/lock',
        '--volume',
        '/sys/fs/cgroup:/sys/fs/cgroup:ro',
        '--volume',
        `${volume}:/var/lib/docker`,
        image,
      ),
      `docker create ${container}`,
    );
    const seed = await seedTar(dir, name, labPub);
    await must(docker(ctx, 'cp', '--archive', '-', `${container}:/`), `docker cp of the seed into ${container}`, {
      stdin: readFileSync(seed),
    });
    rmSync(seed, { force: true });
  }
  if (!state?.running) await must(docker(ctx, 'start', container), `docker start ${container}`);
  await waitFor(
    `${name} sshd`,
    () => sshBanner(22, address),
    60_000,
    () => '',
  );
  const pub = readFileSync(join(dir, 'ssh_host_ed25519_key.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  return {
    name,
    address,
    sshPort: 22,
    users: ['root', 'deploy'],
    knownHosts: `${address} ${pub}`,
    fingerprint: fingerprintOf(pub),
    container,
  };
}

/**
 * Stops the machine VPSs the lab lists (their containers stay, for a fast next `up`) and returns their lab names, as
 * `lab status` shows them. Machines a test made for itself (not in the lab's list) are left alone.
 */
export async function stopMachines(
  ctx: Omit<MachineContext, 'log'>,
  machines: readonly LabMachine[],
): Promise<string[]> {
  const running = machineStatus(ctx, [...machines]).filter((m) => m.running);
  const byName = new Map(machines.map((m) => [m.name, m.container]));
  const containers = running.map((m) => byName.get(m.name)!);
  if (containers.length)
    await must(
      docker({ ...ctx, log: () => {} }, 'stop', '--time', '10', ...containers),
      'docker stop of the machine VPSs',
    );
  return running.map((m) => m.name);
}

/** Each machine's container state (its init's PID in this machine's PID namespace), synchronously, for `lab status`. */
export function machineStatus(
  ctx: Omit<MachineContext, 'log'>,
  machines: LabMachine[],
): { name: string; pid: number; running: boolean }[] {
  return machines.map((m) => {
    const r = spawnSync(
      ctx.dockerBin,
      ['-H', ctx.runnerHost, 'container', 'inspect', '--format', '{{.State.Running}} {{.State.Pid}}', m.container],
      {
        encoding: 'utf8',
      },
    );
    const [running, pid] = (r.status === 0 ? r.stdout : '').trim().split(' ');
    return { name: m.name, pid: Number(pid ?? 0) || 0, running: running === 'true' };
  });
}

/**
 * On the machine: the lab's loopback services, also on the machines' gateway address (recorded processes, so that
 * `lab down` stops them). systemd-socket-activate listens and hands the socket to systemd-socket-proxyd.
 */
export function gatewayForwarders(): { name: string; argv: string[] }[] {
  return FORWARDED_PORTS.map((port) => ({
    name: `machines-forward-${port}`,
    argv: [
      '/usr/bin/systemd-socket-activate',
      '--listen',
      `${MACHINE_GATEWAY}:${port}`,
      '/lib/systemd/systemd-socket-proxyd',
      `127.0.0.1:${port}`,
    ],
  }));
}
