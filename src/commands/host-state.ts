import type { Argv } from './docker.js';
import { shellQuote } from './quote.js';

/**
 * Commands on Dyce's state dir on a host (locks, secret files, the HMAC key, the audit log), as data.
 * Each is a constant `sh -c` script; paths and ids travel as positional arguments ("$1", "$2"), so
 * nothing a user wrote is ever parsed by the remote shell. Everything is created under `umask 077`.
 */
function sh(script: string, ...args: string[]): Argv {
  return ['sh', '-c', script, 'sh', ...args];
}

/**
 * Writes stdin to PATH with mode 0600, atomically (a temp file renamed over it), creating the parent dir 0700.
 * The content never appears in argv.
 */
export function writeFileFromStdin(path: string): Argv {
  return sh('umask 077 && mkdir -p "$(dirname "$1")" && cat > "$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"', path);
}

/** Exit code of lockTake when another holder has the lock: stdout then holds its details. */
export const LOCK_HELD = 3;

/**
 * Takes a lock atomically with `mkdir` and writes the holder's details (JSON, from stdin) inside it.
 * When the lock exists, exits LOCK_HELD and prints: the holder JSON line, then the holder file's age
 * in seconds by the host's own clock (so clock skew between runner and host cannot make a lock look stale).
 * With `observe`, the same round trip goes on, once the lock is ours, to observe the host (see observeHost).
 * With `noop` as well, the script itself decides whether nothing is to be done: every expected replica
 * (`name=spec-hash`) exists, runs and has that hash, no other container of the app exists, and the log plugin
 * (if named) is enabled, and behind nginx the upstream and site files are intact (see NoopCheck.nginx). Then it appends the audit line (stdin, second line), releases the lock and prints
 * `verdict noop`: a deploy that changes nothing costs one round trip. Otherwise the lock stays taken.
 */
export function lockTake(lockDir: string, observe?: ObserveOptions, noop?: NoopCheck): Argv {
  const lines = [
    'umask 077',
    'mkdir -p "$(dirname "$1")" || exit 1',
    'if ! mkdir "$1" 2>/dev/null; then',
    '  cat >/dev/null',
    '  [ -d "$1" ] || { echo "cannot create the lock $1" >&2; exit 1; }',
    '  f="$1/holder.json"; [ -e "$f" ] || f="$1"',
    '  h=$(head -n 1 "$1/holder.json" 2>/dev/null)',
    '  printf "%s\\n%s\\n" "$h" "$(( $(date +%s) - $(stat -c %Y "$f" 2>/dev/null || date +%s) ))"',
    `  exit ${LOCK_HELD}`,
    'fi',
    'IFS= read -r hl || true',
    'IFS= read -r al || true',
    'printf "%s\\n" "$hl" > "$1/holder.json" || exit 1',
  ];
  if (!observe) return sh(lines.join('\n'), lockDir);
  const observeLines = noop
    ? [...OBSERVE_LINES.slice(0, -2), ...NOOP_LINES, ...OBSERVE_LINES.slice(-2)]
    : OBSERVE_LINES;
  return sh(
    [...lines, 'l="$1"', 'shift', ...observeLines].join('\n'),
    lockDir,
    ...observeArgs(observe),
    ...(noop
      ? [
          noop.expect.join(' '),
          noop.auditLog,
          noop.nginx?.upstream ?? '',
          noop.nginx?.site?.path ?? '',
          noop.nginx?.site?.sha256 ?? '',
        ]
      : []),
  );
}

/** What an unchanged deploy looks like on the host (see lockTake). */
export interface NoopCheck {
  /** `name=spec-hash` of every desired replica. */
  expect: string[];
  auditLog: string;
  /**
   * Behind nginx, the files Dyce owns must be intact too: the upstream file must exist and list exactly the ports
   * (`dyce.port`) of the expected replicas, and the site file (when Dyce writes one) must hash to `sha256`.
   */
  nginx?: { upstream: string; site?: { path: string; sha256: string } };
}

