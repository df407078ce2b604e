/**
 * Pure tag rules: which tags an image gets from the git event, and what a valid tag and image name are.
 * Docker's grammar (distribution/reference): a tag is `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; a repository path is
 * lower-case components separated by `/`, each `[a-z0-9]+` joined by `.`, `_`, `__` or dashes.
 */
export const TAG_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::\d+)?$/;
const DOCKER_HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

export interface Semver {
  major: number;
  minor: number;
  patch: number;
  prerelease: string | undefined;
}

/** `v1.4.2`, `1.4.2-rc.1`, `v1.4.2+build.5` (the leading v is optional). */
export function parseSemver(text: string): Semver | undefined {
  const m = /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/.exec(text);
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), prerelease: m[4] };
}

/**
 * Turns every character a tag cannot hold into `-` and keeps the result a valid tag. Case is kept: Docker tags are
 * case-sensitive (`v1.0.0-RC1` stays what `github.ref_name` says); only repositories must be lower-case.
 */
export function sanitizeTag(text: string): string {
  let t = text.replace(/[^A-Za-z0-9_.-]/g, '-');
  // A tag cannot start with `.` or `-`.
  t = t.replace(/^[.-]+/, '');
  t = t.slice(0, 128).replace(/[.-]+$/, '');
  return t;
}

export interface TagEvent {
  /** `refs/tags/v1.4.2`, `refs/heads/main`, `refs/pull/12/merge`; empty when unknown. */
  ref?: string | undefined;
  /** Full commit sha; empty when unknown. */
  sha?: string | undefined;
  /** GITHUB_EVENT_NAME, for the metadata only. */
  eventName?: string | undefined;
}

export interface TagOptions {
  /**
   * The `tags` input as given: bare tags (`edge`), pushed in addition to the automatic ones, or full references
   * (`ghcr.io/org/app:v1.0.0`, docker/metadata-action's `tags` output), pushed exactly as given and nothing else.
   */
  explicit: readonly string[];
  semverTags: boolean;
  latest: 'never' | 'always' | 'release';
  /** The resolved `registry/image` full references must name; undefined when `image` itself is invalid. */
  repository?: string | undefined;
}

export interface TagPlan {
  /** In push order; the first is the version. */
  tags: string[];
  version: string;
  /** Where the version came from, for the summary. */
  source: 'tag' | 'branch' | 'pull-request' | 'sha' | 'explicit' | 'references';
  /** Issues with explicit tags (invalid names), each naming the tag. */
  issues: string[];
  /** With full references in `tags`: the references to push, spelled as given (same order as `tags`). */
  refs?: string[];
}

/**
 * Computes the tags for an event:
 * - a tag ref `refs/tags/v1.4.2` gives `v1.4.2` (Melton's `${GITHUB_REF#refs/*\/}`), plus `1.4.2`, `1.4`, `1` when
 *   `semverTags` and not a pre-release (no `0` major: 0.x minors may break);
 * - a branch gives its sanitised name, a pull request `pr-<n>`;
 * - every build with a known sha gets `sha-<7>`;
 * - `latest` only by the `latest` rule.
 * The version is the first automatic tag, else the first explicit one.
 * When `tags` holds full references (docker/metadata-action's output), they are the whole list: no automatic tag is
 * added (the user already chose every tag), bare tags beside them name the same repository, and the version is the
 * first one's tag.
 */
