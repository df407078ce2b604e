/**
 * Moves the major tag (`v1`) to a release tag (`v1.4.2`) and pushes it, so that `uses: org/dyce/actions/deploy@v1`
 * gets the release. Run by .github/workflows/release.yml after the GitHub release exists.
 *
 *   tsx scripts/move-major-tag.ts v1.4.2 [--remote origin] [--dry-run]
 *
 * The major tag only moves forward: a pre-release (`v1.5.0-rc.1`) or a patch of an older line (`v1.3.5` after
 * `v1.4.0`) leaves it where it is, and says why. Exit status: 0 moved or rightly left alone, 1 git failed, 2 bad usage.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface Version {
  major: number;
  minor: number;
  patch: number;
  prerelease: string | undefined;
}

/** `v1.4.2`, `v1.5.0-rc.1`; anything else (no `v`, build metadata, `v1.4`) is not a release tag. */
export function parseReleaseTag(tag: string): Version | undefined {
  const m = /^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?$/.exec(tag);
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), prerelease: m[4] };
}

function compare(a: Version, b: Version): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch;
}

export type MajorTagDecision =
  | { move: true; majorTag: string; reason: string }
  | { move: false; majorTag: string | undefined; reason: string };

/** Pure: whether `tag` should become what its major tag points at, given every tag of the repository. */
export function decideMajorTag(tag: string, allTags: readonly string[]): MajorTagDecision {
  const v = parseReleaseTag(tag);
  if (!v) return { move: false, majorTag: undefined, reason: `${tag} is not a release tag (vMAJOR.MINOR.PATCH)` };
  const majorTag = `v${v.major}`;
  if (v.prerelease !== undefined)
    return { move: false, majorTag, reason: `${tag} is a pre-release: ${majorTag} stays where it is` };
  const newer = allTags
    .map((t) => ({ t, v: parseReleaseTag(t) }))
    .filter((x): x is { t: string; v: Version } => x.v?.major === v.major && x.v.prerelease === undefined)
    .filter((x) => compare(x.v, v) > 0)
    .sort((a, b) => compare(b.v, a.v));
  if (newer.length)
    return { move: false, majorTag, reason: `${newer[0]!.t} is newer than ${tag}: ${majorTag} stays where it is` };
  return { move: true, majorTag, reason: `${majorTag} -> ${tag}` };
}

function git(args: string[], cwd: string): { code: number; out: string; err: string } {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8' });
  return { code: r.status ?? 1, out: (r.stdout ?? '').trim(), err: (r.stderr ?? '').trim() };
}

/** Reads the repository, decides, moves and pushes. Returns the exit status. */
export function moveMajorTag(argv: string[], cwd = process.cwd(), log = console.log): number {
  const args = [...argv];
  const dryRun = args.includes('--dry-run');
  const at = args.indexOf('--remote');
  const remote = at >= 0 ? args[at + 1] : 'origin';
  const positional = args.filter((a, i) => !a.startsWith('--') && (at < 0 || i !== at + 1));
  if (positional.length !== 1 || !remote) {
    log('usage: move-major-tag.ts vMAJOR.MINOR.PATCH [--remote NAME] [--dry-run]');
    return 2;
  }
  const tag = positional[0]!;
  if (!parseReleaseTag(tag)) {
    log(`${tag} is not a release tag (vMAJOR.MINOR.PATCH)`);
    return 2;
  }
  const target = git(['rev-parse', '--verify', '--quiet', `refs/tags/${tag}^{commit}`], cwd);
  if (target.code !== 0) {
    log(`no tag ${tag} in this repository (fetch the tags first: actions/checkout with fetch-depth: 0)`);
    return 1;
  }
  const tags = git(['tag', '--list'], cwd);
  if (tags.code !== 0) {
    log(`git tag --list failed: ${tags.err}`);
    return 1;
  }
  const decision = decideMajorTag(tag, tags.out.split('\n').filter(Boolean));
  log(decision.reason);
  if (!decision.move) return 0;
  const major = decision.majorTag;
  const current = git(['rev-parse', '--verify', '--quiet', `refs/tags/${major}^{commit}`], cwd);
  if (current.code === 0 && current.out === target.out)
    log(`${major} already points at ${tag} (${target.out.slice(0, 7)})`);
  else if (!dryRun) {
    const t = git(['tag', '--force', '--annotate', major, '--message', `${major} -> ${tag}`, target.out], cwd);
    if (t.code !== 0) {
      log(`git tag ${major} failed: ${t.err}`);
      return 1;
    }
  }
  if (dryRun) {
    log(`dry run: would push ${major} (${target.out.slice(0, 7)}) to ${remote}`);
    return 0;
  }
  // Force: the major tag exists on the remote and moves; only this one ref is pushed.
  const p = git(['push', '--force', remote, `refs/tags/${major}:refs/tags/${major}`], cwd);
  if (p.code !== 0) {
    log(`git push ${remote} ${major} failed: ${p.err}`);
    return 1;
  }
  log(`pushed ${major} -> ${tag} (${target.out.slice(0, 7)}) to ${remote}`);
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exitCode = moveMajorTag(process.argv.slice(2));
