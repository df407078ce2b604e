import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseExtraVarsText, readExtraVars } from '../../../src/playbook/extra-vars.js';
import { parsePlaybook } from '../../../src/playbook/parse.js';
import { parseLinedYaml } from '../../../src/playbook/yaml-lines.js';

/** Playbooks and extra-vars files read YAML as Ansible (PyYAML) does, the same way as inventories. */
describe('playbook YAML is read like Ansible reads it', () => {
  it('y and n stay strings; yes/no/on/off/true/false are booleans', () => {
    const doc = parseLinedYaml('a: [x, y, n, Y, N]\nb: [yes, No, on, OFF, true, False]\n');
    expect(doc.errors).toEqual([]);
    expect(doc.value).toEqual({ a: ['x', 'y', 'n', 'Y', 'N'], b: [true, false, true, false, true, false] });
  });

  it('keeps 1.1 octal, merge keys and dates as written', () => {
    const doc = parseLinedYaml('mode: 0644\nbase: &b {k: 1}\nm:\n  <<: *b\n  j: 2\nd: 2024-01-02\n');
    expect(doc.value).toEqual({ mode: 420, base: { k: 1 }, m: { k: 1, j: 2 }, d: '2024-01-02' });
    expect(doc.lineOf(['m', 'j'])).toBe(5);
  });

  it('a loop over [x, y] loops over two strings', () => {
    const pb = parsePlaybook(
      '- hosts: all\n  tasks:\n    - debug: msg={{ item }}\n      loop: [x, y]\n    - debug: msg=hi\n      when: y\n',
      'axes.yml',
    );
    expect(pb.plays[0]!.tasks[0]!.loop).toMatchObject({ kind: 'loop', items: ['x', 'y'] });
    // `when: y` is the variable y (a string to template), not the boolean true.
    expect(pb.plays[0]!.tasks[1]!.when).toEqual(['y']);
  });

  it('extra vars, inline and from a file, too', async () => {
    expect(parseExtraVarsText('{"a": "y", b: y, c: yes}', '-e')).toEqual({ a: 'y', b: 'y', c: true });
    const dir = mkdtempSync(join(tmpdir(), 'dyce-yaml-'));
    writeFileSync(join(dir, 'vars.yml'), 'answer: y\nenabled: on\n');
    const r = await readExtraVars([{ text: `@${join(dir, 'vars.yml')}`, origin: '-e' }]);
    expect(r.vars).toEqual({ answer: 'y', enabled: true });
  });
});