// After `shift`: $2 app, $3 plugin alias, $5 expected replicas, $6 audit log, $7 the nginx upstream file ('' without
// nginx), $8 the site file ('' without one), $9 its expected sha256; $c the container lines, $p the plugin state.
const NOOP_LINES = [
  'if [ -n "$5" ] && { [ -z "$3" ] || [ "$p" = true ]; } && { [ -z "$8" ] || [ "$(sha256sum < "$8" 2>/dev/null | cut -d " " -f 1)" = "$9" ]; }; then',
  // The ports the upstream lists (`none` when the file is missing: matches no replica).
  '  u=; if [ -n "$7" ]; then u=none; [ -e "$7" ] && u=$(sed -n "s/^[[:space:]]*server[[:space:]][[:space:]]*[^[:space:]]*:\\([0-9][0-9]*\\).*/\\1/p" "$7" | tr "\\n" " "); fi',
  String.raw`  v=$(printf "%s
" "$c" | awk -F "	" -v app="$2" -v want="$5" -v chk="$7" -v up="$u" 'BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) { j = index(w[i], "="); e[substr(w[i], 1, j - 1)] = substr(w[i], j + 1) }; ok = 1 } $0 == "" { next } { if ($5 == app) { if (!($2 in e) || e[$2] != $8 || $3 != "running") ok = 0; else { s[$2] = 1; have[$9] = 1 } } else if ($2 in e) ok = 0 } END { for (k in e) if (!(k in s)) ok = 0; if (chk != "") { m = split(up, l, " "); if (m == 0) ok = 0; for (i = 1; i <= m; i++) listed[l[i]] = 1; for (k in have) if (!(k in listed)) ok = 0; for (k in listed) if (!(k in have)) ok = 0 }; print (ok ? "noop" : "work") }')`,
  '  if [ "$v" = noop ] && printf "%s\\n" "$al" >> "$6"; then rm -rf "$l"; echo "verdict noop"; fi',
  'fi',
];

/** Touches the holder file if the lock is still ours (exit 1 otherwise: it was taken over). */
export function lockRefresh(lockDir: string, holderId: string): Argv {
  return sh('grep -qF "\\"id\\":\\"$2\\"" "$1/holder.json" 2>/dev/null && touch "$1/holder.json"', lockDir, holderId);
}

/** Removes the lock only if it is ours; exits 0 either way (exit 0 and prints `released` when it removed it). */
export function lockRelease(lockDir: string, holderId: string): Argv {
  return sh(
    'if grep -qF "\\"id\\":\\"$2\\"" "$1/holder.json" 2>/dev/null; then rm -rf "$1" && echo released; fi; exit 0',
    lockDir,
    holderId,
  );
}

/**
 * Moves a stale lock aside, but only if it still belongs to the stale holder we saw (id, or no holder file
 * at all when STALE_ID is empty), so two deploys taking over at once cannot remove each other's fresh lock.
 */
export function lockTakeOver(lockDir: string, staleHolderId: string): Argv {
  return sh(
    [
      'if [ -n "$2" ]; then grep -qF "\\"id\\":\\"$2\\"" "$1/holder.json" 2>/dev/null || exit 1',
      'else [ ! -e "$1/holder.json" ] || exit 1; fi',
      'mv "$1" "$1.stale.$$" 2>/dev/null || exit 1',
      'rm -rf "$1.stale.$$"',
    ].join('\n'),
    lockDir,
    staleHolderId,
  );
}

export interface ObserveOptions {
  stateDir: string;
  app: string;
  pluginAlias?: string;
  /** A dry run: create nothing (an empty key is printed when there is none yet). */
  readOnly?: boolean;
}

/** Exit code of observeHost when the docker daemon cannot be reached (stderr says why). */
export const DOCKER_UNREACHABLE = 11;

