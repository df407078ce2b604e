/**
 * The one build: action.yml files from the input specs, one ncc bundle per action (actions/<id>/dist/index.js),
 * and the CLI bundle (build/cli.js, esbuild: fast, and not committed).
 *   tsx scripts/build.ts            everything
 *   tsx scripts/build.ts --cli      only the CLI (npm's prepare step)
 *   tsx scripts/build.ts --out DIR  write the action files under DIR instead of the repo (check-dist uses this)
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ncc from '@vercel/ncc';
import { build } from 'esbuild';
import { renderActionYml, renderReadme } from '../src/config/action-yml.js';
import { actionSpecs } from '../src/config/actions/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outIdx = args.indexOf('--out');
const outRoot = outIdx >= 0 ? resolve(args[outIdx + 1]!) : root;

/**
 * The CLI: the product (build/cli.js and its chunks) and, apart, the lab (build/lab.js and lab-chunks/), which
 * src/cli/main.ts loads only when `dyce lab` runs. The product holds no lab code (test/unit/product-bundles.test.ts).
 */
async function buildCli(): Promise<void> {
  rmSync(join(root, 'build'), { recursive: true, force: true });
  await bundleCli('src/cli/main.ts', 'cli', 'chunks');
  await bundleCli('src/cli/lab.ts', 'lab', 'lab-chunks');
}

async function bundleCli(entry: string, name: string, chunks: string): Promise<void> {
  await build({
    entryPoints: [join(root, entry)],
    outdir: join(root, 'build'),
    entryNames: name,
    chunkNames: `${chunks}/[name]-[hash]`,
    splitting: true,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    sourcemap: true,
    logLevel: 'warning',
    // Some dependencies are CommonJS and use require() and __dirname (ssh2); give the ESM bundle both.
    banner: {
      js: [
        "import { createRequire as __dyceCreateRequire } from 'node:module';",
        "import { fileURLToPath as __dyceFileURLToPath } from 'node:url';",
        "import { dirname as __dyceDirname } from 'node:path';",
        'const require = __dyceCreateRequire(import.meta.url);',
        'const __filename = __dyceFileURLToPath(import.meta.url);',
        'const __dirname = __dyceDirname(__filename);',
      ].join(' '),
    },
    external: NATIVE_ADDONS,
  });
}

const NATIVE_ADDONS = ['cpu-features', './crypto/build/Release/sshcrypto.node'];

async function buildAction(id: string): Promise<void> {
  const dir = join(outRoot, 'actions', id);
  const entry = join(root, 'actions', id, 'main.ts');
  if (!existsSync(entry))
    throw new Error(`actions/${id}/main.ts is missing (its spec is listed in src/config/actions/index.ts)`);
  await mkdir(join(dir, 'dist'), { recursive: true });
  let code: string;
  let assets: Record<string, unknown> = {};
  try {
    // ssh2's optional native addons stay out of the bundle (ssh2 falls back to pure JS when they are missing), so the
    // bundle is the same whether or not this checkout happened to compile them.
    ({ code, assets = {} } = await ncc(entry, {
      quiet: true,
      minify: false,
      sourceMap: false,
      externals: NATIVE_ADDONS,
    }));
  } catch (e) {
    // ncc's own errors can hold megabytes of bundled source: keep the first lines.
    const text = String(e instanceof Error ? e.message : e);
    const head = text
      .split('\n')
      .slice(0, 15)
      .map((l) => l.slice(0, 300));
    throw new Error(`ncc could not bundle actions/${id}/main.ts:\n${head.join('\n')}`);
  }
  // The action ships dist/index.js alone: a chunk ncc splits off (a dynamic import without webpackMode "eager")
  // would be missing at run time.
  const chunks = Object.keys(assets).filter((a) => a.endsWith('.js'));
  if (chunks.length)
    throw new Error(
      `ncc split actions/${id} into more than dist/index.js (${chunks.join(', ')}): give its dynamic imports /* webpackMode: "eager" */`,
    );
  await writeFile(join(dir, 'dist', 'index.js'), code);
  await writeFile(join(dir, 'dist', 'package.json'), '{"type":"module"}\n');
}

async function writeActionYmls(): Promise<void> {
  for (const spec of actionSpecs) {
    await mkdir(join(outRoot, 'actions', spec.id), { recursive: true });
    await writeFile(join(outRoot, 'actions', spec.id, 'action.yml'), renderActionYml(spec));
    const readme = join(root, 'actions', spec.id, 'README.md');
    const existing = existsSync(readme) ? readFileSync(readme, 'utf8') : `# Dyce ${spec.id}\n\n${spec.description}\n`;
    await writeFile(join(outRoot, 'actions', spec.id, 'README.md'), renderReadme(existing, spec));
  }
}

try {
  await main();
} catch (e) {
  process.stderr.write(`build: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
}

async function main(): Promise<void> {
  if (args.includes('--cli')) {
    await buildCli();
  } else {
    await writeActionYmls();
    // ncc is CPU-bound; two at a time suits a 2-core machine.
    const ids = actionSpecs.map((s) => s.id);
    const queue = [...ids];
    await Promise.all(
      [0, 1].map(async () => {
        for (let id = queue.shift(); id; id = queue.shift()) await buildAction(id);
      }),
    );
    if (outRoot === root) await buildCli();
  }
}
