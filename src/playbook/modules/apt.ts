import { z } from 'zod';
import { ansibleBool } from '../../template/templar.js';
import { type ModuleDef, ModuleFailure, runOrFail } from './types.js';

/**
 * apt: present / latest / absent, update_cache. Idempotent by asking dpkg-query first (one round trip for all
 * names); apt-get runs only when something must change. Package names are argv words, never shell text.
 */

const PKG = /^[a-z0-9][a-z0-9+.\-:=~*]*$/;

/** `dpkg-query -W` for several packages: one line per known package, `name status version`. */
export function dpkgQuery(names: readonly string[]): string[] {
  return ['dpkg-query', '-W', '-f=${binary:Package} ${db:Status-Abbrev} ${Version}\\n', ...names];
}

export function aptGet(
  action: 'install' | 'remove' | 'update',
  names: readonly string[],
  opts: { simulate?: boolean } = {},
): string[] {
  return [
    'env',
    'DEBIAN_FRONTEND=noninteractive',
    'apt-get',
    '-q',
    '-y',
    ...(opts.simulate ? ['-s'] : []),
    ...(action === 'install' ? ['-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold'] : []),
    action,
    ...names,
  ];
}

/** Parses dpkg-query output into name (architecture suffix dropped) -> installed version. */
export function parseDpkgQuery(stdout: string): Map<string, string> {
  const installed = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const [name, status, version] = line.trim().split(/\s+/);
    if (!name || !status) continue;
    // `ii` = installed; anything else (rc: removed with config left) is not installed.
    if (status.startsWith('ii') || status.startsWith('hi'))
      installed.set(name.replace(/:[a-z0-9]+$/, ''), version ?? '');
  }
  return installed;
}

export const aptModule: ModuleDef = {
  name: 'apt',
  collection: 'ansible.builtin',
  params: ['name', 'pkg', 'package', 'state', 'update_cache', 'update-cache', 'cache_valid_time', 'install_recommends'],
  aliases: { pkg: 'name', package: 'name', 'update-cache': 'update_cache' },
  schema: z.object({
    name: z
      .union([z.string(), z.array(z.string())])
      .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter((s) => s !== ''))
      .pipe(z.array(z.string().regex(PKG, 'is not a package name')))
      .optional(),
    state: z.enum(['present', 'installed', 'latest', 'absent', 'removed']).default('present'),
    update_cache: z.unknown().transform(ansibleBool).optional(),
    cache_valid_time: z.coerce.number().int().nonnegative().optional(),
    install_recommends: z.unknown().transform(ansibleBool).optional(),
  }),
  async run(args, ctx) {
    const names = (args.name as string[] | undefined) ?? [];
    const state = args.state as string;
    let cacheUpdated = false;
    if (args.update_cache === true) {
      if (!ctx.check) await runOrFail(ctx, aptGet('update', []), 'apt-get update');
      cacheUpdated = true;
    }
    // With nothing to install, Ansible reports the cache update itself as the change.
    if (names.length === 0) return { changed: cacheUpdated, cache_updated: cacheUpdated };
    // Versions pinned with `name=1.2` are compared by name.
    const bare = names.map((n) => n.split('=')[0]!);
    const q = await ctx.run(dpkgQuery(bare), { label: 'dpkg-query' });
    // dpkg-query exits 1 when some name is unknown: that is "not installed", not an error.
    if (q.code !== 0 && q.code !== 1) throw new ModuleFailure(`dpkg-query failed (exit ${q.code}): ${q.stderr.trim()}`);
    const installed = parseDpkgQuery(q.stdout);
    const extra = args.install_recommends === false ? ['--no-install-recommends'] : [];
    if (state === 'absent' || state === 'removed') {
      const remove = bare.filter((n) => installed.has(n));
      if (remove.length === 0) return { changed: false, cache_updated: cacheUpdated };
      if (!ctx.check) await runOrFail(ctx, aptGet('remove', remove), 'apt-get remove');
      return { changed: true, removed: remove, cache_updated: cacheUpdated };
    }
    if (state === 'latest') {
      // A simulated install lists `Inst pkg` only for what would be installed or upgraded.
      const sim = await runOrFail(
        ctx,
        aptGet('install', [...extra, ...names], { simulate: true }),
        'apt-get -s install',
      );
      const would = sim.stdout.split('\n').filter((l) => l.startsWith('Inst '));
      if (would.length === 0) return { changed: false, cache_updated: cacheUpdated };
      if (!ctx.check) await runOrFail(ctx, aptGet('install', [...extra, ...names]), 'apt-get install');
      return { changed: true, cache_updated: cacheUpdated };
    }
    const missing = names.filter((n, i) => {
      const have = installed.get(bare[i]!);
      const want = n.includes('=') ? n.slice(n.indexOf('=') + 1) : undefined;
      return have === undefined || (want !== undefined && !have.startsWith(want.replace(/\*$/, '')));
    });
    if (missing.length === 0) return { changed: false, cache_updated: cacheUpdated };
    if (!ctx.check) await runOrFail(ctx, aptGet('install', [...extra, ...missing]), 'apt-get install');
    return { changed: true, installed: missing, cache_updated: cacheUpdated };
  },
};