export function computeTags(event: TagEvent, opts: TagOptions): TagPlan {
  const refs = opts.explicit.filter(isReference);
  if (refs.length) return referenceTags(opts);
  const auto: string[] = [];
  const issues: string[] = [];
  let source: TagPlan['source'] = 'sha';
  let release = false;
  const ref = event.ref?.trim() ?? '';
  const tagRef = /^refs\/tags\/(.+)$/.exec(ref);
  const branchRef = /^refs\/heads\/(.+)$/.exec(ref);
  const prRef = /^refs\/pull\/(\d+)\//.exec(ref);
  if (tagRef) {
    const name = tagRef[1]!;
    const clean = sanitizeTag(name);
    if (clean) {
      auto.push(clean);
      source = 'tag';
    }
    const sv = parseSemver(name);
    if (sv && sv.prerelease === undefined) {
      release = true;
      if (opts.semverTags) {
        auto.push(`${sv.major}.${sv.minor}.${sv.patch}`, `${sv.major}.${sv.minor}`);
        if (sv.major > 0) auto.push(String(sv.major));
      }
    }
  } else if (branchRef) {
    const clean = sanitizeTag(branchRef[1]!);
    if (clean) {
      auto.push(clean);
      source = 'branch';
    }
  } else if (prRef) {
    auto.push(`pr-${prRef[1]}`);
    source = 'pull-request';
  }
  const sha = event.sha?.trim().toLowerCase() ?? '';
  if (sha) {
    if (/^[0-9a-f]{7,64}$/.test(sha)) auto.push(`sha-${sha.slice(0, 7)}`);
    else issues.push(`input "sha" must be a hex commit id, got ${JSON.stringify(event.sha)}`);
  }
  if (opts.latest === 'always' || (opts.latest === 'release' && release)) auto.push('latest');
  for (const t of opts.explicit) if (!TAG_PATTERN.test(t)) issues.push(badTag(t));
  const tags = unique([...auto, ...opts.explicit.filter((t) => TAG_PATTERN.test(t))]);
  const first = auto[0] ?? opts.explicit.find((t) => TAG_PATTERN.test(t));
  if (!auto[0] && first) source = 'explicit';
  if (tags.length === 0 && issues.length === 0)
    issues.push('no tags: give "tags", or a "ref" or "sha" (GITHUB_REF / GITHUB_SHA on a runner) to derive them from');
  return { tags, version: first ?? '', source, issues };
}

/** A `tags` entry that names a repository (`name/app:v1`, `ghcr.io/org/app:v1`) rather than a bare tag. */
function isReference(entry: string): boolean {
  return entry.includes('/') || entry.includes(':') || entry.includes('@');
}

function badTag(t: string): string {
  return `input "tags": ${JSON.stringify(t)} is not a valid tag (letters, digits, _ . -, not starting with . or -, at most 128)`;
}

/** `tags` with full references: exactly those (bare entries on the same repository), in the order given. */
function referenceTags(opts: TagOptions): TagPlan {
  const issues: string[] = [];
  const byTag = new Map<string, string | undefined>();
  if (opts.semverTags || opts.latest !== 'never')
    issues.push(
      `input "tags" holds full references, so exactly those are pushed: ${opts.semverTags ? '"semver-tags"' : '"latest"'} cannot add tags to them; add the tags to the references instead (docker/metadata-action: type=semver, type=raw,value=latest)`,
    );
  const want = opts.repository === undefined ? undefined : canonicalRepository(opts.repository);
  for (const entry of opts.explicit) {
    if (!isReference(entry)) {
      if (TAG_PATTERN.test(entry)) {
        if (!byTag.has(entry)) byTag.set(entry, undefined);
      } else issues.push(badTag(entry));
      continue;
    }
    const r = splitReference(entry);
    if (!r.ok) {
      issues.push(`input "tags": ${JSON.stringify(entry)}: ${r.error}`);
      continue;
    }
    if (want !== undefined && canonicalRepository(r.repository) !== want) {
      issues.push(
        `input "tags": ${JSON.stringify(entry)} names the repository ${r.repository}, but "image" and "registry" resolve to ${opts.repository}; every reference must name that repository (one build-push pushes to one repository)`,
      );
      continue;
    }
    if (!byTag.get(r.tag)) byTag.set(r.tag, entry);
  }
  const tags = [...byTag.keys()];
  const repository = opts.repository ?? '';
  const refs = tags.map((t) => byTag.get(t) ?? `${repository}:${t}`);
  return { tags, version: tags[0] ?? '', source: 'references', issues, refs };
}

