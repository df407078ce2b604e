import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { splitShellWords } from '../../config/shell-words.js';
import { ansibleBool, toText } from '../../template/templar.js';
import { type ModuleContext, type ModuleDef, ModuleFailure, type ModuleResult, runOrFail } from './types.js';

/**
 * ansible.builtin file, stat, copy (content, or src with remote_src) and lineinfile. Every path and value reaches the
 * host as an argv word or on stdin, never as shell text; file contents travel on stdin (so a secret in `content` never
 * appears in argv). Writes are atomic: a temporary file in the destination's directory, its mode/owner set, then
 * renamed over the destination.
 */

const boolish = z.unknown().transform((v) => ansibleBool(v));
const text = z.unknown().transform((v) => toText(v));

/** Ansible's mode: an octal string ('0644', '644') or a number (YAML's 0644 is already 420). Symbolic modes: refused. */
const modeParam = z
  .unknown()
  .transform((v, c) => {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'number') return v.toString(8).padStart(4, '0');
    const s = String(v).trim();
    if (/^[0-7]{3,4}$/.test(s)) return s.padStart(4, '0');
    c.addIssue({
      code: 'custom',
      message: `mode ${JSON.stringify(s)} is not an octal mode like "0644" (symbolic modes are not supported)`,
    });
    return z.NEVER;
  })
  .optional();

const ownership = { owner: text.optional(), group: text.optional(), mode: modeParam };

/** One `stat` of a path on the host: undefined when it does not exist. */
export interface PathStat {
  type: 'file' | 'directory' | 'link' | 'other';
  mode: string;
  uid: number;
  gid: number;
  owner: string;
  group: string;
  size: number;
  mtime: number;
  linkTarget?: string;
}

const STAT_SCRIPT = `p=$1; follow=$2
if [ ! -e "$p" ] && [ ! -L "$p" ]; then echo absent; exit 0; fi
if [ "$follow" = 1 ]; then s=$(stat -L -c '%F|%a|%u|%g|%U|%G|%s|%Y' -- "$p"); else s=$(stat -c '%F|%a|%u|%g|%U|%G|%s|%Y' -- "$p"); fi
echo "$s"
if [ -L "$p" ]; then readlink -- "$p"; fi`;

function parseStat(out: string): PathStat | undefined {
  const [first, target] = out.trim().split('\n');
  if (!first || first === 'absent') return undefined;
  const [kind, mode, uid, gid, owner, group, size, mtime] = first.split('|');
  const type =
    kind === 'regular file' || kind === 'regular empty file'
      ? 'file'
      : kind === 'directory'
        ? 'directory'
        : kind === 'symbolic link'
          ? 'link'
          : 'other';
  return {
    type,
    mode: (mode ?? '').padStart(4, '0'),
    uid: Number(uid),
    gid: Number(gid),
    owner: owner ?? '',
    group: group ?? '',
    size: Number(size),
    mtime: Number(mtime),
    ...(target !== undefined ? { linkTarget: target } : {}),
  };
}

export async function statPath(ctx: ModuleContext, path: string, follow = false): Promise<PathStat | undefined> {
  const r = await runOrFail(ctx, ['sh', '-c', STAT_SCRIPT, 'sh', path, follow ? '1' : '0'], `stat ${path}`);
  return parseStat(r.stdout);
}

