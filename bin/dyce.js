#!/usr/bin/env node
// The dyce CLI. The source is bundled to build/cli.js by `npm run build` (also run by npm's prepare step).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const bundle = fileURLToPath(new URL('../build/cli.js', import.meta.url));
if (!existsSync(bundle)) {
  console.error('dyce: build/cli.js is missing; run `npm install` (or `npm run build`) in the dyce checkout first.');
  process.exit(2);
}
await import(bundle);