/** Splits `registry/path:tag`; the repository must be lower-case, the tag keeps its case. Digests are refused. */
export function splitReference(
  text: string,
): { ok: true; repository: string; tag: string } | { ok: false; error: string } {
  if (text.includes('@'))
    return { ok: false, error: 'a digest cannot be pushed to; give a reference with a tag (repository:tag)' };
  const slash = text.lastIndexOf('/');
  const colon = text.lastIndexOf(':');
  if (colon <= slash)
    return { ok: false, error: "a reference needs its tag (repository:tag), e.g. docker/metadata-action's output" };
  const repository = text.slice(0, colon);
  const tag = text.slice(colon + 1);
  if (!TAG_PATTERN.test(tag))
    return {
      ok: false,
      error: `the tag ${JSON.stringify(tag)} is not valid (letters, digits, _ . -, not starting with . or -, at most 128)`,
    };
  const parts = repository.split('/');
  const hasHost = parts.length > 1 && isRegistryHost(parts[0]!);
  const path = hasHost ? parts.slice(1) : parts;
  if (hasHost && !HOST.test(parts[0]!))
    return { ok: false, error: `${JSON.stringify(parts[0])} is not a valid registry host` };
  if (path.some((c) => c !== c.toLowerCase()))
    return { ok: false, error: `repository names must be lower-case (${repository}); only the tag may have capitals` };
  if (path.length === 0 || path.some((c) => !PATH_COMPONENT.test(c)))
    return { ok: false, error: `${JSON.stringify(repository)} is not a valid repository name` };
  return { ok: true, repository, tag };
}

function isRegistryHost(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost';
}

/**
 * One spelling per repository, as Docker resolves names: Docker Hub's host aliases and its `library/` namespace
 * dropped (`docker.io/library/nginx` = `nginx`), so metadata-action's `docker.io/org/app` matches `org/app`.
 */
export function canonicalRepository(repository: string): string {
  const parts = repository.split('/');
  if (parts.length > 1 && DOCKER_HUB.has(parts[0]!)) parts.shift();
  if (parts.length === 2 && parts[0] === 'library') parts.shift();
  return parts.join('/');
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

export interface ImageName {
  /** Repository with its registry host when it has one: `127.0.0.1:5000/team/app`, `meltondevops/app`. */
  repository: string;
  /** Where `docker login` goes: a host[:port], or `docker.io`. */
  registry: string;
}

/**
 * Resolves the image repository and the registry to log in to. `image` may name its registry
 * (`127.0.0.1:5000/team/app`); otherwise `registry` is prepended unless it is Docker Hub.
 * Returns issues (naming the input) instead of throwing.
 */
export function resolveImage(
  image: string,
  registry: string,
): { ok: true; value: ImageName } | { ok: false; issues: string[] } {
  const issues: string[] = [];
  const img = image.trim();
  const reg = registry.trim() || 'docker.io';
  if (!HOST.test(reg) && !DOCKER_HUB.has(reg))
    issues.push(`input "registry": ${JSON.stringify(registry)} is not a host[:port]`);
  if (/[:@]/.test(img.split('/').slice(-1)[0] ?? ''))
    issues.push(`input "image": give the repository without a tag or digest (${JSON.stringify(image)}); use "tags"`);
  const parts = img.split('/');
  const first = parts[0] ?? '';
  const hasHost = parts.length > 1 && isRegistryHost(first);
  const host = hasHost ? first : undefined;
  const path = hasHost ? parts.slice(1) : parts;
  if (host !== undefined && !HOST.test(host))
    issues.push(`input "image": ${JSON.stringify(host)} is not a valid registry host`);
  const badPath = path.length === 0 || path.some((c) => !PATH_COMPONENT.test(c));
  if (badPath && issues.length === 0)
    issues.push(
      `input "image": ${JSON.stringify(image)} is not a valid repository name (lower-case letters, digits and . _ - separated by /)`,
    );
  if (host !== undefined && !DOCKER_HUB.has(reg) && reg !== host)
    issues.push(`inputs "image" and "registry" disagree: the image names registry ${host}, "registry" is ${reg}`);
  if (issues.length) return { ok: false, issues };
  if (host !== undefined) return { ok: true, value: { repository: img, registry: host } };
  if (DOCKER_HUB.has(reg)) return { ok: true, value: { repository: img, registry: 'docker.io' } };
  return { ok: true, value: { repository: `${reg}/${img}`, registry: reg } };
}