/** The file's content from the host (undefined when absent). Binary-safe enough for text files. */
async function readRemote(ctx: ModuleContext, path: string): Promise<string | undefined> {
  const r = await ctx.run(['sh', '-c', 'if [ -f "$1" ]; then cat -- "$1"; else exit 3; fi', 'sh', path], {
    label: `read ${path}`,
  });
  if (r.code === 3) return undefined;
  if (r.code !== 0) throw new ModuleFailure(`reading ${path} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Backup names as Ansible makes them: path.PID.YYYY-MM-DD@HH:MM:SS~ (here with this run's PID). */
function backupName(path: string): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  return `${path}.${process.pid}.${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}@${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}~`;
}

/**
 * Writes stdin to DEST atomically. A new file gets 0666 & ~umask, an existing one keeps its mode and owner; then the
 * requested mode/owner/group. Prints the backup path when one was made.
 */
const WRITE_SCRIPT = `set -e
d=$1; mode=$2; owner=$3; group=$4; backup=$5; tmp=$6; shift 6
trap 'rm -f -- "$tmp"' EXIT
(set -C; cat > "$tmp")
if [ -e "$d" ]; then
  chmod --reference="$d" -- "$tmp"; chown --reference="$d" -- "$tmp"
  if [ -n "$backup" ]; then cp -p -- "$d" "$backup"; echo "$backup"; fi
else
  chmod "$(printf '%o' $((0666 & ~$(umask))))" -- "$tmp"
fi
if [ -n "$mode" ]; then chmod "$mode" -- "$tmp"; fi
if [ -n "$owner" ]; then chown -- "$owner" "$tmp"; fi
if [ -n "$group" ]; then chgrp -- "$group" "$tmp"; fi
if [ $# -gt 0 ]; then
  if ! out=$("$@" 2>&1); then echo "failed to validate: $out" >&2; exit 9; fi
fi
mv -f -- "$tmp" "$d"
trap - EXIT`;

async function writeRemote(
  ctx: ModuleContext,
  dest: string,
  content: string,
  o: { mode?: string; owner?: string; group?: string; backup?: boolean; validate?: string },
): Promise<string | undefined> {
  // The temporary file's name is known here, so that `validate` (argv words, %s = that file) needs no shell text.
  const tmp = `${dest.replace(/\/[^/]*$/, '') || ''}/.dyce-tmp-${randomBytes(6).toString('hex')}`;
  let validate: string[] = [];
  if (o.validate !== undefined) {
    if (!o.validate.includes('%s')) throw new ModuleFailure(`validate must contain %s: ${o.validate}`);
    const split = splitShellWords(o.validate);
    if ('error' in split) throw new ModuleFailure(`validate: ${split.error}`);
    validate = split.words.map((w) => w.replaceAll('%s', tmp));
  }
  const r = await runOrFail(
    ctx,
    [
      'sh',
      '-c',
      WRITE_SCRIPT,
      'sh',
      dest,
      o.mode ?? '',
      o.owner ?? '',
      o.group ?? '',
      o.backup ? backupName(dest) : '',
      tmp,
      ...validate,
    ],
    `write ${dest}`,
    { stdin: content },
  );
  return r.stdout.trim() || undefined;
}

type Attrs = { mode?: string; owner?: string; group?: string };

function attrsOf(args: Record<string, unknown>): Attrs {
  return {
    mode: args.mode as string | undefined,
    owner: args.owner as string | undefined,
    group: args.group as string | undefined,
  };
}

/** Whether owner/group (names or ids) and mode differ from a stat. */
function attrsDiffer(st: PathStat, o: { mode?: string; owner?: string; group?: string }): boolean {
  if (o.mode !== undefined && o.mode !== st.mode) return true;
  if (o.owner !== undefined && o.owner !== st.owner && o.owner !== String(st.uid)) return true;
  if (o.group !== undefined && o.group !== st.group && o.group !== String(st.gid)) return true;
  return false;
}

async function applyAttrs(
  ctx: ModuleContext,
  path: string,
  o: { mode?: string; owner?: string; group?: string },
  follow = true,
): Promise<void> {
  const h = follow ? [] : ['-h'];
  if (o.owner !== undefined) await runOrFail(ctx, ['chown', ...h, '--', o.owner, path], `chown ${path}`);
  if (o.group !== undefined) await runOrFail(ctx, ['chgrp', ...h, '--', o.group, path], `chgrp ${path}`);
  if (o.mode !== undefined) await runOrFail(ctx, ['chmod', '--', o.mode, path], `chmod ${path}`);
}

function fileFacts(path: string, st: PathStat | undefined, key = 'path'): ModuleResult {
  if (!st) return { [key]: path, state: 'absent' };
  const state = st.type === 'link' ? 'link' : st.type === 'directory' ? 'directory' : 'file';
  return {
    [key]: path,
    state,
    mode: st.mode,
    owner: st.owner,
    group: st.group,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
  };
}

function sha1(s: string): string {
  return createHash('sha1').update(s, 'utf8').digest('hex');
}

// ---------------------------------------------------------------------------------------------------------------- stat

export const statModule: ModuleDef = {
  name: 'stat',
  collection: 'ansible.builtin',
  params: ['path', 'dest', 'name', 'follow', 'get_checksum', 'checksum_algorithm', 'checksum', 'checksum_algo'],
  aliases: { dest: 'path', name: 'path', checksum: 'checksum_algorithm', checksum_algo: 'checksum_algorithm' },
  schema: z.object({
    path: text.pipe(z.string().min(1, 'is required')),
    follow: boolish.default(false),
    get_checksum: boolish.default(true),
    checksum_algorithm: z.enum(['sha1', 'sha256', 'md5']).default('sha1'),
  }),
  async run(args, ctx) {
    const path = args.path as string;
    const st = await statPath(ctx, path, args.follow as boolean);
    if (!st) return { changed: false, stat: { exists: false } };
    const stat: Record<string, unknown> = {
      exists: true,
      path,
      mode: st.mode,
      isdir: st.type === 'directory',
      isreg: st.type === 'file',
      islnk: st.type === 'link',
      uid: st.uid,
      gid: st.gid,
      pw_name: st.owner,
      gr_name: st.group,
      size: st.size,
      mtime: st.mtime,
    };
    if (st.linkTarget !== undefined) stat.lnk_source = st.linkTarget;
    if (st.type === 'file' && args.get_checksum) {
      const tool = `${args.checksum_algorithm as string}sum`;
      const r = await runOrFail(ctx, [tool, '--', path], `${tool} ${path}`);
      stat.checksum = r.stdout.trim().split(/\s+/)[0];
    }
    return { changed: false, stat };
  },
};

// ---------------------------------------------------------------------------------------------------------------- file

export const fileModule: ModuleDef = {
  name: 'file',
  collection: 'ansible.builtin',
  params: ['path', 'dest', 'name', 'state', 'mode', 'owner', 'group', 'src', 'recurse', 'force', 'follow'],
  aliases: { dest: 'path', name: 'path' },
  schema: z.object({
    path: text.pipe(z.string().min(1, 'is required')),
    state: z.enum(['file', 'directory', 'absent', 'touch', 'link', 'hard']).optional(),
    src: text.optional(),
    recurse: boolish.default(false),
    force: boolish.default(false),
    follow: boolish.default(true),
    ...ownership,
  }),
  async run(args, ctx) {
    const path = args.path as string;
    const attrs = attrsOf(args);
    const before = await statPath(ctx, path);
    const state =
      (args.state as string | undefined) ??
      (before ? (before.type === 'directory' ? 'directory' : before.type === 'link' ? 'link' : 'file') : 'file');
    const diffOf = (after: ModuleResult) => ({ before: fileFacts(path, before), after });
    if (state === 'absent') {
      if (!before) return { changed: false, path, state: 'absent' };
      if (!ctx.check) await runOrFail(ctx, ['rm', '-rf', '--', path], `rm ${path}`);
      return { changed: true, path, state: 'absent', diff: diffOf({ path, state: 'absent' }) };
    }
    if (state === 'file') {
      if (!before) throw new ModuleFailure(`file (${path}) is absent, cannot continue`, { path, state: 'absent' });
      const changed = attrsDiffer(before, attrs);
      if (changed && !ctx.check) await applyAttrs(ctx, path, attrs);
      const after = changed && !ctx.check ? await statPath(ctx, path) : before;
      return { changed, ...fileFacts(path, after), diff: diffOf(fileFacts(path, after)) };
    }
    if (state === 'directory') {
      if (before && before.type !== 'directory' && !(before.type === 'link' && args.follow))
        throw new ModuleFailure(`${path} already exists as a ${before.type}`, { path });
      let changed = !before;
      if (!ctx.check) {
        if (!before) {
          // Like Ansible, every directory this creates (not only the last) gets the mode and owner.
          const made = await runOrFail(
            ctx,
            [
              'sh',
              '-c',
              'd=$1; while [ ! -e "$d" ]; do echo "$d"; d=$(dirname -- "$d"); done; mkdir -p -- "$1"',
              'sh',
              path,
            ],
            `mkdir ${path}`,
          );
          const dirs = made.stdout.split('\n').filter(Boolean);
          if (attrs.owner !== undefined) await runOrFail(ctx, ['chown', '--', attrs.owner, ...dirs], 'chown');
          if (attrs.group !== undefined) await runOrFail(ctx, ['chgrp', '--', attrs.group, ...dirs], 'chgrp');
          if (attrs.mode !== undefined) await runOrFail(ctx, ['chmod', '--', attrs.mode, ...dirs], 'chmod');
        }
        const now = before ?? (await statPath(ctx, path));
        if (now && attrsDiffer(now, attrs)) {
          changed = true;
          if (args.recurse) {
            if (attrs.owner !== undefined)
              await runOrFail(ctx, ['chown', '-R', '--', attrs.owner, path], `chown -R ${path}`);
            if (attrs.group !== undefined)
              await runOrFail(ctx, ['chgrp', '-R', '--', attrs.group, path], `chgrp -R ${path}`);
            if (attrs.mode !== undefined)
              await runOrFail(ctx, ['chmod', '-R', '--', attrs.mode, path], `chmod -R ${path}`);
          } else await applyAttrs(ctx, path, attrs);
        }
      } else if (before && attrsDiffer(before, attrs)) changed = true;
      const after = ctx.check ? before : await statPath(ctx, path);
      return { changed, ...fileFacts(path, after), state: 'directory', diff: diffOf(fileFacts(path, after)) };
    }
    if (state === 'touch') {
      // Ansible reports a touch as a change every time (the times move).
      if (!ctx.check) {
        await runOrFail(ctx, ['touch', '--', path], `touch ${path}`);
        await applyAttrs(ctx, path, attrs);
      }
      const after = ctx.check ? before : await statPath(ctx, path);
      return { changed: true, ...fileFacts(path, after), state: 'file' };
    }
    // link / hard
    const src = args.src as string | undefined;
    if (!src) throw new ModuleFailure(`src is required for state=${state}`);
    if (state === 'link') {
      const same = before?.type === 'link' && before.linkTarget === src;
      if (before && before.type !== 'link' && !args.force)
        throw new ModuleFailure(`refusing to convert from ${before.type} to symlink for ${path}`, { path });
      let changed = !same;
      if (!same && !ctx.check) await runOrFail(ctx, ['ln', '-sfn', '--', src, path], `ln -s ${path}`);
      const now = ctx.check ? before : await statPath(ctx, path);
      if (
        now &&
        (attrs.owner !== undefined || attrs.group !== undefined) &&
        attrsDiffer({ ...now, mode: attrs.mode ?? now.mode }, { owner: attrs.owner, group: attrs.group })
      ) {
        changed = true;
        if (!ctx.check) await applyAttrs(ctx, path, { owner: attrs.owner, group: attrs.group }, false);
      }
      return { changed, path, src, state: 'link' };
    }
    const r = await ctx.run(['sh', '-c', '[ "$1" -ef "$2" ]', 'sh', src, path], { label: 'same inode' });
    if (r.code === 0) return { changed: false, path, src, state: 'hard' };
    if (!ctx.check) await runOrFail(ctx, ['ln', '-f', '--', src, path], `ln ${path}`);
    return { changed: true, path, src, state: 'hard' };
  },
};

// ---------------------------------------------------------------------------------------------------------------- copy

export const copyModule: ModuleDef = {
  name: 'copy',
  collection: 'ansible.builtin',
  params: ['dest', 'content', 'src', 'remote_src', 'mode', 'owner', 'group', 'backup', 'force', 'validate'],
  schema: z.object({
    dest: text.pipe(z.string().min(1, 'is required')),
    content: z.unknown().optional(),
    src: text.optional(),
    remote_src: boolish.default(false),
    backup: boolish.default(false),
    force: boolish.default(true),
    validate: text.optional(),
    ...ownership,
  }),
  async run(args, ctx) {
    let dest = args.dest as string;
    const attrs = attrsOf(args);
    let content: string;
    if (args.content !== undefined) {
      // Ansible writes a dict/list content as JSON.
      const c = args.content;
      content = typeof c === 'string' ? c : typeof c === 'object' && c !== null ? JSON.stringify(c) : toText(c);
      if (dest.endsWith('/')) throw new ModuleFailure('can not use content with a dir as dest');
    } else if (args.src !== undefined && args.remote_src) {
      const src = args.src as string;
      const got = await readRemote(ctx, src);
      if (got === undefined) throw new ModuleFailure(`Source ${src} not found`);
      content = got;
      const d = await statPath(ctx, dest, true);
      if (dest.endsWith('/') || d?.type === 'directory') dest = `${dest.replace(/\/+$/, '')}/${src.split('/').pop()}`;
    } else if (args.src !== undefined) {
      throw new ModuleFailure(
        "copy: src from the controller is not supported yet; use content: \"{{ lookup('file', '...') }}\", or remote_src: true",
      );
    } else throw new ModuleFailure('one of the following is required: src, content');
    const before = await statPath(ctx, dest, true);
    if (before?.type === 'directory') throw new ModuleFailure(`can not use content with a dir as dest: ${dest}`);
    const checksum = sha1(content);
    const current = before ? await readRemote(ctx, dest) : undefined;
    const contentChanged = current === undefined ? true : current !== content && !!args.force;
    let changed = contentChanged || (before ? attrsDiffer(before, attrs) : false);
    let backupFile: string | undefined;
    if (changed && !ctx.check) {
      if (contentChanged)
        backupFile = await writeRemote(ctx, dest, content, {
          ...attrs,
          backup: !!args.backup && !!before,
          ...(args.validate !== undefined ? { validate: args.validate as string } : {}),
        });
      else await applyAttrs(ctx, dest, attrs);
    }
    const after = ctx.check ? before : await statPath(ctx, dest, true);
    if (!after && !ctx.check) changed = true;
    return {
      changed,
      dest,
      checksum,
      ...(after
        ? { mode: after.mode, owner: after.owner, group: after.group, uid: after.uid, gid: after.gid, size: after.size }
        : {}),
      state: 'file',
      ...(backupFile ? { backup_file: backupFile } : {}),
      ...(contentChanged
        ? {
            diff: { before: current ?? '', after: content, before_header: dest, after_header: 'dynamically generated' },
          }
        : {}),
    };
  },
};

// ---------------------------------------------------------------------------------------------------------- lineinfile

/**
 * Python-style regexes as JS ones: the common subset; (?P<name>...) named groups translated. Python's `$` also matches
 * before a final newline, so lines are matched without theirs.
 */
function pyRegex(src: string): { exec(line: string): RegExpExecArray | null; test(line: string): boolean } {
  const re = new RegExp(src.replace(/\(\?P</g, '(?<').replace(/\(\?P=(\w+)\)/g, '\\k<$1>'));
  const body = (l: string) => l.replace(/\n$/, '');
  return { exec: (l) => re.exec(body(l)), test: (l) => re.test(body(l)) };
}

/** Python's match.expand(): \1, \g<1>, \g<name>. */
function expand(template: string, m: RegExpExecArray): string {
  return template.replace(/\\g<(\w+)>|\\(\d+)/g, (_, name: string | undefined, num: string | undefined) => {
    if (num !== undefined) return m[Number(num)] ?? '';
    if (name !== undefined) return (/^\d+$/.test(name) ? m[Number(name)] : m.groups?.[name]) ?? '';
    return '';
  });
}

/** Lines with their endings kept, as Python's readlines(). */
function splitLines(s: string): string[] {
  return s.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

const strip = (l: string) => l.replace(/[\r\n]+$/, '');

interface LineArgs {
  line?: string;
  regexp?: string;
  search_string?: string;
  insertafter?: string;
  insertbefore?: string;
  backrefs: boolean;
  firstmatch: boolean;
}

/** Ansible's lineinfile `present`, on lines: the new lines and the message. */
export function lineinfilePresent(lines: string[], a: LineArgs): { lines: string[]; msg: string } {
  const out = [...lines];
  const line = a.line ?? '';
  const re = a.regexp !== undefined ? pyRegex(a.regexp) : undefined;
  const ins =
    a.insertafter && a.insertafter !== 'EOF' && a.insertafter !== 'BOF'
      ? pyRegex(a.insertafter)
      : a.insertbefore && a.insertbefore !== 'BOF'
        ? pyRegex(a.insertbefore)
        : undefined;
  let matchIdx = -1;
  let insIdx = -1;
  let match: RegExpExecArray | null = null;
  let exact = false;
  if (re) {
    for (let i = 0; i < out.length; i++) {
      const m = re.exec(out[i]!);
      if (m) {
        matchIdx = i;
        match = m;
        if (a.firstmatch) break;
      }
    }
  } else if (a.search_string !== undefined) {
    for (let i = 0; i < out.length; i++)
      if (out[i]!.includes(a.search_string)) {
        matchIdx = i;
        if (a.firstmatch) break;
      }
  }
  if (matchIdx === -1) {
    for (let i = 0; i < out.length; i++) {
      if (strip(out[i]!) === line) {
        matchIdx = i;
        exact = true;
      } else if (ins?.test(out[i]!)) {
        insIdx = a.insertafter ? i + 1 : i;
        if (a.firstmatch) break;
      }
    }
  }
  if (matchIdx !== -1) {
    let newLine = a.backrefs && match ? expand(line, match) : line;
    if (!newLine.endsWith('\n')) newLine += '\n';
    void exact;
    if (out[matchIdx] !== newLine) {
      out[matchIdx] = newLine;
      return { lines: out, msg: 'line replaced' };
    }
    return { lines: out, msg: '' };
  }
  if (a.backrefs) return { lines: out, msg: '' };
  if (a.insertbefore === 'BOF' || a.insertafter === 'BOF') {
    out.unshift(`${line}\n`);
    return { lines: out, msg: 'line added' };
  }
  if (a.insertafter === 'EOF' || insIdx === -1) {
    if (out.length && !out[out.length - 1]!.endsWith('\n')) out.push('\n');
    out.push(`${line}\n`);
    return { lines: out, msg: 'line added' };
  }
  if (a.insertafter) {
    if (insIdx === out.length) {
      if (strip(out[insIdx - 1]!) !== line) {
        if (!out[insIdx - 1]!.endsWith('\n')) out.push('\n');
        out.push(`${line}\n`);
        return { lines: out, msg: 'line added' };
      }
      return { lines: out, msg: '' };
    }
    if (strip(out[insIdx]!) !== line) {
      out.splice(insIdx, 0, `${line}\n`);
      return { lines: out, msg: 'line added' };
    }
    return { lines: out, msg: '' };
  }
  // insertbefore
  if (insIdx <= 0) {
    if (strip(out[0] ?? '') !== line) {
      out.splice(0, 0, `${line}\n`);
      return { lines: out, msg: 'line added' };
    }
    return { lines: out, msg: '' };
  }
  if (strip(out[insIdx - 1]!) !== line) {
    out.splice(insIdx, 0, `${line}\n`);
    return { lines: out, msg: 'line added' };
  }
  return { lines: out, msg: '' };
}

export const lineinfileModule: ModuleDef = {
  name: 'lineinfile',
  collection: 'ansible.builtin',
  params: [
    'path',
    'dest',
    'destfile',
    'name',
    'line',
    'value',
    'regexp',
    'regex',
    'search_string',
    'state',
    'insertafter',
    'insertbefore',
    'create',
    'backup',
    'backrefs',
    'firstmatch',
    'mode',
    'owner',
    'group',
  ],
  aliases: { dest: 'path', destfile: 'path', name: 'path', value: 'line', regex: 'regexp' },
  schema: z.object({
    path: text.pipe(z.string().min(1, 'is required')),
    line: text.optional(),
    regexp: text.optional(),
    search_string: text.optional(),
    state: z.enum(['present', 'absent']).default('present'),
    insertafter: text.optional(),
    insertbefore: text.optional(),
    create: boolish.default(false),
    backup: boolish.default(false),
    backrefs: boolish.default(false),
    firstmatch: boolish.default(false),
    ...ownership,
  }),
  async run(args, ctx) {
    const path = args.path as string;
    const attrs = attrsOf(args);
    const a = args as unknown as LineArgs & { state: string; create: boolean; backup: boolean };
    if (a.insertafter !== undefined && a.insertbefore !== undefined)
      throw new ModuleFailure('parameters are mutually exclusive: insertafter|insertbefore');
    if (a.regexp !== undefined && a.search_string !== undefined)
      throw new ModuleFailure('parameters are mutually exclusive: regexp|search_string');
    if (a.state === 'present' && a.line === undefined) throw new ModuleFailure('line is required with state=present');
    if (a.backrefs && a.regexp === undefined) throw new ModuleFailure('regexp is required with backrefs=true');
    const before = await statPath(ctx, path, true);
    if (before?.type === 'directory') throw new ModuleFailure(`Path ${path} is a directory !`, { rc: 256 });
    const current = before ? ((await readRemote(ctx, path)) ?? '') : undefined;
    if (current === undefined && a.state === 'absent') return { changed: false, found: 0, msg: 'file not present' };
    if (current === undefined && !a.create)
      throw new ModuleFailure(`Destination ${path} does not exist !`, { rc: 257 });
    const lines = splitLines(current ?? '');
    let next: string[];
    let msg: string;
    let found: number | undefined;
    if (a.state === 'present') ({ lines: next, msg } = lineinfilePresent(lines, a));
    else {
      const re = a.regexp !== undefined ? pyRegex(a.regexp) : undefined;
      next = lines.filter((l) =>
        re ? !re.test(l) : a.search_string !== undefined ? !l.includes(a.search_string) : strip(l) !== a.line,
      );
      found = lines.length - next.length;
      msg = found ? `${found} line(s) removed` : '';
    }
    const content = next.join('');
    const contentChanged = current === undefined ? true : content !== current;
    let changed = contentChanged;
    let backup: string | undefined;
    if (contentChanged && !ctx.check) {
      if (current === undefined)
        await runOrFail(ctx, ['mkdir', '-p', '--', path.replace(/\/[^/]*$/, '') || '/'], 'mkdir');
      backup = await writeRemote(ctx, path, content, { ...attrs, backup: a.backup && current !== undefined });
    } else if (before && attrsDiffer(before, attrs)) {
      if (!ctx.check) await applyAttrs(ctx, path, attrs);
      changed = true;
      msg = msg || 'ownership, perms or SE linux context changed';
    }
    return {
      changed,
      msg,
      ...(found !== undefined ? { found } : {}),
      ...(backup ? { backup } : {}),
      ...(contentChanged
        ? {
            diff: {
              before: current ?? '',
              after: content,
              before_header: `${path} (content)`,
              after_header: `${path} (content)`,
            },
          }
        : {}),
    };
  },
};
