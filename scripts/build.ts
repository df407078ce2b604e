/**
 * The one build: action.yml files from the input specs, one ncc bundle per action (actions/<id>/dist/index.js),
 * and the CLI bundle (build/cli.js, esbuild: fast, and not committed).
 *   tsx scripts/build.ts            everything
 *   tsx scripts/build.ts --cli      only the CLI (npm's prepare step)
 *   tsx scripts/build.ts --out DIR  write the action files under DIR instead of the repo (check-dist uses this)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ncc from '@vercel/ncc';
import { build } from 'esbuild';
import { renderActionYml } from '../src/config/action-yml.js';
import { actionSpecs } from '../src/config/actions/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outIdx = args.indexOf('--out');
const outRoot = outIdx >= 0 ? resolve(args[outIdx + 1]!) : root;

async function buildCli(): Promise<void> {
  await build({
    entryPoints: [join(root, 'src/cli/main.ts')],
    outfile: join(root, 'build/cli.js'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    sourcemap: true,
    logLevel: 'warning',
    // Some dependencies are CommonJS and call require(); give the ESM bundle one.
    banner: {
      js: "import { createRequire as __dyceCreateRequire } from 'node:module'; const require = __dyceCreateRequire(import.meta.url);",
    },
    external: ['cpu-features', './crypto/build/Release/sshcrypto.node'],
  });
}

async function buildAction(id: string): Promise<void> {
  const dir = join(outRoot, 'actions', id);
  await mkdir(join(dir, 'dist'), { recursive: true });
  const { code } = (await ncc(join(root, 'actions', id, 'main.ts'), {
    quiet: true,
    minify: false,
    sourceMap: false,
    license: 'licenses.txt',
  })) as { code: string; assets: Record<string, { source: Buffer | string }> };
  await writeFile(join(dir, 'dist', 'index.js'), code);
  await writeFile(join(dir, 'dist', 'package.json'), '{"type":"module"}\n');
}

async function writeActionYmls(): Promise<void> {
  for (const spec of actionSpecs) {
    await mkdir(join(outRoot, 'actions', spec.id), { recursive: true });
    await writeFile(join(outRoot, 'actions', spec.id, 'action.yml'), renderActionYml(spec));
  }
}

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
