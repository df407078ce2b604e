import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type Inventory, readInventory, selectHosts } from '../../src/config/inventory.js';

// Differential test: Dyce's inventory parser against Ansible's own (`ansible-inventory --list` for merged host
// variables and group membership, `ansible PATTERN --list-hosts` for host patterns and their order).
// Needs Debian's `ansible` package (the playbook differential tests need it too).

const run = promisify(execFile);
const fixtures = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/inventory');
const env = {
  ...process.env,
  ANSIBLE_NOCOLOR: '1',
  ANSIBLE_LOCALHOST_WARNING: 'false',
  ANSIBLE_INVENTORY_UNPARSED_WARNING: 'false',
};

interface AnsibleList {
  _meta: { hostvars: Record<string, Record<string, unknown>> };
  [group: string]: { hosts?: string[]; children?: string[] } | AnsibleList['_meta'];
}

async function ansibleList(file: string): Promise<AnsibleList> {
  try {
    const { stdout } = await run('ansible-inventory', ['-i', file, '--list'], { env });
    return JSON.parse(stdout) as AnsibleList;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new Error("ansible-inventory is not installed: this differential test needs Debian's ansible package");
    throw error;
  }
}

async function ansibleHosts(file: string, pattern: string): Promise<string[]> {
  const { stdout } = await run('ansible', ['-i', file, pattern, '--list-hosts'], { env });
  return stdout
    .split('\n')
    .slice(1)
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** Every group's hosts, descendants included, from Ansible's --list output. */
function ansibleMembers(list: AnsibleList): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const walk = (g: string, seen = new Set<string>()): Set<string> => {
    const s = new Set<string>();
    if (seen.has(g)) return s;
    seen.add(g);
    const node = list[g] as { hosts?: string[]; children?: string[] } | undefined;
    for (const h of node?.hosts ?? []) s.add(h);
    for (const c of node?.children ?? []) for (const h of walk(c, seen)) s.add(h);
    return s;
  };
  for (const g of Object.keys(list)) if (g !== '_meta') out.set(g, walk(g));
  return out;
}

const cases: { file: string; patterns: string[] }[] = [
  { file: 'melton-hosts', patterns: ['all', 'servers', 'indenwolken'] },
  {
    file: 'rich.ini',
    patterns: [
      'all',
      'prod',
      'db:web',
      'all:!web02:&prod',
      'web*',
      '~db-.',
      'web[1:]',
      'staging:&db',
      '!staging',
      'a:b',
    ],
  },
  { file: 'rich.yml', patterns: ['all', 'web', 'canary', 'web:&staging:db', 'all:!db', 'web[0]', '*'] },
];

describe('inventories agree with ansible-inventory', () => {
  for (const c of cases) {
    it(`${c.file}: same hosts, merged variables, groups and pattern results`, async () => {
      const file = join(fixtures, c.file);
      const ours: Inventory = await readInventory(file);
      const theirs = await ansibleList(file);

      const hostvars = theirs._meta.hostvars;
      expect(ours.hosts.map((h) => h.name).sort()).toEqual(Object.keys(hostvars).sort());
      for (const h of ours.hosts)
        expect({ host: h.name, vars: h.vars }).toEqual({ host: h.name, vars: hostvars[h.name] ?? {} });

      const members = ansibleMembers(theirs);
      for (const [g, hosts] of members) {
        expect({ group: g, hosts: [...(ours.groups[g]?.hosts ?? [])].sort() }).toEqual({
          group: g,
          hosts: [...hosts].sort(),
        });
      }

      const answers = await Promise.all(c.patterns.map((p) => ansibleHosts(file, p)));
      c.patterns.forEach((p, i) => {
        const mine = selectHosts(ours, p).hosts.map((h) => h.name);
        expect({ pattern: p, hosts: mine }).toEqual({ pattern: p, hosts: answers[i] });
      });
    });
  }
});
