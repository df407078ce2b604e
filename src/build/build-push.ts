import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import type { Reporter } from '../github/reporter.js';
import type { ExecResult } from '../remote/executor.js';
import { InputError, UserError } from '../util/errors.js';
import { detectBuilder, dockerCandidates } from './builder.js';
import {
  type Builder,
  buildCommand,
  capabilityIssues,
  type DockerCommand,
  inspectCommand,
  loginCommand,
  logoutCommand,
  pushCommand,
  wantsAttestation,
} from './commands.js';
import { type DockerRunner, definedEnv, ExecDockerRunner } from './docker.js';
import {
  checkEnvFile,
  createDockerConfig,
  removeEnvFile,
  type SecretFiles,
  userDockerConfig,
  type WrittenEnvFile,
  writeEnvFile,
  writeSecretFiles,
} from './files.js';
import { type BuildPlan, type BuildPushOptions, planBuild, renderSummary } from './plan.js';
import { backoffMs, classifyRegistryFailure, errorLine } from './retry.js';

/** What the post step (or a crash handler) must undo: written to the runner's state as JSON. */
export interface CleanupState {
  /** The run's own docker config dir, logged in to `registry` with `docker`. */
  dockerConfig?: string | undefined;
  registry?: string | undefined;
  docker?: string | undefined;
  /** Temp files and directories, and the env file while it exists. */
  paths: string[];
}

export interface BuildPushDeps {
  reporter: Reporter;
  /** GITHUB_* and the variables `secret-envs` names. */
  env: NodeJS.ProcessEnv;
  cwd?: string;
  runner?: DockerRunner;
  /** Where temp files go (RUNNER_TEMP on a runner). */
  tempRoot?: string;
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
  /** First retry delay; doubles each time. */
  retryBaseMs?: number;
  /** Called whenever there is something new to clean up (the action saves it for the post step). */
  track?: (state: CleanupState) => void;
}

export interface BuildPushResult {
  repository: string;
  refs: string[];
  tags: string[];
  version: string;
  digest: string;
  imageId: string;
  sizeBytes: number | undefined;
  builder: Builder | undefined;
  buildMs: number;
  pushMs: number;
  pushed: boolean;
  pushAttempts: number;
  /** buildx's `--metadata-file`, where buildx ran. */
  buildxMetadata?: Record<string, unknown> | undefined;
}

/**
 * The build-push engine (the action and `dyce build` share it): plan (pure) -> checks that touch nothing ->
 * builder probe -> login -> build with secrets -> push with retries -> digest, outputs, summary.
 * Outputs are written whatever happens; temp files and the env file are removed whatever happens.
 */
