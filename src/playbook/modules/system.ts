import { z } from 'zod';
import { ansibleBool, toText } from '../../template/templar.js';
import { type ModuleContext, type ModuleDef, ModuleFailure, runOrFail } from './types.js';

/**
 * ansible.builtin user, group, service/systemd, ansible.posix authorized_key and community.general ufw, on a Debian
 * host: the host's own tools (useradd/usermod, groupadd, systemctl, ufw) with argv words; a password hash travels on
 * stdin (chpasswd -e), never in argv.
 */

const boolish = z.unknown().transform((v) => ansibleBool(v));
const text = z.unknown().transform((v) => toText(v));
const list = z
  .unknown()
  .transform((v) =>
    v === undefined || v === null
      ? undefined
      : (Array.isArray(v) ? v.map((x) => toText(x)) : toText(v).split(','))
          .map((s) => s.trim())
          .filter((s) => s !== ''),
  );

async function getent(ctx: ModuleContext, db: string, key: string): Promise<string[] | undefined> {
  const r = await ctx.run(['getent', db, key], { label: `getent ${db}` });
  if (r.code === 2) return undefined;
  if (r.code !== 0) throw new ModuleFailure(`getent ${db} ${key} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout.trim().split(':');
}

/** Supplementary groups of a user (its primary group excluded), as Ansible compares them. */
async function supplementaryGroups(ctx: ModuleContext, user: string, primaryGid: string): Promise<string[]> {
  const r = await runOrFail(ctx, ['id', '-G', user], 'id -G');
  const gids = r.stdout
    .trim()
    .split(/\s+/)
    .filter((g) => g !== primaryGid);
  if (gids.length === 0) return [];
  const names = await runOrFail(ctx, ['getent', 'group', ...gids], 'getent group');
  return names.stdout
    .trim()
    .split('\n')
    .map((l) => l.split(':')[0]!)
    .filter(Boolean);
}

// ---------------------------------------------------------------------------------------------------------------- user

export const userModule: ModuleDef = {
  name: 'user',
  collection: 'ansible.builtin',
  params: [
    'name',
    'user',
    'state',
    'uid',
    'group',
    'groups',
    'append',
    'shell',
    'home',
    'comment',
    'create_home',
    'createhome',
    'system',
    'password',
    'update_password',
    'remove',
    'force',
  ],
  aliases: { user: 'name', createhome: 'create_home' },
  schema: z.object({
    name: text.pipe(z.string().regex(/^[a-z_][a-z0-9_.-]*\$?$/i, 'is not a user name')),
    state: z.enum(['present', 'absent']).default('present'),
    uid: z.coerce.number().int().nonnegative().optional(),
    group: text.optional(),
    groups: list.optional(),
    append: boolish.default(false),
    shell: text.optional(),
    home: text.optional(),
    comment: text.optional(),
    create_home: boolish.default(true),
    system: boolish.default(false),
    password: text.optional(),
    update_password: z.enum(['always', 'on_create']).default('always'),
    remove: boolish.default(false),
    force: boolish.default(false),
  }),
  async run(args, ctx) {
    const name = args.name as string;
    if (args.password !== undefined) ctx.secret(args.password as string);
    const pw = await getent(ctx, 'passwd', name);
    if (args.state === 'absent') {
      if (!pw) return { changed: false, name, state: 'absent' };
      if (!ctx.check)
        await runOrFail(
          ctx,
          ['userdel', ...(args.remove ? ['-r'] : []), ...(args.force ? ['-f'] : []), name],
          `userdel ${name}`,
        );
      return { changed: true, name, state: 'absent', force: args.force, remove: args.remove };
    }
    const groups = args.groups as string[] | undefined;
    for (const g of [...(groups ?? []), ...(args.group ? [args.group as string] : [])])
      if (!(await getent(ctx, 'group', g))) throw new ModuleFailure(`Group ${g} does not exist`);
    let changed = false;
    let setPassword = false;
    if (!pw) {
      const argv = ['useradd'];
      if (args.uid !== undefined) argv.push('-u', String(args.uid));
      if (args.group !== undefined) argv.push('-g', args.group as string);
      else if (await getent(ctx, 'group', name)) argv.push('-N');
      if (groups?.length) argv.push('-G', groups.join(','));
      if (args.comment !== undefined) argv.push('-c', args.comment as string);
      if (args.home !== undefined) argv.push('-d', args.home as string);
      if (args.shell !== undefined) argv.push('-s', args.shell as string);
      argv.push(args.create_home ? '-m' : '-M');
      if (args.system) argv.push('-r');
      argv.push(name);
      if (!ctx.check) await runOrFail(ctx, argv, `useradd ${name}`);
      changed = true;
      setPassword = args.password !== undefined;
    } else {
      const [, , uid, gid, gecos, home, shell] = pw;
      const argv = ['usermod'];
      if (args.uid !== undefined && String(args.uid) !== uid) argv.push('-u', String(args.uid));
      if (args.group !== undefined) {
        const g = await getent(ctx, 'group', args.group as string);
        if (g?.[2] !== gid) argv.push('-g', args.group as string);
      }
      if (groups !== undefined) {
        const have = await supplementaryGroups(ctx, name, gid ?? '');
        if (args.append) {
          const missing = groups.filter((g) => !have.includes(g));
          if (missing.length) argv.push('-a', '-G', missing.join(','));
        } else if ([...new Set(groups)].sort().join(',') !== [...new Set(have)].sort().join(','))
          argv.push('-G', groups.join(','));
      }
      if (args.comment !== undefined && args.comment !== gecos) argv.push('-c', args.comment as string);
      if (args.home !== undefined && args.home !== home) argv.push('-d', args.home as string);
      if (args.shell !== undefined && args.shell !== shell) argv.push('-s', args.shell as string);
      if (argv.length > 1) {
        argv.push(name);
        if (!ctx.check) await runOrFail(ctx, argv, `usermod ${name}`);
        changed = true;
      }
      if (args.password !== undefined && args.update_password === 'always') {
        const sh = await getent(ctx, 'shadow', name);
        if (sh?.[1] !== args.password) setPassword = true;
      }
    }
    // Like Ansible: a present user with create_home gets its home made when it is missing, even on a later task.
    if (pw && args.create_home && pw[5]) {
      const home = pw[5];
      const t = await ctx.run(['test', '-e', home], { label: 'test home' });
      if (t.code !== 0) {
        changed = true;
        if (!ctx.check)
          await runOrFail(
            ctx,
            [
              'sh',
              '-c',
              `set -e; if [ -d /etc/skel ]; then cp -a /etc/skel "$1"; else mkdir -p -- "$1"; fi
m=$(sed -n 's/^HOME_MODE[[:space:]]*//p' /etc/login.defs | head -1)
if [ -z "$m" ]; then u=$(sed -n 's/^UMASK[[:space:]]*//p' /etc/login.defs | head -1); m=$(printf '%o' $((0777 & ~0\${u:-022}))); fi
chmod "$m" "$1"; chown -R "$2:$3" "$1"`,
              'sh',
              home,
              pw[2]!,
              pw[3]!,
            ],
            `home ${home}`,
          );
      }
    }
    if (setPassword) {
      changed = true;
      if (!ctx.check)
        await runOrFail(ctx, ['chpasswd', '-e'], `chpasswd ${name}`, { stdin: `${name}:${args.password as string}\n` });
    }
    const now = ctx.check ? pw : await getent(ctx, 'passwd', name);
    return {
      changed,
      name,
      state: 'present',
      ...(now ? { uid: Number(now[2]), group: Number(now[3]), comment: now[4], home: now[5], shell: now[6] } : {}),
      system: args.system,
      create_home: args.create_home,
      ...(groups !== undefined ? { groups: groups.join(','), append: args.append } : {}),
      ...(args.password !== undefined ? { password: 'NOT_LOGGING_PASSWORD' } : {}),
    };
  },
};

// --------------------------------------------------------------------------------------------------------------- group

export const groupModule: ModuleDef = {
  name: 'group',
  collection: 'ansible.builtin',
  params: ['name', 'state', 'gid', 'system'],
  schema: z.object({
    name: text.pipe(z.string().regex(/^[a-z_][a-z0-9_.-]*$/i, 'is not a group name')),
    state: z.enum(['present', 'absent']).default('present'),
    gid: z.coerce.number().int().nonnegative().optional(),
    system: boolish.default(false),
  }),
  async run(args, ctx) {
    const name = args.name as string;
    const g = await getent(ctx, 'group', name);
    if (args.state === 'absent') {
      if (!g) return { changed: false, name, state: 'absent' };
      if (!ctx.check) await runOrFail(ctx, ['groupdel', name], `groupdel ${name}`);
      return { changed: true, name, state: 'absent' };
    }
    let changed = false;
    if (!g) {
      if (!ctx.check)
        await runOrFail(
          ctx,
          [
            'groupadd',
            ...(args.gid !== undefined ? ['-g', String(args.gid)] : []),
            ...(args.system ? ['-r'] : []),
            name,
          ],
          `groupadd ${name}`,
        );
      changed = true;
    } else if (args.gid !== undefined && String(args.gid) !== g[2]) {
      if (!ctx.check) await runOrFail(ctx, ['groupmod', '-g', String(args.gid), name], `groupmod ${name}`);
      changed = true;
    }
    const now = ctx.check ? g : await getent(ctx, 'group', name);
    return { changed, name, state: 'present', system: args.system, ...(now ? { gid: Number(now[2]) } : {}) };
  },
};

// ------------------------------------------------------------------------------------------------------ authorized_key

/** The key blob of an authorized_keys line (options before the type skipped): what identifies a key. */
function keyBlob(line: string): string | undefined {
  const m = /(?:^|\s)((?:ssh|ecdsa|sk)-[\w@.-]+)\s+([A-Za-z0-9+/=]+)/.exec(line);
  return m ? `${m[1]} ${m[2]}` : undefined;
}

export const authorizedKeyModule: ModuleDef = {
  name: 'authorized_key',
  collection: 'ansible.posix',
  params: ['user', 'key', 'state', 'path', 'exclusive', 'manage_dir', 'key_options', 'comment'],
  schema: z.object({
    user: text.pipe(z.string().min(1, 'is required')),
    key: text.pipe(z.string().min(1, 'is required')),
    state: z.enum(['present', 'absent']).default('present'),
    path: text.optional(),
    exclusive: boolish.default(false),
    manage_dir: boolish.default(true),
    key_options: text.optional(),
    comment: text.optional(),
  }),
  async run(args, ctx) {
    const user = args.user as string;
    const pw = await getent(ctx, 'passwd', user);
    if (!pw) throw new ModuleFailure(`Failed to lookup user ${user}: the user does not exist`);
    const path = (args.path as string | undefined) ?? `${pw[5]}/.ssh/authorized_keys`;
    const cur = await ctx.run(['sh', '-c', 'if [ -f "$1" ]; then cat -- "$1"; else exit 3; fi', 'sh', path], {
      label: 'read authorized_keys',
    });
    if (cur.code !== 0 && cur.code !== 3) throw new ModuleFailure(`reading ${path} failed: ${cur.stderr.trim()}`);
    const existing = cur.code === 3 ? [] : cur.stdout.split('\n').filter((l) => l.trim() !== '');
    const wanted = (args.key as string)
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => {
        const withComment = args.comment !== undefined ? `${keyBlob(l) ?? l} ${args.comment as string}` : l;
        return args.key_options !== undefined ? `${args.key_options as string} ${withComment}` : withComment;
      });
    const wantedBlobs = new Set(wanted.map((l) => keyBlob(l) ?? l));
    let next: string[];
    if (args.state === 'absent') next = existing.filter((l) => !wantedBlobs.has(keyBlob(l) ?? l));
    else {
      next = args.exclusive ? [] : [...existing];
      for (const w of wanted) {
        const b = keyBlob(w) ?? w;
        const i = next.findIndex((l) => (keyBlob(l) ?? l) === b);
        if (i >= 0) next[i] = w;
        else next.push(w);
      }
      if (args.exclusive) next = next.filter((l, i) => next.indexOf(l) === i);
    }
    const changed = next.join('\n') !== existing.join('\n');
    if (changed && !ctx.check) {
      const content = next.length ? `${next.join('\n')}\n` : '';
      const dirSetup = args.manage_dir
        ? 'dir=$(dirname -- "$1"); if [ ! -d "$dir" ]; then mkdir -p -- "$dir"; chmod 700 -- "$dir"; chown -- "$2:" "$dir"; fi; '
        : '';
      await runOrFail(
        ctx,
        [
          'sh',
          '-c',
          `set -e; ${dirSetup}tmp=$(mktemp "$(dirname -- "$1")/.dyce-ak-XXXXXX"); cat > "$tmp"; chmod 600 -- "$tmp"; chown -- "$2:" "$tmp"; mv -f -- "$tmp" "$1"`,
          'sh',
          path,
          user,
        ],
        `write ${path}`,
        { stdin: content },
      );
    }
    return {
      changed,
      user,
      key: args.key,
      keyfile: path,
      state: args.state,
      exclusive: args.exclusive,
      manage_dir: args.manage_dir,
      key_options: args.key_options ?? null,
    };
  },
};

// ------------------------------------------------------------------------------------------------------------ services

const SHOW = ['ActiveState', 'SubState', 'UnitFileState', 'LoadState', 'MainPID'];

async function unitStatus(ctx: ModuleContext, unit: string): Promise<Record<string, string>> {
  const r = await runOrFail(
    ctx,
    ['systemctl', 'show', unit, '--no-pager', `--property=${SHOW.join(',')}`],
    'systemctl show',
  );
  return Object.fromEntries(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

function serviceModule(name: 'service' | 'systemd' | 'systemd_service'): ModuleDef {
  return {
    name,
    collection: 'ansible.builtin',
    params: ['name', 'unit', 'service', 'state', 'enabled', 'daemon_reload', 'daemon-reload', 'masked'],
    aliases: { unit: 'name', service: 'name', 'daemon-reload': 'daemon_reload' },
    schema: z.object({
      name: text.optional(),
      state: z.enum(['started', 'stopped', 'restarted', 'reloaded']).optional(),
      enabled: boolish.optional(),
      daemon_reload: boolish.default(false),
      masked: boolish.optional(),
    }),
    async run(args, ctx) {
      if (args.daemon_reload && !ctx.check) await runOrFail(ctx, ['systemctl', 'daemon-reload'], 'daemon-reload');
      const unit = args.name as string | undefined;
      if (!unit) {
        if (args.daemon_reload) return { changed: false, name: null };
        throw new ModuleFailure('name is required');
      }
      let status = await unitStatus(ctx, unit);
      if (status.LoadState === 'not-found')
        throw new ModuleFailure(`Could not find the requested service ${unit}: host`);
      let changed = false;
      const result: Record<string, unknown> = { name: unit };
      if (args.masked !== undefined) {
        const masked = status.LoadState === 'masked' || status.UnitFileState === 'masked';
        if (masked !== args.masked) {
          changed = true;
          if (!ctx.check) await runOrFail(ctx, ['systemctl', args.masked ? 'mask' : 'unmask', unit], 'systemctl mask');
        }
      }
      if (args.enabled !== undefined) {
        const r = await ctx.run(['systemctl', 'is-enabled', unit], { label: 'systemctl is-enabled' });
        const enabled = r.code === 0;
        if (enabled !== args.enabled) {
          changed = true;
          if (!ctx.check)
            await runOrFail(ctx, ['systemctl', args.enabled ? 'enable' : 'disable', unit], 'systemctl enable');
        }
        result.enabled = args.enabled;
      }
      const state = args.state as string | undefined;
      if (state) {
        const running =
          status.ActiveState === 'active' || status.ActiveState === 'activating' || status.ActiveState === 'reloading';
        let action: string | undefined;
        if (state === 'started') action = running ? undefined : 'start';
        else if (state === 'stopped') action = running || status.ActiveState === 'deactivating' ? 'stop' : undefined;
        else action = running ? state.slice(0, -2) : 'start';
        result.state = state === 'stopped' ? 'stopped' : 'started';
        if (action) {
          changed = true;
          if (!ctx.check) await runOrFail(ctx, ['systemctl', action, unit], `systemctl ${action} ${unit}`);
        }
      }
      if (changed && !ctx.check) status = await unitStatus(ctx, unit);
      return { changed, ...result, status };
    },
  };
}

export const serviceModules = [serviceModule('service'), serviceModule('systemd'), serviceModule('systemd_service')];

// ----------------------------------------------------------------------------------------------------------------- ufw

/** Whether `ufw logging VALUE` changes anything, judged from `ufw status verbose` as community.general.ufw does. */
function loggingChanges(status: string, value: string): boolean {
  const m = /Logging: (on|off)(?: \(([a-z]+)\))?/.exec(status);
  if (!m) return true;
  if (value !== 'off') return m[1] === 'off' || (value !== 'on' && value !== m[2]);
  return m[1] !== 'off';
}

/** What ufw's idempotence turns on: its status and its rule tuples (as community.general.ufw compares them). */
async function ufwState(ctx: ModuleContext): Promise<string> {
  const r = await ctx.run(
    [
      'sh',
      '-c',
      "ufw status verbose; grep -h '^### tuple' /lib/ufw/user.rules /lib/ufw/user6.rules /etc/ufw/user.rules /etc/ufw/user6.rules /var/lib/ufw/user.rules /var/lib/ufw/user6.rules 2>/dev/null || true",
    ],
    { label: 'ufw status' },
  );
  if (r.code !== 0) throw new ModuleFailure(`ufw status failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

export const ufwModule: ModuleDef = {
  name: 'ufw',
  collection: 'community.general',
  params: [
    'state',
    'default',
    'policy',
    'direction',
    'logging',
    'rule',
    'port',
    'to_port',
    'from_port',
    'proto',
    'protocol',
    'from_ip',
    'from',
    'src',
    'to_ip',
    'to',
    'dest',
    'interface',
    'if',
    'delete',
    'insert',
    'comment',
    'name',
    'app',
    'log',
    'route',
  ],
  aliases: {
    policy: 'default',
    port: 'to_port',
    protocol: 'proto',
    from: 'from_ip',
    src: 'from_ip',
    to: 'to_ip',
    dest: 'to_ip',
    if: 'interface',
    app: 'name',
  },
  schema: z.object({
    state: z.enum(['enabled', 'disabled', 'reloaded', 'reset']).optional(),
    default: z.enum(['allow', 'deny', 'reject']).optional(),
    direction: z.enum(['in', 'out', 'incoming', 'outgoing', 'routed']).optional(),
    logging: z
      .unknown()
      .transform((v) => (typeof v === 'boolean' ? (v ? 'on' : 'off') : toText(v)))
      .pipe(z.enum(['on', 'off', 'low', 'medium', 'high', 'full']))
      .optional(),
    rule: z.enum(['allow', 'deny', 'limit', 'reject']).optional(),
    to_port: text.optional(),
    from_port: text.optional(),
    proto: z.enum(['any', 'tcp', 'udp', 'ipv6', 'esp', 'ah', 'gre', 'igmp']).optional(),
    from_ip: text.default('any'),
    to_ip: text.default('any'),
    interface: text.optional(),
    delete: boolish.default(false),
    insert: z.coerce.number().int().optional(),
    comment: text.optional(),
    name: text.optional(),
    log: boolish.default(false),
    route: boolish.default(false),
  }),
  async run(args, ctx) {
    const commands: string[][] = [];
    const dry = ctx.check ? ['--dry-run'] : [];
    if (args.state !== undefined) {
      const verb = { enabled: 'enable', disabled: 'disable', reloaded: 'reload', reset: 'reset' }[
        args.state as string
      ]!;
      commands.push(['ufw', ...dry, '-f', verb]);
    }
    if (args.default !== undefined) {
      const dir =
        { in: 'incoming', out: 'outgoing' }[args.direction as string] ??
        (args.direction as string | undefined) ??
        'incoming';
      commands.push(['ufw', ...dry, 'default', args.default as string, dir]);
    }
    if (args.logging !== undefined) commands.push(['ufw', ...dry, 'logging', args.logging as string]);
    if (args.rule !== undefined) {
      const argv = ['ufw', ...dry];
      if (args.delete) argv.push('delete');
      if (args.route) argv.push('route');
      if (args.insert !== undefined) argv.push('insert', String(args.insert));
      argv.push(args.rule as string);
      const d = args.direction as string | undefined;
      if (d === 'in' || d === 'out') argv.push(d);
      if (args.interface !== undefined) argv.push('on', args.interface as string);
      if (args.log) argv.push('log');
      argv.push('from', args.from_ip as string);
      if (args.from_port !== undefined) argv.push('port', args.from_port as string);
      argv.push('to', args.to_ip as string);
      if (args.to_port !== undefined) argv.push('port', args.to_port as string);
      if (args.proto !== undefined && args.proto !== 'any') argv.push('proto', args.proto as string);
      if (args.name !== undefined) argv.push('app', args.name as string);
      if (args.comment !== undefined) argv.push('comment', args.comment as string);
      commands.push(argv);
    } else if (args.state === undefined && args.default === undefined && args.logging === undefined)
      throw new ModuleFailure('at least one of the following is required: state, default, policy, logging, rule');
    const before = await ufwState(ctx);
    if (ctx.check) {
      // Dry runs change nothing: compare what they say would be written with what is there.
      let changed = false;
      for (const c of commands) {
        const r = await runOrFail(ctx, c, c.slice(0, 4).join(' '));
        if (c.includes('enable')) changed ||= !/^Status: active/m.test(before);
        else if (c.includes('disable')) changed ||= /^Status: active/m.test(before);
        else if (c.includes('reset') || c.includes('reload')) changed = true;
        else if (c.includes('default'))
          changed ||= !new RegExp(`Default:.*\\b${args.default as string} \\(${c.at(-1)}\\)`).test(before);
        else if (c.includes('logging')) changed ||= loggingChanges(before, args.logging as string);
        else {
          const tuples = (s: string) =>
            s
              .split('\n')
              .filter((l) => l.startsWith('### tuple'))
              .sort()
              .join('\n');
          const wouldBe = r.stdout.includes('### tuple') ? tuples(r.stdout) : undefined;
          if (wouldBe !== undefined) {
            const cur = before
              .split('\n')
              .filter((l) => l.startsWith('### tuple') && !l.includes(' v6'))
              .sort()
              .join('\n');
            changed ||=
              wouldBe
                .split('\n')
                .filter((l) => !l.includes(' v6'))
                .join('\n') !== cur;
          } else changed ||= !/Skipping|Could not delete non-existent/.test(r.stdout);
        }
      }
      return { changed, commands: commands.map((c) => c.join(' ')) };
    }
    for (const c of commands) await runOrFail(ctx, c, c.slice(0, 4).join(' '));
    const after = await ufwState(ctx);
    const logging = args.logging !== undefined && loggingChanges(before, args.logging as string);
    return { changed: logging || before !== after, commands: commands.map((c) => c.join(' ')) };
  },
};
