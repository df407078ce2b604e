/**
 * Packaging of the lab's `loki` log-driver plugin and its lifecycle on a Docker daemon:
 * rootfs + config.json → `docker plugin create` → `docker plugin push` to the lab registry → `docker plugin install
 * --alias loki` on any host, exactly how grafana/loki-docker-driver reaches a production host.
 *
 * The plugin program is the TypeScript driver (driver-main.ts) bundled to one file, run by a Node binary copied into
 * the rootfs together with the shared libraries `ldd` lists for it.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Executor, runChecked } from '../../remote/executor.js';
import { LocalExecutor, runLocal } from '../../remote/local.js';
import { UserError } from '../../util/errors.js';

/** How to reach one daemon with the docker CLI: global flags, never environment, so argv says it all. */
export interface DockerTarget {
  /** The docker client binary (default `docker`). */
  bin?: string;
  /** `-H`, e.g. unix:///var/lib/dyce-lab/hosts/vps2/docker.sock; default: the client's own default. */
  host?: string;
  /** `--config`: a docker config dir (registry credentials for push/install). */
  config?: string;
}

export const LOKI_PLUGIN_ALIAS = 'loki';
export const LOKI_PLUGIN_SOCKET = 'loki.sock';

const NODE_IN_ROOTFS = '/usr/local/bin/node';
const DRIVER_IN_ROOTFS = '/driver/loki-driver.mjs';
const LIB_PATH = '/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib64:/usr/lib64:/lib:/usr/lib';

/** The plugin's config.json (Docker plugin config v1). */
export function lokiPluginConfig(): Record<string, unknown> {
  return {
    description:
      'Loki logging driver (Dyce lab build, speaks the same protocol and options as grafana/loki-docker-driver)',
    documentation: 'https://grafana.com/docs/loki/latest/send-data/docker-driver/',
    entrypoint: [NODE_IN_ROOTFS, DRIVER_IN_ROOTFS],
    workdir: '/',
    network: { type: 'host' },
    interface: { types: ['docker.logdriver/1.0'], socket: LOKI_PLUGIN_SOCKET },
    env: [
      { name: 'LD_LIBRARY_PATH', description: 'where the copied shared libraries are', value: LIB_PATH, settable: [] },
      { name: 'LOG_LEVEL', description: 'accepted for compatibility', value: 'info', settable: ['value'] },
      {
        name: 'LOKI_HOST_LABEL',
        description: 'the `host` label (default: the hostname, as the real driver)',
        value: '',
        settable: ['value'],
      },
    ],
  };
}

export function dockerArgv(target: DockerTarget, ...args: string[]): string[] {
  return [
    target.bin ?? 'docker',
    ...(target.config ? ['--config', target.config] : []),
    ...(target.host ? ['-H', target.host] : []),
    ...args,
  ];
}

export const pluginArgv = {
  create: (t: DockerTarget, name: string, dir: string) => dockerArgv(t, 'plugin', 'create', name, dir),
  enable: (t: DockerTarget, name: string) => dockerArgv(t, 'plugin', 'enable', name),
  disable: (t: DockerTarget, name: string) => dockerArgv(t, 'plugin', 'disable', '-f', name),
  push: (t: DockerTarget, name: string) => dockerArgv(t, 'plugin', 'push', name),
  remove: (t: DockerTarget, name: string) => dockerArgv(t, 'plugin', 'rm', '-f', name),
  install: (t: DockerTarget, ref: string, alias: string, settings: Record<string, string> = {}) =>
    dockerArgv(
      t,
      'plugin',
      'install',
      '--grant-all-permissions',
      '--alias',
      alias,
      ref,
      ...Object.entries(settings).map(([k, v]) => `${k}=${v}`),
    ),
  inspect: (t: DockerTarget, name: string) => dockerArgv(t, 'plugin', 'inspect', name),
};

