/**
 * Pure builders for every docker command build-push runs: argv arrays plus the environment they need.
 * Secret values never appear here: build secrets are files (`--secret id=..,src=..`), secret build args are
 * `--build-arg NAME` with the value in the child's environment, the registry password goes to stdin.
 */
export type BuilderKind = 'buildx' | 'buildkit' | 'classic';

export interface Builder {
  kind: BuilderKind;
  /** Absolute path of the docker client that has this builder. */
  docker: string;
}

export interface DockerCommand {
  argv: string[];
  /** Extra environment for this command only. */
  env: Record<string, string>;
  stdin?: string;
}

export interface BuildRequest {
  context: string;
  dockerfile: string;
  target?: string | undefined;
  refs: string[];
  labels: Record<string, string>;
  buildArgs: { key: string; value: string }[];
  /** Names only: the values are in the environment of the build command. */
  secretBuildArgs: string[];
  /** BuildKit secrets as files. */
  secretFiles: { id: string; path: string }[];
  cacheFrom: string[];
  cacheTo: string[];
  platforms: string[];
  iidFile: string;
  noCache?: boolean;
  pull?: boolean;
  /** buildx's attestation options, passed as given (`true`, `false`, `mode=max`, ...). */
  provenance?: string | undefined;
  sbom?: string | undefined;
  /** buildx only (docker build always loads): load the image into the local store. */
  load: boolean;
  /** buildx pushes itself (several platforms, attestations, or not loaded) instead of a `docker push` afterwards. */
  pushFromBuilder: boolean;
  metadataFile?: string | undefined;
}

/** An attestation option that asks for one (anything but empty or `false`). */
export function wantsAttestation(value: string | undefined): boolean {
  const v = value?.trim() ?? '';
  return v !== '' && v !== 'false';
}

/** What the builder cannot do for this request: each a message saying what to install or change. */
export function capabilityIssues(
  kind: BuilderKind,
  req: {
    secretFiles: readonly unknown[];
    cacheTo: readonly string[];
    platforms: readonly string[];
    provenance?: string | undefined;
    sbom?: string | undefined;
    load?: boolean | undefined;
  },
): string[] {
  const issues: string[] = [];
  const install =
    'install the buildx plugin (Debian/Ubuntu: docker-buildx-plugin or docker-buildx), or point "docker-path" at a docker client with BuildKit (18.09 to 22.x have it built in)';
  if (kind !== 'buildx') {
    if (wantsAttestation(req.provenance)) issues.push(`"provenance" needs buildx: ${install}`);
    if (wantsAttestation(req.sbom)) issues.push(`"sbom" needs buildx: ${install}`);
    if (req.load === false)
      issues.push(`"load: false" needs buildx (docker build always loads the image into the local store): ${install}`);
  }
  if (kind === 'classic') {
    if (req.secretFiles.length)
      issues.push(
        `"secrets"/"secret-envs"/"secret-files" need a BuildKit builder, and only the classic builder is available: ${install}`,
      );
    if (req.cacheTo.length) issues.push(`"cache-to" needs buildx: ${install}`);
    if (req.platforms.length > 1) issues.push(`several "platforms" need buildx: ${install}`);
  } else if (kind === 'buildkit') {
    const other = req.cacheTo.filter((c) => !isInlineCache(c));
    if (other.length)
      issues.push(
        `"cache-to" ${other.join(', ')} needs buildx (the docker client's built-in BuildKit only does type=inline): ${install}`,
      );
    if (req.platforms.length > 1) issues.push(`several "platforms" need buildx: ${install}`);
  }
  return issues;
}

function isInlineCache(spec: string): boolean {
  return spec
    .split(',')
    .map((s) => s.trim())
    .includes('type=inline');
}