export async function buildPush(inputs: BuildPushOptions, deps: BuildPushDeps): Promise<BuildPushResult> {
  const { reporter, env } = deps;
  const now = deps.now ?? (() => new Date());
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const tempRoot = deps.tempRoot ?? env.RUNNER_TEMP ?? tmpdir();
  const cleanup: CleanupState = { paths: [] };
  const track = () => deps.track?.({ ...cleanup, paths: [...cleanup.paths] });

  // Every secret value is registered before anything is printed (runAction registered whole inputs already; the
  // values themselves are registered too, as the runner masks by value and a value may be printed alone).
  const secretEnvValues = (inputs['secret-envs'] ?? []).map((e) => ({ id: e.key, env: e.value, value: env[e.value] }));
  for (const v of [
    ...(inputs.secrets ?? []).map((s) => s.value),
    ...(inputs['secret-build-args'] ?? []).map((s) => s.value),
    ...(inputs['env-file-secrets'] ?? []).map((s) => s.value),
    ...secretEnvValues.map((s) => s.value ?? ''),
    inputs['registry-password'] ?? '',
  ])
    for (const part of [v, ...v.split(/\r?\n/)]) if (part.trim()) reporter.secret(part);

  const result: BuildPushResult = {
    repository: '',
    refs: [],
    tags: [],
    version: '',
    digest: '',
    imageId: '',
    sizeBytes: undefined,
    builder: undefined,
    buildMs: 0,
    pushMs: 0,
    pushed: false,
    pushAttempts: 0,
  };
  let dockerConfig: string | undefined;
  let runner: DockerRunner | undefined;
  try {
    // 1. Plan: pure, every issue at once.
    const planned = planBuild(inputs, env, now(), deps.cwd ?? process.cwd());
    if (!planned.ok) throw new InputError(planned.issues, 'build-push: invalid input');
    const plan = planned.plan;
    Object.assign(result, { repository: plan.repository, refs: plan.refs, tags: plan.tags, version: plan.version });

    // 2. Checks on the files, before any docker command.
    checkContext(plan);
    const fileSecrets = readSecretFilePaths(inputs, deps.cwd ?? process.cwd());
    const missingEnv = secretEnvValues.filter((s) => s.value === undefined || s.value === '');
    if (missingEnv.length)
      throw new InputError(
        missingEnv.map((s) => `input "secret-envs": ${s.id}=${s.env}: the environment variable ${s.env} is not set`),
        'build-push: invalid input',
      );

    // Melton's env file: refused if something is already there, or if .dockerignore would keep it out of the build.
    // BuildKit reads <Dockerfile>.dockerignore when it exists; checked again below if the builder turns out classic.
    const envFileInput = inputs['env-file']?.trim();
    let envFilePath = envFileInput ? checkEnvFile(plan.context, envFileInput, plan.dockerfile, true) : undefined;

    // 3. The builder (by probing capabilities) and the login, at the same time: neither needs the other, and
    // both are short processes whose start-up dominates. The login uses a config dir of the run's own, so the
    // runner's ~/.docker is never written; every docker command of the run uses that dir.
    const username = inputs['registry-username']?.trim();
    const password = inputs['registry-password'];
    const candidates = dockerCandidates(inputs['docker-path'], env);
    const baseEnv = definedEnv(env);
    runner =
      deps.runner ??
      new ExecDockerRunner(reporter, () => ({ ...baseEnv, ...(dockerConfig ? { DOCKER_CONFIG: dockerConfig } : {}) }));
    if (username && password) {
      dockerConfig = await createDockerConfig(tempRoot, userDockerConfig(env));
      Object.assign(cleanup, { dockerConfig, registry: plan.registry, docker: candidates[0] });
      track();
    }
    const retry = { retries: inputs.retries, baseMs: deps.retryBaseMs ?? 1000, sleep, reporter };
    const [detected, loggedIn] = await Promise.allSettled([
      detectBuilder(runner, candidates, inputs['builder-kind']),
      username && password && candidates[0]
        ? withRetries(
            runner,
            loginCommand(candidates[0], plan.registry, username, password),
            `log in to ${plan.registry}`,
            retry,
          )
        : Promise.resolve(undefined),
    ]);
    if (detected.status === 'rejected') throw detected.reason;
    const detection = detected.value;
    for (const p of detection.probes) reporter.debug(p);
    const builder = detection.builder;
    result.builder = builder;
    const secretIds = [
      ...(inputs.secrets ?? []).map((s) => s.key),
      ...secretEnvValues.map((s) => s.id),
      ...fileSecrets.map((s) => s.id),
    ];
    const platforms = inputs.platforms ?? [];
    const capIssues = capabilityIssues(builder.kind, {
      secretFiles: secretIds,
      cacheTo: inputs['cache-to'] ?? [],
      platforms,
      provenance: inputs.provenance,
      sbom: inputs.sbom,
      load: inputs.load,
    });
    if (capIssues.length)
      throw new UserError(
        `the ${describeBuilder(builder)} cannot do what was asked:\n${capIssues.map((i) => `  - ${i}`).join('\n')}`,
        { details: detection.probes.map((p) => `probe: ${p}`) },
      );
    reporter.info(`builder: ${describeBuilder(builder)}`);
    if (envFileInput && builder.kind === 'classic')
      envFilePath = checkEnvFile(plan.context, envFileInput, plan.dockerfile, false);
    if (loggedIn.status === 'rejected') throw loggedIn.reason;
    if (username && password) reporter.info(`logged in to ${plan.registry} as ${username}`);

    // 5. Build, with secrets in 0600 files and Melton's env file; both removed whatever the outcome.
    // buildx pushes itself when it cannot (several platforms) or must not (attestations, which `docker push` of a
    // loaded image would drop) or need not (load: false) go through the local store; otherwise the image is
    // loaded and pushed with `docker push`, which works with every builder the same way.
    const attest = wantsAttestation(inputs.provenance) || wantsAttestation(inputs.sbom);
    const pushFromBuilder =
      builder.kind === 'buildx' && inputs.push && (platforms.length > 1 || attest || inputs.load === false);
    const load = builder.kind !== 'buildx' || (inputs.load ?? !pushFromBuilder);
    let secretFiles: SecretFiles | undefined;
    let envFile: WrittenEnvFile | undefined;
    const iidDir = join(tempRoot, `dyce-build-${process.pid}-${Date.now()}`);
    cleanup.paths.push(iidDir);
    track();
    const started = performance.now();
    try {
      const secretValues = [
        ...(inputs.secrets ?? []).map((s) => ({ id: s.key, value: s.value })),
        ...secretEnvValues.map((s) => ({ id: s.id, value: s.value! })),
      ];
      if (secretValues.length) {
        secretFiles = await writeSecretFiles(tempRoot, secretValues);
        cleanup.paths.push(secretFiles.dir);
        track();
      }
      if (envFilePath) {
        envFile = await writeEnvFile(envFilePath, inputs['env-file-secrets'] ?? []);
        cleanup.paths.push(envFile.createdDir ?? envFile.path);
        track();
        reporter.warning(
          `env-file: ${(inputs['env-file-secrets'] ?? []).map((e) => e.key).join(', ')} written to ${relative(plan.context, envFilePath)} are baked into the image: anyone who can pull it can read them (docker save, docker run cat). Use "secrets" with RUN --mount=type=secret to keep them out of every layer.`,
          { title: 'build secrets readable from the image' },
        );
      }
      if (inputs['secret-build-args']?.length)
        reporter.warning(
          `secret-build-args: ${inputs['secret-build-args'].map((e) => e.key).join(', ')} are kept out of argv and masked in the log, but build arguments are recorded in the image history (docker history shows them); use "secrets" to keep them out of the image.`,
        );
      await mkdirPrivate(iidDir);
      const cmd = buildCommand(builder, {
        context: plan.context,
        dockerfile: plan.dockerfile,
        target: inputs.target?.trim() || undefined,
        refs: plan.refs,
        labels: plan.labels,
        buildArgs: (inputs['build-args'] ?? []).map((a) => ({ key: a.key, value: a.value })),
        secretBuildArgs: (inputs['secret-build-args'] ?? []).map((a) => a.key),
        secretFiles: [...(secretFiles?.files ?? []), ...fileSecrets],
        cacheFrom: inputs['cache-from'] ?? [],
        cacheTo: inputs['cache-to'] ?? [],
        platforms,
        iidFile: join(iidDir, 'iid'),
        noCache: inputs['no-cache'],
        pull: inputs.pull,
        provenance: inputs.provenance,
        sbom: inputs.sbom,
        load,
        pushFromBuilder,
        metadataFile: builder.kind === 'buildx' ? join(iidDir, 'metadata.json') : undefined,
      });
      const secretArgEnv: Record<string, string> = {};
      for (const a of inputs['secret-build-args'] ?? []) secretArgEnv[a.key] = a.value;
      const r = await reporter.group(`docker build ${plan.refs[0] ?? ''}`, () =>
        runner!.run(cmd, { stream: true, env: secretArgEnv }),
      );
      if (r.code !== 0)
        throw new UserError(`docker build failed (exit ${r.code}): ${errorLine(r.stderr || r.stdout)}`, {
          details: lastLines(r.stderr || r.stdout, 15),
        });
      result.imageId = (await readFile(join(iidDir, 'iid'), 'utf8').catch(() => '')).trim();
      if (builder.kind === 'buildx') result.buildxMetadata = await readBuildxMetadata(join(iidDir, 'metadata.json'));
      if (pushFromBuilder) {
        result.pushed = true;
        const d = result.buildxMetadata?.['containerimage.digest'];
        result.digest = typeof d === 'string' ? d : '';
      }
    } finally {
      result.buildMs = performance.now() - started;
      if (envFile) await removeEnvFile(envFile);
      if (secretFiles) await rm(secretFiles.dir, { recursive: true, force: true });
      cleanup.paths = cleanup.paths.filter(
        (p) => p !== secretFiles?.dir && p !== (envFile?.createdDir ?? envFile?.path),
      );
      track();
    }
    reporter.info(`built ${result.imageId || plan.refs[0]} in ${(result.buildMs / 1000).toFixed(1)}s`);

    // 6. Push each tag (layers go up once; later tags only add a manifest), retrying transient failures. The image's
    // size is read meanwhile (the image exists once built).
    type InspectInfo = { Size?: number; RepoDigests?: string[] };
    const inspect = async (): Promise<InspectInfo | undefined> => {
      const ins = await runner!.run(inspectCommand(builder.docker, result.imageId || plan.refs[0]!));
      return ins.code === 0 ? (JSON.parse(ins.stdout) as InspectInfo[])[0] : undefined;
    };
    const sized = load ? inspect() : Promise.resolve(undefined);
    if (inputs.push && !pushFromBuilder) {
      const pushStarted = performance.now();
      const pushOne = async (ref: string, stream: boolean) => {
        const { result: r, attempts } = await withRetries(runner!, pushCommand(builder.docker, ref), `push ${ref}`, {
          ...retry,
          stream,
        });
        result.pushAttempts += attempts;
        const m = /digest: (sha256:[0-9a-f]{64})/.exec(r.stdout);
        if (m && !result.digest) result.digest = m[1]!;
        if (!stream) reporter.info(`pushed ${ref}`);
      };
      // The first push uploads the layers (its progress is shown); the other tags only add manifests, in parallel.
      const [first, ...rest] = plan.refs;
      reporter.info(`pushing ${first}`);
      await pushOne(first!, true);
      await Promise.all(rest.map((ref) => pushOne(ref, false)));
      result.pushed = true;
      result.pushMs = performance.now() - pushStarted;
    }

    // 7. Digest (from the push output, else the local store's RepoDigests after the push) and size.
    result.sizeBytes = (await sized)?.Size;
    if (result.pushed && !result.digest) {
      const rd = (await inspect())?.RepoDigests?.find((d) => d.startsWith(`${plan.repository}@`));
      if (rd) result.digest = rd.slice(plan.repository.length + 1);
    }
    if (result.pushed && !result.digest)
      throw new UserError(`pushed ${plan.refs.join(', ')} but could not read the digest back from docker`);
    if (result.pushed) reporter.info(`pushed ${plan.repository}@${result.digest}`);

    reporter.summary(
      renderSummary({
        repository: plan.repository,
        refs: plan.refs,
        digest: result.digest,
        sizeBytes: result.sizeBytes,
        buildMs: result.buildMs,
        pushMs: result.pushMs,
        builder: describeBuilder(builder),
        pushed: result.pushed,
        secretNames: secretIds,
        secretBuildArgNames: (inputs['secret-build-args'] ?? []).map((a) => a.key),
        envFile: envFilePath
          ? { path: relative(plan.context, envFilePath), names: (inputs['env-file-secrets'] ?? []).map((e) => e.key) }
          : undefined,
      }),
    );
    return result;
  } finally {
    writeOutputs(reporter, result, inputs);
    if (dockerConfig && runner) {
      await logoutAndRemove(
        runner,
        { dockerConfig, registry: cleanup.registry, docker: result.builder?.docker ?? cleanup.docker, paths: [] },
        reporter,
      );
      dockerConfig = undefined;
    }
    for (const p of cleanup.paths) await rm(p, { recursive: true, force: true }).catch(() => {});
    cleanup.paths = [];
    cleanup.dockerConfig = undefined;
    track();
  }
}

