import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { META_ACTIONS } from '../../../src/playbook/modules/control.js';
import { moduleRegistry } from '../../../src/playbook/modules/index.js';
import { supportedLanguage } from '../../../src/playbook/parse.js';
import { SUPPORTED_FILTERS, SUPPORTED_LOOKUPS, SUPPORTED_TESTS } from '../../../src/template/templar.js';

/** docs/playbooks.md lists exactly what the code supports: each `<!-- name -->` list is the code's list. */
describe('docs/playbooks.md', () => {
  const doc = readFileSync(join(process.cwd(), 'docs/playbooks.md'), 'utf8');
  const lists: Record<string, readonly string[]> = {
    ...supportedLanguage(),
    filters: SUPPORTED_FILTERS,
    tests: SUPPORTED_TESTS,
    lookups: SUPPORTED_LOOKUPS,
    modules: [...new Set([...moduleRegistry().values()].map((m) => m.name))].sort(),
    'meta actions': META_ACTIONS,
  };
  it.each(Object.keys(lists))('lists the %s of the code', (name) => {
    const m = new RegExp(`<!-- ${name} -->\\n(.*)\\n`).exec(doc);
    const expected = lists[name]!.map((x) => `\`${x}\``).join(', ');
    expect(m?.[1], `docs/playbooks.md <!-- ${name} --> should read:\n${expected}`).toBe(expected);
  });
});
