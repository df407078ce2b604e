/**
 * `npm run bench`: runs every benchmark in bench/ one after the other (each prints its own table of medians and
 * side-by-side ratios). `npm run bench -- lab probe` runs only those.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
const only = process.argv.slice(2);
const benches = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && !['run.ts', 'support.ts'].includes(f))
  .map((f) => f.slice(0, -3))
  .filter((n) => only.length === 0 || only.includes(n));
let failed = 0;
for (const b of benches) {
  console.log(`\n### bench/${b}.ts`);
  const r = spawnSync(
    process.execPath,
    [fileURLToPath(new URL('../node_modules/tsx/dist/cli.mjs', import.meta.url)), `${dir}${b}.ts`],
    { stdio: 'inherit' },
  );
  if (r.status !== 0) failed++;
}
process.exitCode = failed ? 1 : 0;