/** Paths of the shared objects `ldd` reports for a binary (the ELF interpreter included). */
export function parseLdd(output: string): string[] {
  const libs: string[] = [];
  for (const line of output.split('\n')) {
    const arrow = /=>\s*(\/\S+)/.exec(line);
    const bare = /^\s*(\/\S+)\s+\(0x/.exec(line);
    const p = arrow?.[1] ?? bare?.[1];
    if (p) libs.push(p);
  }
  return libs;
}

function driverEntry(): string {
  // From src/lab/loki/ (tests, tsx) or from the CLI bundle in build/ or build/chunks/: walk up to the checkout.
  const candidates = ['./driver-main.ts', '../src/lab/loki/driver-main.ts', '../../src/lab/loki/driver-main.ts'].map(
    (rel) => fileURLToPath(new URL(rel, import.meta.url)),
  );
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new UserError(`cannot find the loki driver source (looked at ${candidates.join(', ')})`);
  return found;
}

/** Bundles the driver to one ESM file that needs nothing but Node's built-in modules; returns its text. */
export async function bundleLokiDriver(outFile?: string): Promise<string> {
  // Not a static import: the CLI bundle must not try to bundle esbuild itself.
  const esbuildName = 'esbuild';
  const esbuild = (await import(esbuildName)) as typeof import('esbuild');
  const r = await esbuild.build({
    entryPoints: [driverEntry()],
    bundle: true,
    write: false,
    outfile: outFile ?? 'loki-driver.mjs',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'silent',
    legalComments: 'none',
  });
  const text = r.outputFiles[0]!.text;
  if (outFile) writeFileSync(outFile, text);
  return text;
}

/**
 * A content tag for the plugin (`sha-<12 hex>`): the driver bundle, the Node binary it runs on, and config.json.
 * `lab up` can tag the pushed plugin with it and skip the publish when the registry already holds that tag.
 */
export async function lokiPluginVersion(opts: { nodeBinary?: string } = {}): Promise<string> {
  const node = opts.nodeBinary ?? process.execPath;
  const st = statSync(node);
  const h = createHash('sha256');
  h.update(await bundleLokiDriver());
  h.update(JSON.stringify(lokiPluginConfig()));
  h.update(`${node}:${st.size}:${st.mtimeMs}`);
  return `sha-${h.digest('hex').slice(0, 12)}`;
}

export interface BuiltRootfs {
  dir: string;
  nodeBinary: string;
  libraries: string[];
}

/**
 * Writes `<dir>/config.json` and `<dir>/rootfs/`, the layout `docker plugin create <name> <dir>` takes.
 * `nodeBinary` defaults to the Node running this code.
 */
export async function buildLokiPluginRootfs(dir: string, opts: { nodeBinary?: string } = {}): Promise<BuiltRootfs> {
  const node = opts.nodeBinary ?? process.execPath;
  const rootfs = join(dir, 'rootfs');
  rmSync(dir, { recursive: true, force: true });
  for (const d of [
    'run/docker/plugins',
    'var/log/docker',
    'tmp',
    'etc',
    'proc',
    'sys',
    'dev',
    'driver',
    'usr/local/bin',
  ]) {
    mkdirSync(join(rootfs, d), { recursive: true, mode: d === 'tmp' ? 0o1777 : 0o755 });
  }
  // Mount points the daemon binds for host-network plugins, and what glibc's resolver reads.
  writeFileSync(join(rootfs, 'etc/hosts'), '127.0.0.1 localhost\n::1 localhost\n');
  writeFileSync(join(rootfs, 'etc/resolv.conf'), '');
  writeFileSync(join(rootfs, 'etc/nsswitch.conf'), 'hosts: files dns\n');
  writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/:/usr/local/bin/node\n');

  copyFileSync(node, join(rootfs, NODE_IN_ROOTFS));
  const ldd = await runLocal(['ldd', node]);
  // A static binary makes ldd exit 1 with "not a dynamic executable": nothing to copy then.
  const libraries = ldd.code === 0 ? parseLdd(ldd.stdout) : [];
  for (const lib of libraries) {
    const target = join(rootfs, lib);
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(lib, target);
  }
  await bundleLokiDriver(join(rootfs, DRIVER_IN_ROOTFS));
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(lokiPluginConfig(), null, 2)}\n`);
  return { dir, nodeBinary: node, libraries };
}

export interface PluginState {
  name: string;
  enabled: boolean;
  /** Where it was installed from (empty for a plugin made with `docker plugin create`). */
  reference: string;
}

export async function inspectPlugin(exec: Executor, t: DockerTarget, name: string): Promise<PluginState | undefined> {
  const r = await exec.run(pluginArgv.inspect(t, name), { label: `docker plugin inspect ${name}` });
  if (r.code !== 0) {
    if (/no such plugin|not found/i.test(r.stderr)) return undefined;
    throw new UserError(`${exec.host}: docker plugin inspect ${name} failed: ${r.stderr.trim()}`);
  }
  const [p] = JSON.parse(r.stdout) as { Name: string; Enabled: boolean; PluginReference?: string }[];
  if (!p) return undefined;
  return { name: p.Name, enabled: p.Enabled, reference: p.PluginReference ?? '' };
}

export interface PublishOptions {
  /** The daemon that builds and pushes (logged into the registry through `docker.config`). */
  docker: DockerTarget;
  /** `<registry>/<repo>:<tag>`, e.g. 127.0.0.1:5000/dyce/loki-docker-driver:latest */
  ref: string;
  /** Scratch directory for the rootfs (removed afterwards). */
  workDir: string;
  /** More refs to push the same build under (a plugin cannot be re-tagged), e.g. `…:latest`. */
  alsoAs?: string[];
  exec?: Executor;
  nodeBinary?: string;
}

/**
 * Builds the plugin, creates it on `docker` under its registry name, pushes it, and removes that local copy: hosts get
 * the plugin only through `docker plugin install`, as production hosts do.
 */
export async function publishLokiPlugin(opts: PublishOptions): Promise<{ ref: string }> {
  const exec = opts.exec ?? new LocalExecutor();
  await buildLokiPluginRootfs(opts.workDir, opts.nodeBinary ? { nodeBinary: opts.nodeBinary } : {});
  try {
    for (const ref of [opts.ref, ...(opts.alsoAs ?? [])]) {
      if (await inspectPlugin(exec, opts.docker, ref)) await runChecked(exec, pluginArgv.remove(opts.docker, ref));
      await runChecked(exec, pluginArgv.create(opts.docker, ref, opts.workDir), { label: 'docker plugin create' });
      await runChecked(exec, pluginArgv.push(opts.docker, ref), { label: 'docker plugin push', timeoutMs: 300_000 });
      await runChecked(exec, pluginArgv.remove(opts.docker, ref), { label: 'docker plugin rm' });
    }
  } finally {
    rmSync(opts.workDir, { recursive: true, force: true });
  }
  return { ref: opts.ref };
}

/**
 * `docker plugin create` + `enable` under a plain name (default `loki`), without a registry: for a daemon that
 * should simply have the driver.
 */
export async function createLokiPlugin(opts: {
  docker: DockerTarget;
  name?: string;
  workDir: string;
  exec?: Executor;
  nodeBinary?: string;
}): Promise<void> {
  const exec = opts.exec ?? new LocalExecutor();
  const name = opts.name ?? LOKI_PLUGIN_ALIAS;
  await buildLokiPluginRootfs(opts.workDir, opts.nodeBinary ? { nodeBinary: opts.nodeBinary } : {});
  try {
    if (await inspectPlugin(exec, opts.docker, name)) await runChecked(exec, pluginArgv.remove(opts.docker, name));
    await runChecked(exec, pluginArgv.create(opts.docker, name, opts.workDir), { label: 'docker plugin create' });
    await runChecked(exec, pluginArgv.enable(opts.docker, name), { label: 'docker plugin enable' });
  } finally {
    rmSync(opts.workDir, { recursive: true, force: true });
  }
}

export type EnsureOutcome = 'present' | 'enabled' | 'installed' | 'reinstalled';

/**
 * Makes `alias` (default `loki`) an installed, enabled plugin on the daemon, installing `ref` from the registry when
 * needed. Idempotent: an enabled plugin is left alone; a disabled one is enabled; one that cannot be enabled (left
 * broken by an earlier run) is removed and installed again.
 */
export async function ensureLokiPlugin(opts: {
  docker: DockerTarget;
  ref: string;
  alias?: string;
  /** Plugin settings given at install, e.g. { LOKI_HOST_LABEL: 'vps2' }. */
  settings?: Record<string, string>;
  /** Replace a plugin of that name installed from another reference (an older lab build, grafana's image). */
  replaceOther?: boolean;
  exec?: Executor;
}): Promise<EnsureOutcome> {
  const exec = opts.exec ?? new LocalExecutor();
  const alias = opts.alias ?? LOKI_PLUGIN_ALIAS;
  const state = await inspectPlugin(exec, opts.docker, alias);
  if (state && opts.replaceOther && state.reference !== opts.ref) {
    await runChecked(exec, pluginArgv.remove(opts.docker, alias), { label: 'docker plugin rm' });
    await runChecked(exec, pluginArgv.install(opts.docker, opts.ref, alias, opts.settings), {
      label: `docker plugin install ${opts.ref}`,
      timeoutMs: 300_000,
    });
    return 'reinstalled';
  }
  if (state?.enabled) return 'present';
  if (state) {
    const r = await exec.run(pluginArgv.enable(opts.docker, alias), { label: 'docker plugin enable' });
    if (r.code === 0) return 'enabled';
    await runChecked(exec, pluginArgv.remove(opts.docker, alias), { label: 'docker plugin rm' });
  }
  await runChecked(exec, pluginArgv.install(opts.docker, opts.ref, alias, opts.settings), {
    label: `docker plugin install ${opts.ref}`,
    timeoutMs: 300_000,
  });
  return state ? 'reinstalled' : 'installed';
}

/** For `lab down`: removes the plugin if present (force: containers using it are the lab's own, going away). */
export async function removeLokiPlugin(opts: {
  docker: DockerTarget;
  alias?: string;
  exec?: Executor;
}): Promise<boolean> {
  const exec = opts.exec ?? new LocalExecutor();
  const alias = opts.alias ?? LOKI_PLUGIN_ALIAS;
  if (!(await inspectPlugin(exec, opts.docker, alias))) return false;
  await runChecked(exec, pluginArgv.remove(opts.docker, alias), { label: 'docker plugin rm' });
  return true;
}
