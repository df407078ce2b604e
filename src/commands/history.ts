import type { Argv } from './docker.js';

/**
 * The deploy history of an app on a host, kept in Dyce's state dir (`<state>/apps/<app>/history`): one line per
 * image, `image<TAB>version<TAB>state`, the most recently deployed last. It drives two things:
 * - retention: after a successful deploy, the images of all but the last `keep-versions` lines are removed;
 * - `dyce rollback`: the line before the last one whose state is `ok` is the version to go back to.
 *
 * A rollback moves the version it leaves to the front of the file, marked `rolled-back`: it is the first to be
 * pruned, and a second rollback goes further back instead of returning to it (like `git revert` of a revert would).
 * The lines are deduplicated by image: redeploying an earlier version moves its line to the end.
 */

export type HistoryState = 'ok' | 'rolled-back';

export interface HistoryEntry {
  image: string;
  version: string;
  state: HistoryState;
}

export function historyPath(appDir: string): string {
  return `${appDir}/history`;
}

/** Pure: the history file's text -> entries (malformed lines are skipped: the file is Dyce's own, a partial line is the only damage expected). */
export function parseHistory(text: string): HistoryEntry[] {
  const out: HistoryEntry[] = [];
  for (const line of text.split('\n')) {
    const [image, version, state] = line.split('\t');
    if (!image || !version || (state !== 'ok' && state !== 'rolled-back')) continue;
    out.push({ image, version, state });
  }
  return out;
}

/**
 * Pure: the version `dyce rollback` goes back to: the last `ok` entry before the current one (the last line),
 * with another image. Undefined when the history holds no earlier version.
 */
export function rollbackTarget(entries: readonly HistoryEntry[]): HistoryEntry | undefined {
  const current = entries.at(-1);
  if (!current) return undefined;
  for (let k = entries.length - 2; k >= 0; k--) {
    const e = entries[k]!;
    if (e.state === 'ok' && e.image !== current.image) return e;
  }
  return undefined;
}

/** Prints the history file (nothing when there is none yet). */
export function readHistory(path: string): Argv {
  return ['sh', '-c', 'cat "$1" 2>/dev/null; exit 0', 'sh', path];
}

export interface RecordOptions {
  path: string;
  image: string;
  version: string;
  /** How many lines (images) to keep; the images of older lines are removed. At least 2. */
  keep: number;
  /** `rollback`: the current last line leaves for the front, marked `rolled-back`. */
  mode: 'deploy' | 'rollback';
}

/**
 * Records a successful deploy of IMAGE and prunes older images, in one round trip (under the deploy lock).
 * Prints one line per image beyond `keep`: `pruned <image>`, `gone <image>` (not on the host any more) or
 * `kept <image> <why>` (docker refused: e.g. a container still uses it; its line stays, to be retried next time).
 * The running image is the last line and the previous one the line before it, so with keep >= 2 neither is ever
 * pruned; Docker itself refuses to remove an image a container uses.
 */
export function recordDeploy(o: RecordOptions): Argv {
  if (!Number.isInteger(o.keep) || o.keep < 2) throw new Error(`keep must be an integer >= 2, got ${o.keep}`);
  for (const [what, v] of [
    ['image', o.image],
    ['version', o.version],
  ] as const)
    if (!v || /[\s]/.test(v)) throw new Error(`${what} must be non-empty without blanks, got ${JSON.stringify(v)}`);
  return [
    'sh',
    '-c',
    [
      'umask 077',
      'f="$1"; t="$f.tmp.$$"',
      'mkdir -p "$(dirname "$f")" && touch "$f" || exit 1',
      'trap \'rm -f "$t" "$t.out" "$t.err"\' EXIT',
      // The image that ran until now: the previous version once this deploy is recorded, never pruned by it.
      'prev=$(tail -n 1 "$f" | cut -f1)',
      // A rollback: the version it leaves goes to the front, marked rolled-back.
      'if [ "$5" = rollback ]; then',
      '  top=$(tail -n 1 "$f")',
      '  ti=$(printf "%s" "$top" | cut -f1)',
      '  if [ -n "$ti" ] && [ "$ti" != "$2" ]; then',
      '    { printf "%s\\t%s\\trolled-back\\n" "$ti" "$(printf "%s" "$top" | cut -f2)"; sed \'$d\' "$f"; } > "$t" && mv -f "$t" "$f" || exit 1',
      '  fi',
      'fi',
      // The deployed image's line moves to the end.
      '{ awk -F "\\t" -v img="$2" \'$1 != img\' "$f"; printf "%s\\t%s\\tok\\n" "$2" "$3"; } > "$t" && mv -f "$t" "$f" || exit 1',
      'drop=$(( $(wc -l < "$f") - $4 ))',
      '[ "$drop" -gt 0 ] || exit 0',
      'head -n "$drop" "$f" | cut -f1 | while IFS= read -r img; do',
      '  if [ "$img" = "$prev" ]; then printf "spared\\t%s\\n" "$img"',
      '  elif ! docker image inspect --format x "$img" >/dev/null 2>&1; then printf "gone\\t%s\\n" "$img"',
      '  elif docker image rm "$img" >/dev/null 2>"$t.err"; then printf "pruned\\t%s\\n" "$img"',
      '  else printf "kept\\t%s\\t%s\\n" "$img" "$(tail -n 1 "$t.err" | tr "\\t" " ")"; fi',
      'done > "$t.out"',
      // Lines beyond `keep` stay only when their image was spared or could not be removed.
      'awk -F "\\t" -v drop="$drop" \'NR == FNR { if ($1 == "kept" || $1 == "spared") k[$2] = 1; next } FNR > drop || ($1 in k)\' "$t.out" "$f" > "$t" && mv -f "$t" "$f" || exit 1',
      'cat "$t.out"',
    ].join('\n'),
    'sh',
    o.path,
    o.image,
    o.version,
    String(o.keep),
    o.mode,
  ];
}

export interface PruneReport {
  pruned: string[];
  gone: string[];
  kept: { image: string; why: string }[];
}

/** Pure: recordDeploy's output -> what happened to each image beyond `keep`. */
export function parsePruneOutput(stdout: string): PruneReport {
  const r: PruneReport = { pruned: [], gone: [], kept: [] };
  for (const line of stdout.split('\n')) {
    const [what, image, why] = line.split('\t');
    if (!image) continue;
    if (what === 'pruned') r.pruned.push(image);
    else if (what === 'gone') r.gone.push(image);
    else if (what === 'kept') r.kept.push({ image, why: why ?? '' });
  }
  return r;
}