function writeOutputs(reporter: Reporter, r: BuildPushResult, inputs: BuildPushOptions): void {
  reporter.output('image', r.repository);
  reporter.output('tags', r.refs.join('\n'));
  reporter.output('version', r.version);
  reporter.output('digest', r.digest);
  reporter.output('imageid', r.imageId);
  // buildx's own keys first (docker/build-push-action's `metadata` output is exactly that file), Dyce's beside them:
  // buildx's are dotted (`containerimage.digest`), so the two never collide.
  reporter.output('metadata', {
    ...(r.buildxMetadata ?? {}),
    image: r.repository,
    tags: r.tags,
    refs: r.refs,
    version: r.version,
    digest: r.digest,
    imageId: r.imageId,
    size: r.sizeBytes ?? null,
    builder: r.builder ? { kind: r.builder.kind, docker: r.builder.docker } : null,
    buildMs: Math.round(r.buildMs),
    pushMs: Math.round(r.pushMs),
    pushed: r.pushed,
    pushAttempts: r.pushAttempts,
    secrets: [
      ...(inputs.secrets ?? []).map((s) => s.key),
      ...(inputs['secret-envs'] ?? []).map((s) => s.key),
      ...(inputs['secret-files'] ?? []).map((s) => s.key),
    ],
  });
}