const OBSERVE_LINES = [
  'k="$1/hmac.key"',
  'if [ "$4" = ro ]; then printf "key %s\\n" "$(cat "$k" 2>/dev/null)"; else',
  '  mkdir -p "$1" || exit 10',
  '  if [ ! -s "$k" ]; then od -An -N32 -tx1 /dev/urandom | tr -d " \\n" > "$k.$$" && mv -n "$k.$$" "$k"; rm -f "$k.$$"; fi',
  '  printf "key %s\\n" "$(cat "$k")"',
  'fi',
  'if [ -n "$3" ]; then p=$(docker plugin inspect --format "{{.Enabled}}" "$3" 2>/dev/null) || p=missing; printf "plugin %s\\n" "$p"; fi',
  // Every container of app X is named X<something> by Dyce, so one name-filtered `docker ps` sees them all;
  // the labels the planner needs come out of the same call, one tab-separated line per container.
  `c=$(docker ps --all --no-trunc --filter "name=$2" --format '${[
    '{{.ID}}',
    '{{.Names}}',
    '{{.State}}',
    '{{.Image}}',
    '{{.Label "dyce.app"}}',
    '{{.Label "dyce.replica"}}',
    '{{.Label "dyce.version"}}',
    '{{.Label "dyce.spec-hash"}}',
    '{{.Label "dyce.port"}}',
  ].join('\\t')}') || exit ${DOCKER_UNREACHABLE}`,
  'echo containers',
  '[ -z "$c" ] || printf "%s\\n" "$c"',
];

function observeArgs(o: ObserveOptions): string[] {
  return [o.stateDir, o.app, o.pluginAlias ?? '', o.readOnly ? 'ro' : 'rw'];
}

/**
 * One round trip that tells the engine everything it needs before planning:
 * - `key <hex>`: the per-host HMAC key (32 random bytes, created 0600 on first use; `mv -n` keeps the first writer's);
 * - `plugin <true|false|missing>`: whether the log plugin alias is installed and enabled (when one is named);
 * - `containers`, then one line per container named like the app: id, name, state, image and Dyce's labels.
 */
export function observeHost(o: ObserveOptions): Argv {
  return sh(['umask 077', ...OBSERVE_LINES].join('\n'), ...observeArgs(o));
}

/**
 * The end of a deploy in one round trip: prune secret dirs of earlier specs (all but KEEP under PRUNE_DIR, when
 * given), append the audit line (stdin) and release the lock if it is still ours (prints `released`).
 */
export function finishDeploy(o: {
  auditLog: string;
  lockDir: string;
  holderId: string;
  prune?: { dir: string; keep: string };
}): Argv {
  return sh(
    [
      'umask 077',
      'if [ -n "$4" ] && cd "$4" 2>/dev/null; then for f in * .[!.]*; do [ -e "$f" ] && [ "$f" != "$5" ] && rm -rf -- "$f"; done; cd /; fi',
      'rc=0',
      'mkdir -p "$(dirname "$1")" && cat >> "$1" || rc=1',
      'if grep -qF "\\"id\\":\\"$3\\"" "$2/holder.json" 2>/dev/null; then rm -rf "$2" && echo released; fi',
      'exit $rc',
    ].join('\n'),
    o.auditLog,
    o.lockDir,
    o.holderId,
    o.prune?.dir ?? '',
    o.prune?.keep ?? '',
  );
}

/** The line between the two commands' outputs in bothInOneRoundTrip: `dyce-first-exit <status>`. */
export const FIRST_EXIT = 'dyce-first-exit';

/**
 * Runs FIRST (its stdin closed), then SECOND (given the round trip's stdin), in one round trip: FIRST's stdout,
 * a line `dyce-first-exit <its status>`, then SECOND's stdout; the exit status is SECOND's. Each argv reaches the
 * remote shell quoted by shellQuote, exactly as if it had been sent on its own (see splitFirstOutput).
 */
