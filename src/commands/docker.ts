/**
 * Docker commands as data: every function here is pure and returns an argv array (or a constant `sh -c`
 * script whose variable parts are positional arguments, never spliced into the script text).
 * Only an Executor runs them; `shellQuote` turns them into a remote shell string.
 *
 * Every command names Dyce's own Docker config dir (`--config`), so that a registry login on the host
 * never touches root's ~/.docker and the credentials live under Dyce's state dir (0700).
 */
export type Argv = string[];

export const DOCKER = 'docker';

function docker(config: string | undefined, ...args: string[]): Argv {
  return config ? [DOCKER, '--config', config, ...args] : [DOCKER, ...args];
}

/** The password goes to stdin; never `-p` (argv is readable by every user of the host). */
export function dockerLogin(config: string, registry: string, username: string): Argv {
  return docker(config, 'login', registry, '--username', username, '--password-stdin');
}

export function dockerPull(config: string, image: string): Argv {
  return docker(config, 'pull', '--quiet', image);
}

/** Exits non-zero when the image is not present locally. */
export function dockerImageInspect(image: string): Argv {
  return docker(undefined, 'image', 'inspect', '--format', '{{.Id}}', image);
}

/** Pulls only when the image is missing (`pull: missing`), in one round trip. */
export function dockerPullMissing(config: string, image: string): Argv {
  return [
    'sh',
    '-c',
    'docker image inspect --format "{{.Id}}" "$2" >/dev/null 2>&1 || docker --config "$1" pull --quiet "$2"',
    'sh',
    config,
    image,
  ];
}

export interface PublishedPort {
  ip: string;
  hostPort: number;
  containerPort: number;
}

/** Everything `docker run` needs for one replica. Secret values are not here: only the env file path and mounts. */
export interface RunSpec {
  name: string;
  image: string;
  labels: Record<string, string>;
  env: Record<string, string>;
  /** A 0600 env file on the host holding the secret env (read by the docker client on the host). */
  envFile?: string;
  network: 'bridge' | 'host';
  publish?: PublishedPort;
  /** `source:target[:options]`. */
  volumes: string[];
  restart: string;
  logDriver?: string;
  logOptions: Record<string, string>;
  /** Arguments after the image. */
  command: string[];
}

/**
 * `docker run -d` with every option. Values are separate argv words (`--env`, `KEY=value`), so hostile
 * bytes (quotes, `$(...)`, backquotes) reach the container unchanged once shellQuote has quoted them.
 */
export function dockerRun(config: string, spec: RunSpec): Argv {
  const argv = docker(config, 'run', '--detach', '--name', spec.name, '--restart', spec.restart);
  for (const [k, v] of sortedEntries(spec.labels)) argv.push('--label', `${k}=${v}`);
  if (spec.network === 'host') argv.push('--network', 'host');
  if (spec.publish) {
    const ip = spec.publish.ip.includes(':') ? `[${spec.publish.ip}]` : spec.publish.ip;
    argv.push('--publish', `${ip}:${spec.publish.hostPort}:${spec.publish.containerPort}`);
  }
  for (const [k, v] of sortedEntries(spec.env)) argv.push('--env', `${k}=${v}`);
  if (spec.envFile) argv.push('--env-file', spec.envFile);
  for (const v of spec.volumes) argv.push('--volume', v);
  if (spec.logDriver) {
    argv.push('--log-driver', spec.logDriver);
    for (const [k, v] of sortedEntries(spec.logOptions)) argv.push('--log-opt', `${k}=${v}`);
  }
  argv.push(spec.image, ...spec.command);
  return argv;
}

/** Stops all the given containers in one command: Docker stops them in parallel, so stop timeouts do not add up. */
export function dockerStop(names: readonly string[], timeoutSeconds?: number): Argv {
  return docker(
    undefined,
    'stop',
    ...(timeoutSeconds === undefined ? [] : ['--time', String(timeoutSeconds)]),
    ...names,
  );
}

export function dockerRm(names: readonly string[], opts: { force?: boolean } = {}): Argv {
  return docker(undefined, 'rm', ...(opts.force ? ['--force'] : []), ...names);
}

/** Installs a plugin from `ref` under `alias`; `config` carries the registry login (a private plugin registry). */
export function dockerPluginInstall(config: string, ref: string, alias: string): Argv {
  return docker(config, 'plugin', 'install', ref, '--alias', alias, '--grant-all-permissions');
}

export function dockerPluginEnable(alias: string): Argv {
  return docker(undefined, 'plugin', 'enable', alias);
}