function checkContext(plan: BuildPlan): void {
  if (!existsSync(plan.context) || !statSync(plan.context).isDirectory())
    throw new UserError(`input "context": ${plan.context} is not a directory`);
  if (!existsSync(plan.dockerfile) || !statSync(plan.dockerfile).isFile())
    throw new UserError(`input "file": no Dockerfile at ${plan.dockerfile}`);
}

function describeBuilder(b: Builder): string {
  const name =
    b.kind === 'buildx' ? 'buildx' : b.kind === 'buildkit' ? 'BuildKit (DOCKER_BUILDKIT=1)' : 'classic builder';
  return `${name} with ${b.docker}`;
}

interface RetryOpts {
  retries: number;
  baseMs: number;
  sleep: (ms: number) => Promise<void>;
  reporter: Reporter;
  stream?: boolean;
}

/**
 * Runs a registry command, retrying transient failures (5xx, 429, timeouts, resets) with exponential backoff.
 * Authentication failures are never retried: retrying a wrong password only risks locking the account.
 */
export async function withRetries(
  runner: DockerRunner,
  cmd: DockerCommand,
  what: string,
  o: RetryOpts,
): Promise<{ result: ExecResult; attempts: number }> {
  for (let attempt = 1; ; attempt++) {
    const r = await runner.run(cmd, { stream: o.stream ?? false });
    if (r.code === 0) return { result: r, attempts: attempt };
    const text = `${r.stderr}\n${r.stdout}`;
    const kind = classifyRegistryFailure(text);
    const line = errorLine(text);
    if (kind === 'auth')
      throw new UserError(
        `${what}: the registry refused the credentials (401 unauthorized / access denied): ${line}. Check "registry-username" and "registry-password" and that the user may push to this repository; not retried`,
      );
    if (kind !== 'transient' || attempt > o.retries)
      throw new UserError(
        `${what} failed${attempt > 1 ? ` after ${attempt} attempts` : ''}: ${line}${kind === 'transient' ? '' : ' (not a transient failure: not retried)'}`,
        { details: lastLines(text, 10) },
      );
    const delay = Math.round(backoffMs(attempt, o.baseMs) * (0.8 + Math.random() * 0.4));
    o.reporter.warning(
      `${what}: attempt ${attempt}/${o.retries + 1} failed with a transient error (${line}); retrying in ${(delay / 1000).toFixed(1)}s`,
    );
    await o.sleep(delay);
  }
}

