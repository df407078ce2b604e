import { type ActionSpec, type InputRule, input } from '../input-spec.js';

/** Environment variable names (env-file keys, secret-build-args names). */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** BuildKit secret ids: what `RUN --mount=type=secret,id=...` names. */
const SECRET_ID = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/**
 * build-push's inputs. Names follow docker/build-push-action where they overlap (`context`, `file`, `tags`,
 * `build-args`, `secrets`, `secret-envs`, `labels`, `push`, `cache-from`, `cache-to`, `platforms`).
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
  tags: input.list({ description: 'Tags to push in addition to the automatic ones, e.g. `edge`' }),
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
  builder: input.enum(['auto', 'buildx', 'buildkit', 'classic'] as const, {
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
    const ids = new Set((i.secrets ?? []).map((s) => s.key));
    for (const e of i['secret-envs'] ?? []) {
      if (ids.has(e.key)) issues.push(`input "secret-envs" line ${e.line}: id ${e.key} is also in "secrets"`);
      if (!ENV_NAME.test(e.value))
        issues.push(
          `input "secret-envs" line ${e.line}: ${JSON.stringify(e.value)} is not an environment variable name`,
        );
    }
    return issues;
  },
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
    metadata: { description: 'JSON: image, tags, version, digest, image id, size, builder, build time, secret names' },
  },
  post: true,
  branding: { icon: 'package', color: 'blue' },
};
