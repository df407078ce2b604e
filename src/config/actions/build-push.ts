import { type ActionSpec, type InputRule, input } from '../input-spec.js';

/** Environment variable names (env-file keys, secret-build-args names). */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** BuildKit secret ids: what `RUN --mount=type=secret,id=...` names. */
const SECRET_ID = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/**
 * build-push's inputs. Names follow docker/build-push-action wherever the meaning is the same (`context`, `file`,
 * `target`, `tags`, `build-args`, `secrets`, `secret-envs`, `secret-files`, `labels`, `push`, `load`, `pull`,
 * `no-cache`, `cache-from`, `cache-to`, `platforms`, `provenance`, `sbom`); its `builder` (a buildx builder
 * instance) means something else, so Dyce's choice of builder is `builder-kind`. The README has the full table.
 */
export const buildPushInputs = {
  context: input.string({ description: 'Build context directory', default: '.' }),
  file: input.string({ description: 'Dockerfile path (default: `<context>/Dockerfile`)' }),
  target: input.string({ description: 'Build stage to stop at (`docker build --target`)' }),
  image: input.string({
    description: 'Image repository, e.g. `meltondevops/melton-app-server` or `127.0.0.1:5000/team/app` (without a tag)',
    required: true,
  }),
  registry: input.string({
    description: 'Registry to log in to and push to when `image` names none (default: Docker Hub)',
    default: 'docker.io',
  }),
  'registry-username': input.string({ description: 'Registry user name; with a password, the action logs in' }),
  'registry-password': input.string({
    description: 'Registry password or token (sent to `docker login --password-stdin`)',
    secret: true,
  }),
  tags: input.list({
    description:
      "Bare tags (`edge`) pushed in addition to the automatic ones, or full references (`ghcr.io/org/app:v1.0.0`, e.g. docker/metadata-action's `tags` output) on the repository of `image`: then exactly those are pushed, and no automatic tag. Case is kept",
  }),
  'semver-tags': input.boolean({
    description: 'On a tag ref `v1.4.2`, also push `1.4.2`, `1.4` and `1` (never for pre-releases, no `0` major)',
    default: 'false',
  }),
  latest: input.enum(['never', 'always', 'release'] as const, {
    description: 'When to add `latest`: never, always, or on a release tag ref (semver, not a pre-release)',
    default: 'never',
  }),
  ref: input.string({ description: 'Git ref the tags come from (default: `GITHUB_REF`), e.g. `refs/tags/v1.4.2`' }),
  sha: input.string({ description: 'Commit the image is built from (default: `GITHUB_SHA`); gives the `sha-<7>` tag' }),
  'build-args': input.map({ description: 'Build arguments (`--build-arg`); visible in the image history' }),
  'secret-build-args': input.map({
    description:
      'Build arguments whose values are masked in logs and passed through the environment, not argv; the values still end up in the image history: prefer `secrets`',
    keyPattern: ENV_NAME,
    secret: true,
  }),
  secrets: input.map({
    description:
      'BuildKit secrets, `id=value` (heredoc for multi-line); read in the Dockerfile with `RUN --mount=type=secret,id=<id>`; never in any layer',
    keyPattern: SECRET_ID,
    secret: true,
  }),
  'secret-envs': input.map({
    description: 'BuildKit secrets taken from environment variables of the step, `id=ENV_NAME`',
    keyPattern: SECRET_ID,
  }),
  'secret-files': input.map({
    description:
      'BuildKit secrets read from files on the runner, `id=path` (relative to the working directory); the file goes to the builder as it is',
    keyPattern: SECRET_ID,
  }),
  'env-file': input.string({
    description:
      "Melton's method: write `env-file-secrets` to this path inside the context (0600) for the build, then remove it. The values are readable by anyone who can pull the image",
  }),
  'env-file-secrets': input.map({
    description: '`NAME=value` lines written to `env-file`',
    keyPattern: ENV_NAME,
    secret: true,
  }),
  labels: input.map({
    description: 'Image labels; OCI labels (source, revision, created, version, title) are added automatically',
    keyPattern: /^[A-Za-z0-9][A-Za-z0-9._/-]*$/,
  }),
  push: input.boolean({ description: 'Push the image', default: 'true' }),
  load: input.boolean({
    description:
      "Load the image into the runner's Docker image store. Unset: loaded unless buildx pushes it itself (several platforms, `provenance`/`sbom`); `false` with buildx pushes straight from the builder (docker build always loads)",
  }),
  pull: input.boolean({ description: 'Always pull newer versions of the base images (`--pull`)', default: 'false' }),
  'no-cache': input.boolean({ description: 'Build without the build cache (`--no-cache`)', default: 'false' }),
  retries: input.integer({
    description: 'Push retries on transient failures (5xx, 429, timeouts, connection resets); a 401 is never retried',
    default: '3',
    min: 0,
    max: 20,
  }),
  'cache-from': input.lines({ description: 'Cache sources (`--cache-from`), one per line' }),
  'cache-to': input.lines({
    description: 'Cache exports (`--cache-to`, buildx only; `type=inline` also works with BuildKit)',
  }),
  platforms: input.list({ description: 'Target platforms, e.g. `linux/amd64,linux/arm64` (several need buildx)' }),
  provenance: input.string({
    description:
      'Provenance attestation, as buildx takes it: `true`, `false`, `mode=max`, ... (buildx only; the image is then pushed from the builder, since `docker push` drops attestations)',
  }),
  sbom: input.string({
    description:
      'SBOM attestation, as buildx takes it: `true`, `false`, `generator=...` (buildx only; pushed from the builder like `provenance`)',
  }),
  'builder-kind': input.enum(['auto', 'buildx', 'buildkit', 'classic'] as const, {
    description:
      'Which builder to use: auto probes `docker buildx`, then a docker client with BuildKit, then the classic builder',
    default: 'auto',
  }),
  'docker-path': input.string({
    description: 'Docker client to use (default: probe every `docker` on PATH and the usual places)',
  }),
};