/**
 * Logs out of the run's own config dir and removes it; the post step calls this too. Warns, never throws.
 * When config.json holds the credentials itself (no credsStore / credHelpers: the usual case for a fresh dir),
 * removing the dir removes them and `docker logout` is skipped. A credential helper (which docker picks by itself
 * when `pass` or secretservice is installed) keeps them elsewhere, so then `docker logout` must run.
 */
export async function logoutAndRemove(runner: DockerRunner, state: CleanupState, reporter: Reporter): Promise<void> {
  if (!state.dockerConfig || !existsSync(state.dockerConfig)) return;
  let helper = true;
  try {
    const cfg = JSON.parse(await readFile(join(state.dockerConfig, 'config.json'), 'utf8')) as Record<string, unknown>;
    helper = Boolean(cfg.credsStore) || Boolean(cfg.credHelpers && Object.keys(cfg.credHelpers).length);
  } catch (e) {
    // No config.json: nothing was stored.
    helper = (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
  if (helper && state.docker && state.registry) {
    const r = await runner.run(logoutCommand(state.docker, state.registry), {
      env: { DOCKER_CONFIG: state.dockerConfig },
    });
    if (r.code !== 0) reporter.warning(`docker logout ${state.registry} failed: ${errorLine(r.stderr)}`);
  }
  await rm(state.dockerConfig, { recursive: true, force: true }).catch((e) =>
    reporter.warning(`could not remove ${state.dockerConfig}: ${e instanceof Error ? e.message : e}`),
  );
}

/** The post step: undo whatever a main step that died left behind. Warns on failure. */
export async function cleanupAfterRun(state: CleanupState, reporter: Reporter, env: NodeJS.ProcessEnv): Promise<void> {
  const runner = new ExecDockerRunner(reporter, () => definedEnv(env));
  await logoutAndRemove(runner, state, reporter);
  for (const p of state.paths ?? []) {
    try {
      await rm(p, { recursive: true, force: true });
      reporter.info(`removed ${p}`);
    } catch (e) {
      reporter.warning(`could not remove ${p}: ${e instanceof Error ? e.message : e}`);
    }
  }
}

async function mkdirPrivate(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

async function readBuildxMetadata(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    const meta = JSON.parse(await readFile(path, 'utf8')) as unknown;
    return meta && typeof meta === 'object' && !Array.isArray(meta) ? (meta as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `secret-files` as absolute paths, checked before any docker command: each must be a readable regular file. The
 * file goes to the builder as it is (`--secret id=..,src=..`); its content is never read here.
 */
function readSecretFilePaths(inputs: BuildPushOptions, cwd: string): { id: string; path: string }[] {
  const issues: string[] = [];
  const out: { id: string; path: string }[] = [];
  for (const e of inputs['secret-files'] ?? []) {
    const path = resolve(cwd, e.value.trim());
    if (!existsSync(path) || !statSync(path).isFile())
      issues.push(`input "secret-files" line ${e.line}: ${e.key}: no file at ${path}`);
    else out.push({ id: e.key, path });
  }
  if (issues.length) throw new InputError(issues, 'build-push: invalid input');
  return out;
}

function lastLines(text: string, n: number): string[] {
  return text.trim().split('\n').slice(-n);
}
