import { z } from 'zod';
import {
  type ContainerSpec,
  dockerConfigRead,
  dockerContainerCreate,
  dockerHomeConfigRead,
  dockerImageInspect,
  dockerLogin,
  dockerObserveContainer,
  dockerPull,
  dockerRestart,
  dockerRm,
  dockerStart,
  dockerStop,
  dockerWithStdinEnvFile,
  ENV_FILE_PLACEHOLDER,
} from '../../commands/docker.js';
import { splitShellWords } from '../../config/shell-words.js';
import { toText } from '../../template/templar.js';
import { ansibleBoolean, ansibleDict, ansibleInt, ansibleList, ansibleString } from './coerce.js';
import { type ModuleContext, type ModuleDef, ModuleFailure, runOrFail } from './types.js';

/**
 * community.docker's docker_login, docker_image (source: pull) and docker_container, with its semantics for the
 * parameters deploy playbooks use. Every command comes from src/commands/docker.ts; secrets travel on stdin.
 * The docker client config is the connection user's ~/.docker (as the Ansible modules use), named explicitly.
 */

const boolish = ansibleBoolean;
const text = ansibleString;

async function configDir(ctx: ModuleContext): Promise<string> {
  return `${await ctx.home()}/.docker`;
}

/** Docker Hub's names for itself, as the docker CLI and docker-py store them. */
function registryKey(url: string): string {
  const u = url.replace(/^https?:\/\//, '').replace(/\/+$/, '');
  if (u === '' || u === 'docker.io' || u === 'index.docker.io' || u === 'registry-1.docker.io')
    return 'https://index.docker.io/v1/';
  return u;
}

/** True when CONFIG (config.json text) already holds exactly these credentials for REGISTRY. */
export function hasCredentials(config: string, registry: string, username: string, password: string): boolean {
  let parsed: { auths?: Record<string, { auth?: string }> };
  try {
    parsed = JSON.parse(config);
  } catch {
    return false;
  }
  const want = Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
  const key = registryKey(registry);
  const auths = parsed.auths ?? {};
  const entry = auths[key] ?? auths[`https://${key}`] ?? auths[`http://${key}`];
  return entry?.auth === want;
}

export const dockerLoginModule: ModuleDef = {
  name: 'docker_login',
  collection: 'community.docker',
  params: [
    'registry_url',
    'registry',
    'username',
    'password',
    'email',
    'reauthorize',
    'reauth',
    'state',
    'config_path',
    'dockercfg_path',
  ],
  aliases: { registry: 'registry_url', reauth: 'reauthorize', dockercfg_path: 'config_path' },
  schema: z.object({
    registry_url: text.default('https://index.docker.io/v1/'),
    username: text.optional(),
    password: text.optional(),
    email: z.unknown().optional(),
    reauthorize: boolish.default(false),
    state: z.enum(['present', 'absent']).default('present'),
    config_path: text.optional(),
  }),
  async run(args, ctx) {
    const registry = registryKey(args.registry_url as string);
    if (args.state === 'absent') throw new ModuleFailure('docker_login state=absent is not supported by Dyce yet');
    const username = args.username as string | undefined;
    const password = args.password as string | undefined;
    if (!username || password === undefined) throw new ModuleFailure('docker_login needs username and password');
    ctx.secret(password);
    // Compare what is stored first: logging in again with the same credentials is a no-op, as for Ansible.
    let dir: string;
    let stored: string;
    if (args.config_path) {
      dir = String(args.config_path).replace(/\/config\.json$/, '');
      const r = await ctx.run(dockerConfigRead(dir), { label: 'read docker config' });
      stored = r.code === 0 ? r.stdout : '';
    } else {
      // $HOME and the config in one round trip (the no-op path of a deploy is mostly round trips).
      const r = await runOrFail(ctx, dockerHomeConfigRead(), 'read docker config');
      const nl = r.stdout.indexOf('\n');
      const home = r.stdout.slice(0, nl < 0 ? undefined : nl).trim() || '/root';
      ctx.knowHome(home);
      dir = `${home}/.docker`;
      stored = nl < 0 ? '' : r.stdout.slice(nl + 1);
    }
    if (!args.reauthorize && hasCredentials(stored, registry, username, password))
      return { changed: false, login_result: { username, serveraddress: registry } };
    if (!ctx.check)
      await runOrFail(ctx, dockerLogin(dir, registry, username), `docker login ${registry}`, { stdin: password });
    return { changed: true, login_result: { username, serveraddress: registry } };
  },
};

function imageRef(name: string, tag: string | undefined): string {
  if (name.includes('@')) return name;
  const last = name.split('/').pop()!;
  if (last.includes(':')) return name;
  return `${name}:${tag ?? 'latest'}`;
}

async function imageId(ctx: ModuleContext, ref: string): Promise<string | undefined> {
  const r = await ctx.run(dockerImageInspect(ref), { label: 'docker image inspect' });
  return r.code === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
}

export const dockerImageModule: ModuleDef = {
  name: 'docker_image',
  collection: 'community.docker',
  params: ['name', 'tag', 'source', 'force_source', 'state', 'pull'],
  schema: z.object({
    name: text,
    tag: text.optional(),
    source: z.enum(['pull', 'local']).optional(),
    force_source: boolish.default(false),
    state: z.enum(['present']).default('present'),
    pull: z.unknown().optional(),
  }),
  async run(args, ctx) {
    const ref = imageRef(args.name as string, args.tag as string | undefined);
    const before = await imageId(ctx, ref);
    const source = args.source ?? (before ? undefined : 'pull');
    if (before && !args.force_source) return { changed: false, image: { Id: before } };
    if (source === 'local') {
      if (!before) throw new ModuleFailure(`Cannot find the image ${ref} locally.`);
      return { changed: false, image: { Id: before } };
    }
    if (ctx.check) return { changed: true, actions: [`Pulled image ${ref}`] };
    await runOrFail(ctx, dockerPull(await configDir(ctx), ref), `docker pull ${ref}`);
    const after = await imageId(ctx, ref);
    return { changed: after !== before, actions: [`Pulled image ${ref}`], image: { Id: after } };
  },
};

// ---------------------------------------------------------------------------------------------------------------
// docker_container

const stringMap = z
  .record(z.string(), z.unknown())
  .nullish()
  .transform((v) => Object.entries(v ?? {}).map(([k, x]) => [k, toText(x)] as [string, string]));

const containerSchema = z.object({
  name: text.pipe(z.string().regex(/^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'is not a container name')),
  image: text.optional(),
  state: z.enum(['started', 'present', 'stopped', 'absent']).default('started'),
  network_mode: text.optional(),
  published_ports: ansibleList(text).optional(),
  volumes: ansibleList(text).optional(),
  env: ansibleDict.nullish(),
  env_file: text.optional(),
  labels: stringMap.optional(),
  restart_policy: z.enum(['no', 'on-failure', 'always', 'unless-stopped']).optional(),
  restart_retries: ansibleInt.pipe(z.number().nonnegative()).optional(),
  command: z.union([z.string(), z.array(z.unknown())]).optional(),
  entrypoint: ansibleList(text).optional(),
  working_dir: text.optional(),
  user: text.optional(),
  hostname: text.optional(),
  log_driver: text.optional(),
  log_options: ansibleDict.nullish(),
  pull: boolish.default(false),
  recreate: boolish.default(false),
  restart: boolish.default(false),
  detach: boolish.default(true),
  stop_timeout: ansibleInt.pipe(z.number().nonnegative()).optional(),
  force_kill: boolish.default(false),
  keep_volumes: boolish.default(true),
  container_default_behavior: z.enum(['compatibility', 'no_defaults']).optional(),
  command_handling: z.enum(['compatibility', 'correct']).optional(),
  comparisons: z.record(z.string(), z.enum(['strict', 'ignore', 'allow_more_present'])).optional(),
});

type ContainerArgs = z.infer<typeof containerSchema>;

const VOLUME_MODE =
  /^(ro|rw|z|Z|consistent|delegated|cached|rprivate|private|rshared|shared|rslave|slave|nocopy)(,(ro|rw|z|Z|consistent|delegated|cached|rprivate|private|rshared|shared|rslave|slave|nocopy))*$/;

/** `src:dst[:mode]` -> `src:dst:mode` (mode rw by default), as Ansible passes binds; bare paths stay anonymous. */
export function normaliseVolume(v: string): { bind?: string; anonymous?: string } {
  const parts = v.split(':');
  if (parts.length === 3) {
    if (!VOLUME_MODE.test(parts[2]!)) throw new ModuleFailure(`Found invalid volumes mode: ${parts[2]}`);
    return { bind: v };
  }
  if (parts.length === 2) {
    if (VOLUME_MODE.test(parts[1]!)) return { anonymous: parts[0]! };
    return { bind: `${v}:rw` };
  }
  if (parts.length === 1) return { anonymous: v };
  throw new ModuleFailure(`bad volume ${JSON.stringify(v)}`);
}

/** The desired container as docker argv data, and the values to compare with an existing container. */
export function containerSpec(a: ContainerArgs): ContainerSpec {
  if (!a.image) throw new ModuleFailure('image is required to create a container');
  const env: [string, string][] = [];
  for (const [k, v] of Object.entries(a.env ?? {})) {
    if (typeof v !== 'string')
      throw new ModuleFailure(
        `Non-string value found for env option. Ambiguous env options must be wrapped in quotes to avoid them being interpreted. Key: ${k}`,
      );
    env.push([k, v]);
  }
  const volumes = (a.volumes ?? []).map((v) => {
    const n = normaliseVolume(v);
    return n.bind ?? n.anonymous!;
  });
  const restart =
    a.restart_policy === 'on-failure' && a.restart_retries !== undefined
      ? `on-failure:${a.restart_retries}`
      : a.restart_policy;
  let command: string[] | undefined;
  if (typeof a.command === 'string') {
    const split = splitShellWords(a.command);
    if ('error' in split) throw new ModuleFailure(`command: ${split.error}`);
    command = split.words;
  } else if (Array.isArray(a.command)) command = a.command.map(toText);
  return {
    name: a.name.replace(/^\//, ''),
    image: a.image,
    env,
    ...(a.env_file ? { envFile: a.env_file } : {}),
    labels: a.labels ?? [],
    ...(a.network_mode ? { networkMode: a.network_mode } : {}),
    publish: a.published_ports ?? [],
    volumes,
    ...(restart ? { restart } : {}),
    ...(a.log_driver ? { logDriver: a.log_driver } : {}),
    logOptions: Object.entries(a.log_options ?? {}).map(([k, v]) => [k, toText(v)] as [string, string]),
    ...(a.entrypoint ? { entrypoint: a.entrypoint } : {}),
    ...(a.working_dir ? { workingDir: a.working_dir } : {}),
    ...(a.user ? { user: a.user } : {}),
    ...(a.hostname ? { hostname: a.hostname } : {}),
    ...(command ? { command } : {}),
  };
}

/** The parts of `docker container inspect` Ansible compares. */
export interface ObservedContainer {
  Id: string;
  Image: string;
  State: { Running: boolean; Status: string };
  Config: {
    Env?: string[] | null;
    Cmd?: string[] | null;
    Labels?: Record<string, string> | null;
    Entrypoint?: string[] | null;
    WorkingDir?: string;
    User?: string;
    Hostname?: string;
  };
  HostConfig: {
    NetworkMode?: string;
    Binds?: string[] | null;
    RestartPolicy?: { Name?: string; MaximumRetryCount?: number };
    LogConfig?: { Type?: string; Config?: Record<string, string> | null };
    PortBindings?: Record<string, { HostIp: string; HostPort: string }[] | null> | null;
  };
}

/**
 * The user-set parameters that differ from the running container, with community.docker's default comparisons:
 * lists/values strict (image, command, network_mode, restart_policy, log_driver), sets and dicts
 * `allow_more_present` (env, volumes, labels, log_options, published_ports: what the container has beyond the
 * parameters is fine). Parameters the user did not set are never compared.
 */
export function containerDifferences(
  a: ContainerArgs,
  spec: ContainerSpec,
  c: ObservedContainer,
  desiredImageId: string | undefined,
  envFromFile: [string, string][] = [],
): string[] {
  const diffs: string[] = [];
  const cmp = (name: string) => a.comparisons?.[name] ?? a.comparisons?.['*'];
  if (a.image && cmp('image') !== 'ignore' && desiredImageId !== undefined && c.Image !== desiredImageId)
    diffs.push('image');
  const have = new Set(c.Config.Env ?? []);
  if (cmp('env') !== 'ignore' && [...spec.env, ...envFromFile].some(([k, v]) => !have.has(`${k}=${v}`)))
    diffs.push('env');
  if (
    spec.command &&
    cmp('command') !== 'ignore' &&
    JSON.stringify(c.Config.Cmd ?? []) !== JSON.stringify(spec.command)
  )
    diffs.push('command');
  if (spec.entrypoint && JSON.stringify(c.Config.Entrypoint ?? []) !== JSON.stringify(spec.entrypoint))
    diffs.push('entrypoint');
  if (spec.networkMode && cmp('network_mode') !== 'ignore' && !sameNetwork(spec.networkMode, c.HostConfig.NetworkMode))
    diffs.push('network_mode');
  const binds = new Set((c.HostConfig.Binds ?? []).map((b) => (b.split(':').length === 2 ? `${b}:rw` : b)));
  if (cmp('volumes') !== 'ignore' && spec.volumes.some((v) => v.includes(':') && !binds.has(v))) diffs.push('volumes');
  if (spec.restart && cmp('restart_policy') !== 'ignore') {
    const rp = c.HostConfig.RestartPolicy ?? {};
    const name = spec.restart.split(':')[0];
    if (rp.Name !== name && !(name === 'no' && (rp.Name ?? '') === '')) diffs.push('restart_policy');
    else if (a.restart_retries !== undefined && rp.MaximumRetryCount !== a.restart_retries)
      diffs.push('restart_retries');
  }
  if (spec.logDriver && cmp('log_driver') !== 'ignore' && c.HostConfig.LogConfig?.Type !== spec.logDriver)
    diffs.push('log_driver');
  const logCfg = c.HostConfig.LogConfig?.Config ?? {};
  if (cmp('log_options') !== 'ignore' && spec.logOptions.some(([k, v]) => logCfg[k] !== v)) diffs.push('log_options');
  const labels = c.Config.Labels ?? {};
  if (cmp('labels') !== 'ignore' && spec.labels.some(([k, v]) => labels[k] !== v)) diffs.push('labels');
  if (spec.workingDir && c.Config.WorkingDir !== spec.workingDir) diffs.push('working_dir');
  if (spec.user && c.Config.User !== spec.user) diffs.push('user');
  if (spec.hostname && c.Config.Hostname !== spec.hostname) diffs.push('hostname');
  if (cmp('published_ports') !== 'ignore' && spec.publish.length > 0) {
    const bound = c.HostConfig.PortBindings ?? {};
    for (const p of spec.publish) {
      const m = /^(?:(.*):)?(\d+)?:(\d+)(?:\/(\w+))?$|^(\d+)(?:\/(\w+))?$/.exec(p);
      if (!m) continue;
      const containerPort = `${m[3] ?? m[5]}/${m[4] ?? m[6] ?? 'tcp'}`;
      const hostPort = m[2] ?? '';
      const ip = (m[1] ?? '').replace(/^\[|\]$/g, '');
      const list = bound[containerPort] ?? [];
      if (!list.some((b) => (hostPort === '' || b.HostPort === hostPort) && (ip === '' || b.HostIp === ip))) {
        diffs.push('published_ports');
        break;
      }
    }
  }
  return diffs;
}

function sameNetwork(want: string, have: string | undefined): boolean {
  const norm = (s: string | undefined) =>
    s === 'bridge' || s === 'default' || s === undefined || s === '' ? 'default' : s;
  return norm(want) === norm(have);
}

/** Parses a docker env file (KEY=value lines; `#` comments; a bare KEY is skipped). */
export function parseEnvFile(textContent: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of textContent.split(/\r?\n/)) {
    const t = line.replace(/^\s+/, '');
    if (t === '' || t.startsWith('#')) continue;
    const eq = t.indexOf('=');
    if (eq <= 0) continue;
    out.push([t.slice(0, eq), t.slice(eq + 1)]);
  }
  return out;
}

export const dockerContainerModule: ModuleDef = {
  name: 'docker_container',
  collection: 'community.docker',
  params: [
    'name',
    'image',
    'state',
    'network_mode',
    'ports',
    'published_ports',
    'volumes',
    'env',
    'env_file',
    'labels',
    'restart_policy',
    'restart_retries',
    'command',
    'entrypoint',
    'working_dir',
    'user',
    'hostname',
    'log_driver',
    'log_options',
    'log_opt',
    'pull',
    'recreate',
    'restart',
    'detach',
    'stop_timeout',
    'force_kill',
    'keep_volumes',
    'container_default_behavior',
    'command_handling',
    'comparisons',
  ],
  aliases: { ports: 'published_ports', log_opt: 'log_options' },
  schema: containerSchema as unknown as z.ZodType<Record<string, unknown>>,
  async run(raw, ctx) {
    const a = raw as ContainerArgs;
    if (!a.detach) throw new ModuleFailure('detach: false is not supported by Dyce');
    for (const [k, v] of Object.entries(a.log_options ?? {}))
      if (typeof v !== 'string')
        ctx.warn(
          `Non-string value found for log_options option '${k}'. The value is automatically converted to '${toText(v)}'. If this is not correct, or you want to avoid such warnings, please quote the value.`,
        );
    const name = a.name.replace(/^\//, '');
    const obs = await runOrFail(ctx, dockerObserveContainer(name, a.image ?? ''), `observe container ${name}`);
    const [inspectText, imageText = ''] = obs.stdout.split('--dyce--\n');
    let list: ObservedContainer[];
    try {
      list = JSON.parse(inspectText!.trim() || '[]') as ObservedContainer[];
    } catch (error) {
      throw new ModuleFailure(`cannot read docker inspect output for ${name}: ${(error as Error).message}`);
    }
    const current = list[0];
    const actions: string[] = [];
    const stopArgv = () => dockerStop([name], a.stop_timeout);

    if (a.state === 'absent') {
      if (!current) return { changed: false };
      if (!ctx.check) await runOrFail(ctx, dockerRm([name], { force: true }), `docker rm ${name}`);
      return { changed: true, actions: [`Removed container ${name}`] };
    }

    if (!a.image) {
      if (!current) throw new ModuleFailure(`Cannot create container when image is not specified!`);
      return stateOnly(a, current, name, ctx, stopArgv);
    }
    const spec = containerSpec(a);
    let desiredImage = imageText.trim() || undefined;
    const ref = imageRef(a.image, undefined);
    // Ansible pulls a missing image (always with pull: true), then compares image ids.
    if (!desiredImage || a.pull) {
      if (ctx.check) {
        if (!desiredImage) actions.push(`Pulled image ${ref}`);
      } else {
        await runOrFail(ctx, dockerPull(await configDir(ctx), ref), `docker pull ${ref}`);
        const id = await imageId(ctx, ref);
        if (id !== desiredImage) actions.push(`Pulled image ${ref}`);
        desiredImage = id;
      }
    }
    let fromFile: [string, string][] = [];
    if (a.env_file) {
      const f = await ctx.run(['cat', a.env_file], { label: 'read env_file' });
      if (f.code !== 0)
        throw new ModuleFailure(`env_file ${a.env_file}: cannot read it on the host: ${f.stderr.trim()}`);
      fromFile = parseEnvFile(f.stdout);
      for (const [, v] of fromFile) ctx.secret(v);
    }
    const mode = a.state === 'started' ? 'run' : 'create';
    const create = async () => {
      // Env values (env_file's and env's, env winning) reach docker through a 0600 file written from stdin.
      const merged = new Map([...fromFile, ...spec.env]);
      for (const [k, v] of merged)
        if (v.includes('\n') || v.includes('\r'))
          throw new ModuleFailure(
            `env ${k}: values with line breaks are not supported (docker env files are line based)`,
          );
      const { envFile: _userFile, ...rest } = spec;
      const argv =
        merged.size === 0
          ? dockerContainerCreate(await configDir(ctx), { ...rest, env: [] }, mode)
          : dockerWithStdinEnvFile(
              dockerContainerCreate(await configDir(ctx), { ...rest, env: [], envFile: ENV_FILE_PLACEHOLDER }, mode),
            );
      const stdin = [...merged].map(([k, v]) => `${k}=${v}\n`).join('');
      await runOrFail(ctx, argv, `docker ${mode} ${name}`, merged.size ? { stdin } : {});
    };
    if (!current) {
      if (!ctx.check) await create();
      if (a.state === 'stopped') actions.push(`Created container ${name}`);
      return { changed: true, actions: [...actions, `${mode === 'run' ? 'Started' : 'Created'} container ${name}`] };
    }
    const diffs = a.recreate ? ['recreate'] : containerDifferences(a, spec, current, desiredImage, fromFile);
    if (diffs.length > 0) {
      // Ansible's replacement: stop, remove, create (and start). Dyce's deploy does it without downtime.
      if (!ctx.check) {
        if (current.State.Running) await runOrFail(ctx, stopArgv(), `docker stop ${name}`);
        await runOrFail(ctx, dockerRm([name], { force: true }), `docker rm ${name}`);
        await create();
      }
      return {
        changed: true,
        actions: [...actions, `Recreated container ${name} (${diffs.join(', ')} changed)`],
        differences: diffs,
      };
    }
    const r = await stateOnly(a, current, name, ctx, stopArgv);
    return {
      ...r,
      changed: r.changed === true || actions.length > 0,
      actions: [...actions, ...((r.actions as string[]) ?? [])],
    };
  },
};

async function stateOnly(
  a: ContainerArgs,
  current: ObservedContainer,
  name: string,
  ctx: ModuleContext,
  stopArgv: () => string[],
): Promise<{ changed: boolean; actions?: string[] }> {
  if (a.state === 'started') {
    if (!current.State.Running) {
      if (!ctx.check) await runOrFail(ctx, dockerStart([name]), `docker start ${name}`);
      return { changed: true, actions: [`Started container ${name}`] };
    }
    if (a.restart) {
      if (!ctx.check) await runOrFail(ctx, dockerRestart([name], a.stop_timeout), `docker restart ${name}`);
      return { changed: true, actions: [`Restarted container ${name}`] };
    }
    return { changed: false };
  }
  if (a.state === 'stopped' && current.State.Running) {
    if (!ctx.check) await runOrFail(ctx, a.force_kill ? ['docker', 'kill', name] : stopArgv(), `docker stop ${name}`);
    return { changed: true, actions: [`Stopped container ${name}`] };
  }
  return { changed: false };
}
