/**
 * The lab is a development tool of the repository: the product (the action bundles and the CLI's own bundle) holds
 * none of it. esbuild follows the same imports as the bundlers that ship them (ncc for the actions, esbuild for the
 * CLI); a static import of src/lab/ anywhere on their path shows here.
 */
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { actionSpecs } from '../../src/config/actions/index.js';

const root = new URL('../../', import.meta.url).pathname;

async function inputsOf(entry: string): Promise<string[]> {
  const r = await build({
    entryPoints: [`${root}${entry}`],
    bundle: true,
    write: false,
    metafile: true,
    splitting: entry.startsWith('src/cli'),
    outdir: '/nonexistent-out',
    format: 'esm',
    platform: 'node',
    logLevel: 'silent',
    external: ['cpu-features', './crypto/build/Release/sshcrypto.node'],
  });
  return Object.keys(r.metafile.inputs);
}

describe('the product bundles hold no lab code', () => {
  it('the check sees lab code where there is some (the lab entry)', async () => {
    expect((await inputsOf('src/cli/lab.ts')).filter((f) => f.startsWith('src/lab/')).length).toBeGreaterThan(5);
  }, 60_000);

  it.each(['src/cli/main.ts', ...actionSpecs.map((s) => `actions/${s.id}/main.ts`)])(
    '%s',
    async (entry) => {
      const inputs = await inputsOf(entry);
      expect(inputs.length).toBeGreaterThan(10);
      expect(inputs.filter((f) => f.startsWith('src/lab/') || f === 'src/cli/lab.ts')).toEqual([]);
    },
    60_000,
  );
});
