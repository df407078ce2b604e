/**
 * Finds @github/local-action, which runs an action's source (not its bundle) the way the runner would. It is kept
 * out of the project's dependencies, in its own prefix: `npm install --prefix tools/local-action` (CI does this),
 * or DYCE_LOCAL_ACTION pointing at an installed package directory. Outside CI a missing tool skips the test with a
 * note; in CI it fails, so a broken install step cannot hide behind a skip.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { node24, repoRoot } from './runner-protocol.js';

export function localActionDir(): string | undefined {
  const env = process.env.DYCE_LOCAL_ACTION;
  if (env && existsSync(join(env, 'bin/local-action.js'))) return env;
  // Its package.json is not in its exports, so look for the folder rather than resolve it.
  const found = [join(repoRoot, 'tools/local-action'), repoRoot]
    .map((base) => join(base, 'node_modules/@github/local-action'))
    .find((dir) => existsSync(join(dir, 'bin/local-action.js')));
  if (!found) {
    const how = '@github/local-action is not installed (npm install --prefix tools/local-action)';
    if (process.env.CI) throw new Error(how);
    process.stderr.write(`local-action tests SKIPPED: ${how}\n`);
  }
  return found;
}

/**
 * `local-action run actions/ID run.ts DOTENV` from the repository root under Node 24 (first on PATH too), killed
 * after TIMEOUT_MS; resolves with stdout and stderr together, rejects with both on a non-zero exit.
 */
export function runLocalAction(pkg: string, id: string, dotenv: string, timeoutMs: number): Promise<string> {
  return new Promise<string>((resolve, reject) =>
    execFile(
      node24(),
      [join(pkg, 'bin/local-action.js'), 'run', `actions/${id}`, 'run.ts', dotenv],
      { cwd: repoRoot, env: { ...process.env, PATH: `${dirname(node24())}:${process.env.PATH}` }, timeout: timeoutMs },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stdout}\n${stderr}`)) : resolve(stdout + stderr),
    ),
  );
}