export function buildCommand(builder: Builder, req: BuildRequest): DockerCommand {
  const argv = [builder.docker];
  const env: Record<string, string> = {};
  if (builder.kind === 'buildx') argv.push('buildx', 'build', '--progress=plain');
  else if (builder.kind === 'buildkit') {
    argv.push('build', '--progress=plain');
    env.DOCKER_BUILDKIT = '1';
  } else {
    argv.push('build');
    env.DOCKER_BUILDKIT = '0';
  }
  argv.push('--file', req.dockerfile);
  if (req.target) argv.push('--target', req.target);
  for (const ref of req.refs) argv.push('--tag', ref);
  for (const [k, v] of Object.entries(req.labels)) argv.push('--label', `${k}=${v}`);
  for (const a of req.buildArgs) argv.push('--build-arg', `${a.key}=${a.value}`);
  // `--build-arg NAME` without `=`: docker takes the value from its own environment, so it never shows in argv.
  for (const name of req.secretBuildArgs) argv.push('--build-arg', name);
  for (const s of req.secretFiles) argv.push('--secret', `id=${s.id},src=${s.path}`);
  for (const c of req.cacheFrom) argv.push('--cache-from', c);
  if (req.noCache) argv.push('--no-cache');
  if (req.pull) argv.push('--pull');
  if (builder.kind === 'buildx') for (const c of req.cacheTo) argv.push('--cache-to', c);
  else if (req.cacheTo.some(isInlineCache)) argv.push('--build-arg', 'BUILDKIT_INLINE_CACHE=1');
  if (req.platforms.length) argv.push('--platform', req.platforms.join(','));
  argv.push('--iidfile', req.iidFile);
  if (builder.kind === 'buildx') {
    if (req.metadataFile) argv.push('--metadata-file', req.metadataFile);
    if (req.provenance?.trim()) argv.push(`--provenance=${req.provenance.trim()}`);
    if (req.sbom?.trim()) argv.push(`--sbom=${req.sbom.trim()}`);
    if (req.load) argv.push('--load');
    if (req.pushFromBuilder) argv.push('--push');
  }
  argv.push(req.context);
  return { argv, env };
}

/** `docker login` for the registry; Docker Hub is the client's default server and is left out. */
export function loginCommand(docker: string, registry: string, username: string, password: string): DockerCommand {
  const argv = [docker, 'login', '--username', username, '--password-stdin'];
  if (registry !== 'docker.io') argv.push(registry);
  return { argv, env: {}, stdin: password };
}

export function logoutCommand(docker: string, registry: string): DockerCommand {
  const argv = [docker, 'logout'];
  if (registry !== 'docker.io') argv.push(registry);
  return { argv, env: {} };
}

export function pushCommand(docker: string, ref: string): DockerCommand {
  return { argv: [docker, 'push', ref], env: {} };
}

export function inspectCommand(docker: string, image: string): DockerCommand {
  return { argv: [docker, 'image', 'inspect', image], env: {} };
}

export function buildxProbe(docker: string): DockerCommand {
  return { argv: [docker, 'buildx', 'version'], env: {} };
}

/**
 * Whether this client runs builds in BuildKit mode: with DOCKER_BUILDKIT=1 a client of 23+ hands `build` to the buildx
 * plugin and refuses at once when it is missing ("BuildKit is enabled but the buildx component is missing"), while
 * 18.09 to 22.x have BuildKit built in. `--help` makes the check cost one short process instead of a build
 * (a one-line build from stdin proves the same and costs ~0.4s on every run).
 */
export function buildkitProbe(docker: string): DockerCommand {
  return { argv: [docker, 'build', '--help'], env: { DOCKER_BUILDKIT: '1' } };
}

/** The daemon's OS and version: BuildKit needs a Linux daemon of 18.09 or later. */
export function serverProbe(docker: string): DockerCommand {
  return { argv: [docker, 'version', '--format', '{{.Server.Os}} {{.Server.Version}}'], env: {} };
}

/** Pure: does `docker version` output name a daemon that can run BuildKit? */
export function serverHasBuildkit(versionOutput: string): boolean {
  const m = /^(\S+)\s+v?(\d+)\.(\d+)/.exec(versionOutput.trim());
  if (m?.[1] !== 'linux') return false;
  const major = Number(m[2]);
  return major > 18 || (major === 18 && Number(m[3]) >= 9);
}

export interface OciLabelInput {
  /** e.g. https://github.com/org/repo */
  source?: string | undefined;
  revision?: string | undefined;
  created: Date;
  version: string;
  title: string;
}

/** The OCI annotations every image gets; user labels given later override them. */
export function ociLabels(i: OciLabelInput): Record<string, string> {
  const labels: Record<string, string> = {};
  if (i.source) labels['org.opencontainers.image.source'] = i.source;
  if (i.revision) labels['org.opencontainers.image.revision'] = i.revision;
  labels['org.opencontainers.image.created'] = i.created.toISOString();
  if (i.version) labels['org.opencontainers.image.version'] = i.version;
  labels['org.opencontainers.image.title'] = i.title;
  return labels;
}