export function bothInOneRoundTrip(first: Argv, second: Argv): Argv {
  return sh(
    `eval "$1" </dev/null; printf "\\n${FIRST_EXIT} %s\\n" "$?"; eval "$2"`,
    shellQuote(first),
    shellQuote(second),
  );
}

/** Pure: bothInOneRoundTrip's stdout and status -> each command's result (FIRST's status -1 when it never ended). */
export function splitFirstOutput(r: { code: number; stdout: string; stderr: string }): {
  first: { code: number; stdout: string; stderr: string };
  second: { code: number; stdout: string; stderr: string };
} {
  const m = new RegExp(`\\n${FIRST_EXIT} (\\d+)\\n`).exec(r.stdout);
  if (!m) return { first: { code: -1, stdout: r.stdout, stderr: r.stderr }, second: { ...r, stdout: '' } };
  return {
    first: { code: Number(m[1]), stdout: r.stdout.slice(0, m.index), stderr: r.stderr },
    second: { code: r.code, stdout: r.stdout.slice(m.index + m[0].length), stderr: r.stderr },
  };
}

/** Exit codes of loginAndPull. */
export const LOGIN_FAILED = 20;
export const PULL_FAILED = 21;

/** Registry login (password on stdin) and the pull, in one round trip. */
export function loginAndPull(o: {
  config: string;
  registry: string;
  username: string;
  image: string;
  pull: 'missing' | 'always';
}): Argv {
  return sh(
    [
      `docker --config "$1" login "$2" --username "$3" --password-stdin >/dev/null || exit ${LOGIN_FAILED}`,
      'if [ "$5" = always ] || ! docker image inspect --format x "$4" >/dev/null 2>&1; then',
      `  docker --config "$1" pull --quiet "$4" >/dev/null || exit ${PULL_FAILED}`,
      'fi',
    ].join('\n'),
    o.config,
    o.registry,
    o.username,
    o.image,
    o.pull,
  );
}

/**
 * `pull: always` in one round trip, before planning: the registry login when REGISTRY is given (password on stdin),
 * the pull, then `image <id>` (what the tag names now) and `container <id> <image id>` for each of CONTAINERS
 * (what each replica really runs: `docker ps` only shows the name it was started with, and a rebuilt tag keeps the name).
 * A container gone meanwhile is left out. Exits LOGIN_FAILED or PULL_FAILED (stderr says why).
 */
export function pullAndIdentify(o: {
  config: string;
  image: string;
  login?: { registry: string; username: string };
  containers: readonly string[];
}): Argv {
  return sh(
    [
      'c="$1"; img="$2"; reg="$3"; user="$4"; shift 4',
      `if [ -n "$reg" ]; then docker --config "$c" login "$reg" --username "$user" --password-stdin >/dev/null || exit ${LOGIN_FAILED}; fi`,
      `docker --config "$c" pull --quiet "$img" >/dev/null || exit ${PULL_FAILED}`,
      `id=$(docker image inspect --format "{{.Id}}" "$img") || exit ${PULL_FAILED}`,
      'printf "image %s\\n" "$id"',
      '[ $# -eq 0 ] || docker inspect --type container --format "container {{.Id}} {{.Image}}" "$@" 2>/dev/null',
      'exit 0',
    ].join('\n'),
    o.config,
    o.image,
    o.login?.registry ?? '',
    o.login?.username ?? '',
    ...o.containers,
  );
}

/** Who we are on the host and whether docker answers without sudo: `uid`, `home`, then `docker ok|denied|missing`. */
export function probeAccess(): Argv {
  return sh(
    [
      'id -u',
      'printf "%s\\n" "$HOME"',
      'if ! command -v docker >/dev/null 2>&1; then echo "docker missing"',
      'elif docker version --format "{{.Server.Version}}" >/dev/null 2>&1; then echo "docker ok"',
      'else echo "docker denied"; fi',
      'if sudo -n true 2>/dev/null; then echo "sudo ok"; else echo "sudo denied"; fi',
    ].join('\n'),
  );
}
