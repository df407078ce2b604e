/**
 * Fails when a committed action.yml, action README table or dist/ bundle differs from a fresh build of the current source.
 * CI runs it, so a stale bundle can never be what users run.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = mkdtempSync(join(tmpdir(), 'dyce-check-dist-'));
try {
  try {
    execFileSync(
      process.execPath,
      [join(root, 'node_modules/tsx/dist/cli.mjs'), join(root, 'scripts/build.ts'), '--out', out],
      {
        stdio: 'inherit',
      },
    );
  } catch {
    console.error('check-dist: the build failed (see above)');
    process.exit(1);
  }
  const stale: string[] = [];
  for (const id of readdirSync(join(out, 'actions'))) {
    for (const rel of ['action.yml', 'README.md', 'dist/index.js', 'dist/package.json']) {
      const fresh = readFileSync(join(out, 'actions', id, rel));
      const committed = join(root, 'actions', id, rel);
      if (!existsSync(committed) || !readFileSync(committed).equals(fresh)) stale.push(`actions/${id}/${rel}`);
    }
  }
  if (stale.length) {
    console.error(
      `check-dist: these files differ from a fresh build of the source:\n  ${stale.join('\n  ')}\nRun \`npm run build\` and commit the result.`,
    );
    process.exit(1);
  }
  console.log('check-dist: every action.yml and dist bundle matches a fresh build');
} finally {
  rmSync(out, { recursive: true, force: true });
}
