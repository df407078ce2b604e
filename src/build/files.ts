import { constants, existsSync, lstatSync, readFileSync, realpathSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { MapEntry } from '../config/conventions.js';
import { UserError } from '../util/errors.js';
import { excludingRule, parseDockerignore } from './dockerignore.js';

/**
 * Checks Melton's env file before anything is built: inside the context, not already there (a file we did not write
 * is never overwritten, and so never deleted afterwards), and not excluded by .dockerignore (the build would then
 * silently lack it). BuildKit reads `<Dockerfile>.dockerignore` instead of the context's when it exists.
 */
export function checkEnvFile(context: string, envFile: string, dockerfile: string, buildkit: boolean): string {
  const abs = resolve(context, envFile);
  const rel = relative(context, abs);
  if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel))
    throw new UserError(`input "env-file": ${envFile} must be a file inside the context ${context}`);
  // A symlinked directory on the way (e.g. api -> /etc in a checkout) would put the secrets outside the context.
  const existingParent = nearestExisting(dirname(abs));
  const realRel = relative(realpathSync(context), realpathSync(existingParent));
  if (realRel.startsWith(`..${sep}`) || realRel === '..' || isAbsolute(realRel))
    throw new UserError(
      `input "env-file": ${envFile} goes through a symbolic link that leaves the context (${existingParent}); refusing to write secrets there`,
    );
  let exists = false;
  try {
    lstatSync(abs);
    exists = true;
  } catch {}
  if (exists)
    throw new UserError(
      `input "env-file": ${abs} already exists; refusing to overwrite it (and to delete it after the build). Remove it from the checkout, or choose another path`,
    );
  const specific = `${dockerfile}.dockerignore`;
  const ignoreFile = buildkit && existsSync(specific) ? specific : join(context, '.dockerignore');
  if (existsSync(ignoreFile)) {
    const rule = excludingRule(parseDockerignore(readFileSync(ignoreFile, 'utf8')), rel.split(sep).join('/'));
    if (rule)
      throw new UserError(
        `input "env-file": ${rel} is excluded from the build context by ${ignoreFile}:${rule.line} (${JSON.stringify(rule.pattern)}), so the build would not see it; add a line "!${rel.split(sep).join('/')}" or choose another path`,
      );
  }
  return abs;
}

function nearestExisting(dir: string): string {
  let d = dir;
  while (!existsSync(d) && dirname(d) !== d) d = dirname(d);
  return d;
}

export interface WrittenEnvFile {
  path: string;
  /** The topmost directory created for it (removed with it), if any. */
  createdDir: string | undefined;
}

/** Writes `NAME=value` lines, mode 0600, refusing to replace anything (O_EXCL). */
export async function writeEnvFile(path: string, entries: readonly MapEntry[]): Promise<WrittenEnvFile> {
  const createdDir = await mkdir(dirname(path), { recursive: true });
  const text = entries.map((e) => `${e.key}=${e.value}\n`).join('');
  try {
    await writeFile(path, text, { mode: 0o600, flag: constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST')
      throw new UserError(`input "env-file": ${path} appeared before it could be written; refusing to overwrite it`);
    throw error;
  }
  await chmod(path, 0o600);
  return { path, createdDir };
}

export async function removeEnvFile(f: WrittenEnvFile): Promise<void> {
  await rm(f.path, { force: true });
  if (f.createdDir) await rm(f.createdDir, { recursive: true, force: true });
}

export interface SecretFiles {
  dir: string;
  files: { id: string; path: string }[];
}

/**
 * One 0600 file per BuildKit secret in a fresh 0700 directory. The paths go into `--secret id=..,src=..`, a CSV
 * value, so a temp root containing `,` or `"` is refused rather than quoted.
 */
export async function writeSecretFiles(
  tempRoot: string,
  secrets: readonly { id: string; value: string }[],
): Promise<SecretFiles> {
  const dir = await mkdtemp(join(tempRoot, 'dyce-secrets-'));
  await chmod(dir, 0o700);
  if (/[,"]/.test(dir)) {
    await rm(dir, { recursive: true, force: true });
    throw new UserError(`the temp directory ${tempRoot} contains "," or '"', which --secret src=... cannot hold`);
  }
  const files: SecretFiles['files'] = [];
  for (const [i, s] of secrets.entries()) {
    const path = join(dir, `secret-${i}`);
    await writeFile(path, s.value, { mode: 0o600, flag: 'wx' });
    files.push({ id: s.id, path });
  }
  return { dir, files };
}

/**
 * A Docker config dir for this run only, so `docker login` never writes to the runner's ~/.docker.
 * The user's CLI plugins and buildx builders are linked in, so `docker buildx` and its builder instances still work.
 */
export async function createDockerConfig(tempRoot: string, userConfig: string | undefined): Promise<string> {
  const dir = await mkdtemp(join(tempRoot, 'dyce-docker-config-'));
  await chmod(dir, 0o700);
  if (userConfig) {
    for (const name of ['cli-plugins', 'buildx']) {
      const src = join(userConfig, name);
      try {
        if ((await lstat(src)).isDirectory()) await symlink(src, join(dir, name));
      } catch {}
    }
  }
  return dir;
}

export function userDockerConfig(env: NodeJS.ProcessEnv): string | undefined {
  if (env.DOCKER_CONFIG) return env.DOCKER_CONFIG;
  return env.HOME ? join(env.HOME, '.docker') : undefined;
}
