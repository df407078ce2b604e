import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { UserError } from '../util/errors.js';
import {
  type Builder,
  type BuilderKind,
  buildkitProbe,
  buildxProbe,
  serverHasBuildkit,
  serverProbe,
} from './commands.js';
import type { DockerRunner } from './docker.js';
import { errorLine } from './retry.js';

const WELL_KNOWN = ['/usr/bin/docker', '/usr/local/bin/docker', '/opt/homebrew/bin/docker'];

export const INSTALL_HINT =
  'install the buildx plugin (Debian/Ubuntu: docker-buildx-plugin or docker-buildx), or point "docker-path" at a docker client with BuildKit built in (18.09 to 22.x)';

/**
 * The docker clients to probe, in order: `docker-path` alone when given, else every `docker` on PATH and then the
 * usual install places. Several clients can coexist (a new one first on PATH without buildx, an older one with
 * BuildKit built in), which is why the builder is chosen by probing each, not by taking the first on PATH.
 */
export function dockerCandidates(dockerPath: string | undefined, env: NodeJS.ProcessEnv): string[] {
  if (dockerPath?.trim()) {
    const p = dockerPath.trim();
    if (p.includes('/')) return [resolve(p)];
    const found = onPath(p, env);
    return found.length ? [found[0]!] : [p];
  }
  const seen = new Set<string>();
  const out: string[] = [];
  for (const p of [...onPath('docker', env), ...WELL_KNOWN]) {
    if (!isExecutable(p)) continue;
    let real = p;
    try {
      real = realpathSync(p);
    } catch {}
    if (seen.has(real)) continue;
    seen.add(real);
    out.push(p);
  }
  return out;
}

function onPath(name: string, env: NodeJS.ProcessEnv): string[] {
  return (env.PATH ?? '')
    .split(delimiter)
    .filter((d) => d && isAbsolute(d))
    .map((d) => join(d, name))
    .filter(isExecutable);
}

function isExecutable(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface Detection {
  builder: Builder;
  /** One line per probe, for the log. */
  probes: string[];
}

/**
 * Picks the builder by probing: `docker buildx version` on each client, else a client that runs builds in BuildKit
 * mode against a daemon that has BuildKit, else the classic builder of the first client. All probes run at once
 * (each is one short process). `want` other than auto insists on that builder and fails with what to install.
 */
export async function detectBuilder(
  runner: DockerRunner,
  candidates: string[],
  want: 'auto' | BuilderKind,
): Promise<Detection> {
  if (candidates.length === 0)
    throw new UserError(
      'no docker client found on PATH or in /usr/bin, /usr/local/bin: install docker, or set "docker-path"',
    );
  const probes: string[] = [];
  const wantBuildx = want === 'auto' || want === 'buildx';
  const wantBuildkit = want === 'auto' || want === 'buildkit';
  const [server, bx, bk] = await Promise.all([
    runner.run(serverProbe(candidates[0]!)),
    Promise.all(wantBuildx ? candidates.map((d) => runner.run(buildxProbe(d))) : []),
    Promise.all(wantBuildkit ? candidates.map((d) => runner.run(buildkitProbe(d))) : []),
  ]);
  if (server.code !== 0)
    throw new UserError(`cannot reach the Docker daemon with ${candidates[0]}: ${errorLine(server.stderr)}`);
  probes.push(`daemon: ${server.stdout.trim()}`);
  for (const [i, r] of bx.entries())
    probes.push(`${candidates[i]} buildx: ${r.code === 0 ? r.stdout.trim() : `no (${errorLine(r.stderr)})`}`);
  const daemonBuildkit = serverHasBuildkit(server.stdout);
  for (const [i, r] of bk.entries())
    probes.push(
      `${candidates[i]} BuildKit: ${r.code === 0 ? (daemonBuildkit ? 'yes' : 'client yes, daemon no') : `no (${errorLine(r.stderr)})`}`,
    );
  const bxIdx = bx.findIndex((r) => r.code === 0);
  if (bxIdx >= 0) return { builder: { kind: 'buildx', docker: candidates[bxIdx]! }, probes };
  const bkIdx = daemonBuildkit ? bk.findIndex((r) => r.code === 0) : -1;
  if (bkIdx >= 0) return { builder: { kind: 'buildkit', docker: candidates[bkIdx]! }, probes };
  if (want === 'classic' || want === 'auto') return { builder: { kind: 'classic', docker: candidates[0]! }, probes };
  throw new UserError(`builder "${want}" was asked for, and no docker client has it: ${INSTALL_HINT}`, {
    details: probes,
  });
}