function sortedEntries(o: Record<string, string>): [string, string][] {
  return Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** A container as a playbook's docker_container describes it (any network mode, several ports, anonymous volumes). */
export interface ContainerSpec {
  name: string;
  image: string;
  /** In the order given. */
  env: [string, string][];
  /** A KEY=value file on the host, read by the docker client there (its values never reach argv). */
  envFile?: string;
  labels: [string, string][];
  /** `host`, `bridge`, `none`, `container:<name>` or a network name. */
  networkMode?: string;
  /** `[ip:]host:container[/proto]` as docker's `--publish` takes them. */
  publish: string[];
  /** `source:target[:mode]` binds and bare `target` anonymous volumes. */
  volumes: string[];
  /** `no`, `always`, `unless-stopped`, `on-failure[:N]`. */
  restart?: string;
  logDriver?: string;
  logOptions: [string, string][];
  entrypoint?: string[];
  workingDir?: string;
  user?: string;
  hostname?: string;
  /** Arguments after the image; undefined keeps the image's CMD. */
  command?: string[];
}

/** `docker run --detach` (mode `run`) or `docker create` (mode `create`) for a ContainerSpec. */
export function dockerContainerCreate(config: string | undefined, spec: ContainerSpec, mode: 'run' | 'create'): Argv {
  const argv = docker(config, ...(mode === 'run' ? ['run', '--detach'] : ['create']), '--name', spec.name);
  if (spec.restart) argv.push('--restart', spec.restart);
  for (const [k, v] of spec.labels) argv.push('--label', `${k}=${v}`);
  if (spec.networkMode) argv.push('--network', spec.networkMode);
  for (const p of spec.publish) argv.push('--publish', p);
  for (const [k, v] of spec.env) argv.push('--env', `${k}=${v}`);
  if (spec.envFile) argv.push('--env-file', spec.envFile);
  for (const v of spec.volumes) argv.push('--volume', v);
  if (spec.logDriver) argv.push('--log-driver', spec.logDriver);
  for (const [k, v] of spec.logOptions) argv.push('--log-opt', `${k}=${v}`);
  if (spec.workingDir) argv.push('--workdir', spec.workingDir);
  if (spec.user) argv.push('--user', spec.user);
  if (spec.hostname) argv.push('--hostname', spec.hostname);
  // docker's --entrypoint takes one word; the rest of an entrypoint list goes before the command.
  const [entry, ...entryArgs] = spec.entrypoint ?? [];
  if (entry !== undefined) argv.push('--entrypoint', entry);
  argv.push(spec.image, ...entryArgs, ...(spec.command ?? []));
  return argv;
}

export function dockerStart(names: readonly string[]): Argv {
  return docker(undefined, 'start', ...names);
}

export function dockerRestart(names: readonly string[], timeoutSeconds?: number): Argv {
  return docker(
    undefined,
    'restart',
    ...(timeoutSeconds === undefined ? [] : ['--time', String(timeoutSeconds)]),
    ...names,
  );
}

/**
 * One round trip before deciding about one container: its `docker container inspect` JSON (`[]` or nothing when absent),
 * a `--dyce--` line, then the local id of IMAGE (empty when the image is not on the host).
 */
export function dockerObserveContainer(name: string, image: string): Argv {
  return [
    'sh',
    '-c',
    'docker container inspect "$1" 2>/dev/null; echo --dyce--; docker image inspect --format "{{.Id}}" "$2" 2>/dev/null; exit 0',
    'sh',
    name,
    image,
  ];
}

/** Prints the docker client config of CONFIG_DIR (exit 1 when there is none): to compare stored credentials. */
export function dockerConfigRead(configDir: string): Argv {
  return ['cat', `${configDir}/config.json`];
}

/** Prints $HOME on the first line, then `$HOME/.docker/config.json` (nothing when absent): one round trip. */
export function dockerHomeConfigRead(): Argv {
  return ['sh', '-c', 'printf "%s\\n" "$HOME"; cat "$HOME/.docker/config.json" 2>/dev/null; exit 0'];
}

/** Prints $HOME (as the docker client on the host sees it). */
export function homeDir(): Argv {
  return ['sh', '-c', 'printf "%s\\n" "$HOME"'];
}

/** Stands for the env file in an argv given to dockerWithStdinEnvFile. */
export const ENV_FILE_PLACEHOLDER = '__DYCE_ENV_FILE__';

/**
 * Runs ARGV (a docker create/run naming `--env-file ENV_FILE_PLACEHOLDER`) with the env file written from stdin
 * to a 0600 temp file on the host, removed as soon as docker has read it: env values (often secrets) never appear
 * in any process's argv. The temp path replaces the placeholder word; nothing else is rewritten.
 */
export function dockerWithStdinEnvFile(argv: Argv): Argv {
  return [
    'sh',
    '-c',
    [
      'umask 077',
      'f=$(mktemp) || exit 1',
      'trap \'rm -f "$f"\' EXIT',
      'cat > "$f" || exit 1',
      'for a do shift; if [ "$a" = "$0" ]; then set -- "$@" "$f"; else set -- "$@" "$a"; fi; done',
      '"$@"',
    ].join('\n'),
    ENV_FILE_PLACEHOLDER,
    ...argv,
  ];
}