export type BuildPushInputs = typeof buildPushInputs;

/** Cross-field rules, each naming the inputs involved. */
export const buildPushRules: InputRule<BuildPushInputs>[] = [
  (i) =>
    i['env-file-secrets']?.length && !i['env-file']?.trim()
      ? 'input "env-file-secrets" needs "env-file" (the path to write them to, inside the context)'
      : undefined,
  (i) =>
    i['env-file']?.trim() && !i['env-file-secrets']?.length
      ? 'input "env-file" needs "env-file-secrets" (the NAME=value lines to write)'
      : undefined,
  (i) =>
    Boolean(i['registry-username']?.trim()) !== Boolean(i['registry-password'])
      ? 'inputs "registry-username" and "registry-password" go together: give both to log in, or neither'
      : undefined,
  (i) => {
    const issues: string[] = [];
    for (const e of i['env-file-secrets'] ?? [])
      if (/[\r\n]/.test(e.value))
        issues.push(
          `input "env-file-secrets" line ${e.line}: ${e.key} has a multi-line value, which an env file cannot hold; use "secrets" instead`,
        );
    return issues;
  },
  (i) => {
    const issues: string[] = [];
    const ids = new Map((i.secrets ?? []).map((s) => [s.key, 'secrets']));
    for (const e of i['secret-envs'] ?? []) {
      const other = ids.get(e.key);
      if (other) issues.push(`input "secret-envs" line ${e.line}: id ${e.key} is also in "${other}"`);
      ids.set(e.key, 'secret-envs');
      if (!ENV_NAME.test(e.value))
        issues.push(
          `input "secret-envs" line ${e.line}: ${JSON.stringify(e.value)} is not an environment variable name`,
        );
    }
    for (const e of i['secret-files'] ?? []) {
      const other = ids.get(e.key);
      if (other) issues.push(`input "secret-files" line ${e.line}: id ${e.key} is also in "${other}"`);
      if (!e.value.trim()) issues.push(`input "secret-files" line ${e.line}: ${e.key} needs a file path`);
    }
    return issues;
  },
  (i) =>
    i.load === false && !i.push
      ? 'inputs "load" and "push" are both false: the image would go nowhere (set one of them)'
      : undefined,
];

export const buildPushSpec: ActionSpec<BuildPushInputs> = {
  name: 'Dyce build-push',
  id: 'build-push',
  description:
    'Build an image with build-time secrets (BuildKit secret mounts, or an env file baked in with a warning), tag it from the git ref and push it to a private registry with retries.',
  inputs: buildPushInputs,
  outputs: {
    success: { description: 'true when the image was built (and pushed, unless push is false)' },
    image: { description: 'The image repository, registry included, e.g. `127.0.0.1:5000/team/app`' },
    tags: { description: 'Every pushed reference, `repository:tag`, one per line' },
    version: { description: 'The main tag: the git tag (`v1.4.2`), else the branch, else `sha-<7>`' },
    digest: { description: 'The pushed manifest digest, `sha256:…` (set whenever the image was pushed)' },
    imageid: { description: 'The image ID (its config digest), `sha256:…`' },
    metadata: {
      description:
        "JSON: image, tags, version, digest, image id, size, builder, build time, secret names; where buildx ran, also buildx's own build metadata keys (`containerimage.digest`, `image.name`, ...)",
    },
  },
  removed: {
    builder:
      'is now "builder-kind" (auto, buildx, buildkit, classic): in docker/build-push-action "builder" names a buildx builder instance, which is not what it chose here',
  },
  post: true,
  branding: { icon: 'package', color: 'blue' },
};
