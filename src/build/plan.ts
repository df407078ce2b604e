import { basename, resolve, sep } from 'node:path';
import type { BuildPushInputs } from '../config/actions/build-push.js';
import type { ParsedInputs } from '../config/input-spec.js';
import { ociLabels } from './commands.js';
import { computeTags, resolveImage, type TagPlan } from './tags.js';

export type BuildPushOptions = ParsedInputs<BuildPushInputs>;

export interface BuildPlan {
  repository: string;
  registry: string;
  tags: string[];
  /** `repository:tag` for each tag. */
  refs: string[];
  version: string;
  tagSource: TagPlan['source'];
  context: string;
  dockerfile: string;
  labels: Record<string, string>;
  ref: string;
  sha: string;
}

/**
 * Pure: inputs + the GitHub environment + the clock -> what to build and push. Returns every issue at once, each
 * naming its input, so that nothing touches docker until the whole request is known to be valid.
 */
export function planBuild(
  inputs: BuildPushOptions,
  env: NodeJS.ProcessEnv,
  now: Date,
  cwd: string,
): { ok: true; plan: BuildPlan } | { ok: false; issues: string[] } {
  const issues: string[] = [];
  const image = resolveImage(inputs.image, inputs.registry);
  if (!image.ok) issues.push(...image.issues);
  const ref = inputs.ref?.trim() || env.GITHUB_REF || '';
  const sha = inputs.sha?.trim() || env.GITHUB_SHA || '';
  const tags = computeTags(
    { ref, sha, eventName: env.GITHUB_EVENT_NAME },
    {
      explicit: inputs.tags ?? [],
      semverTags: inputs['semver-tags'],
      latest: inputs.latest,
      repository: image.ok ? image.value.repository : undefined,
    },
  );
  issues.push(...tags.issues);
  if (issues.length || !image.ok) return { ok: false, issues };
  const context = resolve(cwd, inputs.context);
  // Not resolve(context, 'Dockerfile'): ncc's asset relocator rewrites that call into a path inside the bundle.
  const dockerfile = inputs.file?.trim() ? resolve(cwd, inputs.file) : context.concat(sep, 'Dockerfile');
  const source =
    env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY ? `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}` : undefined;
  const labels = {
    ...ociLabels({
      source,
      revision: sha || undefined,
      created: now,
      version: tags.version,
      title: basename(image.value.repository),
    }),
  };
  for (const l of inputs.labels ?? []) labels[l.key] = l.value;
  return {
    ok: true,
    plan: {
      repository: image.value.repository,
      registry: image.value.registry,
      tags: tags.tags,
      refs: tags.refs ?? tags.tags.map((t) => `${image.value.repository}:${t}`),
      version: tags.version,
      tagSource: tags.source,
      context,
      dockerfile,
      labels,
      ref,
      sha,
    },
  };
}

export interface SummaryFacts {
  repository: string;
  refs: string[];
  digest: string;
  sizeBytes: number | undefined;
  buildMs: number;
  pushMs: number;
  builder: string;
  pushed: boolean;
  secretNames: string[];
  secretBuildArgNames: string[];
  envFile: { path: string; names: string[] } | undefined;
}

/** The job summary. Secret NAMES only: the values never reach this function. */
export function renderSummary(f: SummaryFacts): string {
  const rows: [string, string][] = [
    ['image', `\`${f.repository}\``],
    ['tags', f.refs.map((r) => `\`${r.slice(r.lastIndexOf(':') + 1)}\``).join(', ')],
    ['digest', f.digest ? `\`${f.digest}\`` : f.pushed ? '' : '(not pushed)'],
    ['size', f.sizeBytes === undefined ? '' : formatBytes(f.sizeBytes)],
    ['build time', `${(f.buildMs / 1000).toFixed(1)}s`],
  ];
  if (f.pushed) rows.push(['push time', `${(f.pushMs / 1000).toFixed(1)}s`]);
  rows.push(['builder', f.builder]);
  if (f.secretNames.length) rows.push(['build secrets', f.secretNames.map((n) => `\`${n}\``).join(', ')]);
  if (f.secretBuildArgNames.length)
    rows.push([
      'secret build args',
      `${f.secretBuildArgNames.map((n) => `\`${n}\``).join(', ')} (readable from the image history)`,
    ]);
  if (f.envFile)
    rows.push([
      'env file',
      `\`${f.envFile.path}\`: ${f.envFile.names.map((n) => `\`${n}\``).join(', ')} (readable by anyone who can pull the image)`,
    ]);
  const title = f.pushed ? '### Image built and pushed' : '### Image built (not pushed)';
  return [title, '', '| | |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1024 && u < units.length - 1);
  return `${v.toFixed(1)} ${units[u]}`;
}
