import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  detectInventoryFormat,
  type Inventory,
  parseInventory,
  parseJumpSpec,
  readInventory,
  selectHosts,
} from '../../src/config/inventory.js';
import { parseIniValue, shellSplit } from '../../src/config/inventory-ini.js';
import { expandHostRange } from '../../src/config/inventory-raw.js';
import { InputError } from '../../src/util/errors.js';

const here = dirname(fileURLToPath(import.meta.url));

function issuesOf(text: string, source = 'hosts'): string[] {
  try {
    parseInventory(text, { source });
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return (error as InputError).issues;
  }
  throw new Error('expected the inventory to be refused');
}

const names = (inv: Inventory, pattern: string, limit?: string) =>
  selectHosts(inv, pattern, limit).hosts.map((h) => h.name);

describe('INI inventory', () => {
  it('takes ssh-style user@host:port lines, as appleboy/ssh-action users write hosts', () => {
    const inv = parseInventory(
      'deploy@203.0.113.7:2222\nops@web2\nweb3:2200 ansible_user=x\nme@web4 ansible_user=root',
      {
        source: 'hosts',
        format: 'ini',
      },
    );
    expect(inv.hosts.map((h) => [h.name, h.address, h.port, h.user])).toEqual([
      ['203.0.113.7', '203.0.113.7', 2222, 'deploy'],
      ['web2', 'web2', 22, 'ops'],
      ['web3', 'web3', 2200, 'x'],
      ['web4', 'web4', 22, 'root'],
    ]);
  });

  it("reads Melton's hosts file: ansible_host, ansible_port and [all:vars] user", async () => {
    const inv = await readInventory(join(here, '../fixtures/inventory/melton-hosts'));
    expect(inv.hosts).toHaveLength(1);
    const h = inv.hosts[0]!;
    expect(h).toMatchObject({ name: 'indenwolken', address: '127.0.0.1', port: 2222, user: 'root', become: false });
    expect(h.groups).toEqual(['all', 'servers']);
    expect(h.vars.ansible_python_interpreter).toBe('/usr/bin/python3');
    expect(h.source).toEqual({ file: join(here, '../fixtures/inventory/melton-hosts'), line: 2 });
  });

  it('reads inline `hosts` text with groups, children, group vars, quotes, comments and ranges', () => {
    const inv = parseInventory(
      [
        '# a comment',
        '; another',
        'lonely ansible_host=10.0.0.9',
        '[web]',
        'web[01:03] ansible_user=deploy # trailing comment',
        'special ansible_host="10.0.0.5" note=\'it is $(quoted) `here`\' ansible_port=2200',
        '',
        '[db]',
        'db-[a:b]:2201',
        '',
        '[prod:children]',
        'web',
        'db',
        '',
        '[prod:vars]',
        'ansible_become=yes',
        "ansible_ssh_common_args='-o ProxyJump=jump@bastion.example:2022'",
        'dyce_port_base=9000',
        '',
        '[web:vars]',
        'dyce_port_base=9100',
        'dyce_state_dir=/var/lib/dyce-web',
        '',
        '[all:vars]',
        'ansible_user=root',
        'dyce_port_base=8000',
      ].join('\n'),
      { source: 'hosts' },
    );
    expect(inv.hosts.map((h) => h.name)).toEqual(['lonely', 'web01', 'web02', 'web03', 'special', 'db-a', 'db-b']);
    const by = Object.fromEntries(inv.hosts.map((h) => [h.name, h]));
    expect(by.lonely).toMatchObject({
      address: '10.0.0.9',
      port: 22,
      user: 'root',
      portBase: 8000,
      groups: ['all', 'ungrouped'],
    });
    expect(by.lonely!.jump).toBeUndefined();
    // child group (web) beats parent (prod) beats all; host vars beat every group.
    expect(by.web02).toMatchObject({ address: 'web02', user: 'deploy', become: true, portBase: 9100 });
    expect(by.web02!.stateDir).toBe('/var/lib/dyce-web');
    expect(by.web02!.groups).toEqual(['all', 'prod', 'web']);
    expect(by.web02!.jump).toEqual({ host: 'bastion.example', port: 2022, user: 'jump' });
    expect(by.special).toMatchObject({ address: '10.0.0.5', port: 2200, user: 'root' });
    expect(by.special!.vars.note).toBe('it is $(quoted) `here`');
    expect(by['db-a']).toMatchObject({ port: 2201, portBase: 9000, become: true });
    expect(inv.groups.prod!.hosts).toEqual(['web01', 'web02', 'web03', 'special', 'db-a', 'db-b']);
  });

  it('orders sibling groups by ansible_group_priority, then by name', () => {
    const text = (prio: string) => `[a]\nh\n[b]\nh\n[a:vars]\nx=from_a\n${prio}\n[b:vars]\nx=from_b\n`;
    expect(parseInventory(text(''), { source: 'hosts' }).hosts[0]!.vars.x).toBe('from_b');
    expect(parseInventory(text('ansible_group_priority=10'), { source: 'hosts' }).hosts[0]!.vars.x).toBe('from_a');
  });

  it('names each malformed line by its number, all at once', () => {
    const issues = issuesOf(
      [
        '[web]',
        'web1 ansible_host=10.0.0.1',
        'web2 oops',
        '[db',
        '[web:vars]',
        'no_equals_here',
        '[web:bogus]',
        '[ops:children]',
        'missing_group',
        '[web]',
        'web3 ansible_port=abc',
        "web4 x='unterminated",
      ].join('\n'),
    );
    expect(issues).toEqual([
      'hosts:3: expected key=value after host "web2", got "oops"',
      'hosts:4: invalid section header "[db" (expected [group], [group:vars] or [group:children])',
      'hosts:6: expected key=value in [web:vars], got "no_equals_here"',
      'hosts:7: section [web:bogus] has unknown type "bogus" (expected vars or children)',
      'hosts:9: group "missing_group" is used but never defined (add a [missing_group] section)',
      'hosts:11: host "web3": ansible_port: must be a whole number from 1 to 65535, got "abc"',
      `hosts:12: unclosed single quote in "web4 x='unterminated"`,
    ]);
  });

  it('reports a bad connection value at the line of the group var that set it', () => {
    expect(issuesOf('[web]\nw1\n\n[web:vars]\nansible_become=maybe\ndyce_state_dir=relative/dir\n')).toEqual([
      'hosts:5: host "w1": ansible_become: must be a boolean (true/false, yes/no), got "maybe"',
      'hosts:6: host "w1": dyce_state_dir: must be an absolute path',
    ]);
    expect(issuesOf('h ansible_port=70000')).toEqual([
      'hosts:1: host "h": ansible_port: must be a whole number from 1 to 65535, got 70000',
    ]);
    expect(issuesOf('h ansible_become_method=su')).toEqual([
      'hosts:1: host "h": ansible_become_method: only "sudo" is supported',
    ]);
    expect(issuesOf("h ansible_ssh_common_args='-o ProxyCommand=nc %h %p'")).toEqual([
      'hosts:1: host "h": ansible_ssh_common_args: ProxyCommand is not supported; use -o ProxyJump=user@host:port',
    ]);
    expect(issuesOf("h ansible_host=\"{{ lookup('env', 'X') }}\"")[0]).toContain('templated connection variables');
  });

  it('refuses a loop in :children', () => {
    expect(issuesOf('[a:children]\nb\n[b:children]\na\n').join('\n')).toMatch(/its own ancestor/);
  });

  it('warns about ssh options it does not act on', () => {
    const inv = parseInventory("h ansible_ssh_common_args='-o StrictHostKeyChecking=no -J j@b'", { source: 'hosts' });
    expect(inv.hosts[0]!.jump).toEqual({ host: 'b', port: 22, user: 'j' });
    expect(inv.warnings).toEqual([
      'hosts:1: host "h": ansible_ssh_common_args: ignoring ssh option "-o StrictHostKeyChecking=no" (Dyce does not use it)',
    ]);
  });

  it('reads values as Ansible does (Python literals, else text)', () => {
    expect(parseIniValue('2222')).toBe(2222);
    expect(parseIniValue('1.5')).toBe(1.5);
    expect(parseIniValue('True')).toBe(true);
    expect(parseIniValue('true')).toBe('true');
    expect(parseIniValue("'a b'")).toBe('a b');
    expect(parseIniValue("'a b' # note")).toBe('a b');
    expect(parseIniValue('0644')).toBe('0644');
    expect(parseIniValue('/usr/bin/python3')).toBe('/usr/bin/python3');
    expect(parseIniValue('["a", 1]')).toEqual(['a', 1]);
    expect(shellSplit(`a "b \\"c\\"" 'd e'#x`)).toEqual({ words: ['a', 'b "c"', 'd e'] });
  });

  it('expands ranges', () => {
    expect(expandHostRange('web[01:03]')).toEqual(['web01', 'web02', 'web03']);
    expect(expandHostRange('n[0:10:5].x')).toEqual(['n0.x', 'n5.x', 'n10.x']);
    expect(expandHostRange('h[a:c][1:2]')).toEqual(['ha1', 'ha2', 'hb1', 'hb2', 'hc1', 'hc2']);
    expect(expandHostRange('bad[3:1]')).toHaveProperty('error');
  });
});

describe('YAML inventory', () => {
  const yaml = [
    'all:',
    '  vars:',
    '    ansible_user: root',
    '    dyce_port_base: 8000',
    '  hosts:',
    '    solo:',
    '  children:',
    '    web:',
    '      vars:',
    '        ansible_become: yes',
    '      hosts:',
    '        web[1:2]:',
    '          ansible_host: 10.0.0.1',
    '        web3:2202:',
    '      children:',
    '        canary:',
    '          hosts:',
    '            web1:',
    '              dyce_state_dir: /srv/dyce',
    '          vars:',
    '            dyce_port_base: 9500',
    'db:',
    '  hosts:',
    '    db1: { ansible_host: 10.0.0.7, ansible_user: deploy }',
  ].join('\n');

  it('reads all/hosts/children/vars, ranges, ports and YAML 1.1 booleans with the same precedence', () => {
    const inv = parseInventory(yaml, { source: 'inventory.yml' });
    const by = Object.fromEntries(inv.hosts.map((h) => [h.name, h]));
    expect(Object.keys(by)).toEqual(['solo', 'web1', 'web2', 'web3', 'db1']);
    expect(by.solo).toMatchObject({ address: 'solo', user: 'root', become: false, portBase: 8000 });
    expect(by.web1).toMatchObject({ address: '10.0.0.1', become: true, portBase: 9500, stateDir: '/srv/dyce' });
    expect(by.web1!.groups).toEqual(['all', 'web', 'canary']);
    expect(by.web2).toMatchObject({ become: true, portBase: 8000 });
    expect(by.web3).toMatchObject({ port: 2202 });
    expect(by.db1).toMatchObject({ address: '10.0.0.7', user: 'deploy', groups: ['all', 'db'] });
    expect(inv.hosts[1]!.source).toEqual({ file: 'inventory.yml', line: 12 });
  });

  it('is detected by extension or by content', () => {
    expect(detectInventoryFormat(yaml, 'hosts')).toBe('yaml');
    expect(detectInventoryFormat('[web]\nw1', 'inv.yml')).toBe('yaml');
    expect(detectInventoryFormat('[web]\nw1', 'hosts')).toBe('ini');
    expect(detectInventoryFormat('w1 ansible_host=x', 'hosts')).toBe('ini');
  });

  it('names file and line for bad YAML, unknown keys and bad values', () => {
    expect(issuesOf('all:\n  hosts:\n    a: b: c\n', 'inv.yml')[0]).toMatch(/^inv\.yml:3: invalid YAML/);
    expect(issuesOf('all:\n  childern:\n    web:\n', 'inv.yml')).toEqual([
      'inv.yml:2: unexpected key "childern" in group "all" (only hosts, vars and children are valid)',
    ]);
    expect(issuesOf('all:\n  hosts:\n    a:\n      ansible_port: http\n', 'inv.yml')).toEqual([
      'inv.yml:4: host "a": ansible_port: must be a whole number from 1 to 65535, got "http"',
    ]);
    expect(issuesOf('all:\n  hosts: [a, b]\n', 'inv.yml')).toEqual([
      'inv.yml:2: "hosts" of group "all" must be a mapping',
    ]);
    expect(issuesOf('all:\n  vars:\n    pw: !vault |\n      $ANSIBLE_VAULT;1.1;AES256\n', 'inv.yml')).toEqual([
      'inv.yml:3: invalid YAML: !vault values are not supported: keep the secret in a vars file outside the repository and pass it with -e @file (or secret-extra-vars)',
    ]);
    expect(issuesOf('- a\n', 'inv.yml')[0]).toMatch(/^inv\.yml:1: a YAML inventory must be a mapping/);
    expect(issuesOf('all:\n  hosts:\n    a:\n    a:\n', 'inv.yml')[0]).toMatch(
      /^inv\.yml:3: invalid YAML: Map keys must be unique/,
    );
  });
});

describe('host patterns', () => {
  const inv = parseInventory(
    '[web]\nweb1\nweb2\nweb3\n[db]\ndb1\n[staging]\nweb3\ndb1\n[prod:children]\nweb\n[monitor]\nmon.example.com\n',
    { source: 'hosts' },
  );

  it('selects all, groups, hosts, unions, intersections, exclusions', () => {
    // Ansible's order: a group's own hosts, then its descendants breadth first (`ansible --list-hosts` agrees).
    expect(names(inv, 'all')).toEqual(['db1', 'web3', 'mon.example.com', 'web1', 'web2']);
    expect(names(inv, '*')).toHaveLength(5);
    expect(names(inv, 'web')).toEqual(['web1', 'web2', 'web3']);
    expect(names(inv, 'prod')).toEqual(['web1', 'web2', 'web3']);
    expect(names(inv, 'db:web1')).toEqual(['db1', 'web1']);
    expect(names(inv, 'db,web1')).toEqual(['db1', 'web1']);
    expect(names(inv, 'web:&staging')).toEqual(['web3']);
    expect(names(inv, 'all:!staging')).toEqual(['mon.example.com', 'web1', 'web2']);
    // Exclusions apply after unions wherever they are written.
    expect(names(inv, '!web3:web')).toEqual(['web1', 'web2']);
    expect(names(inv, '!db')).toEqual(['web3', 'mon.example.com', 'web1', 'web2']);
  });

  it('matches globs, regexes and subscripts', () => {
    expect(names(inv, 'web*')).toEqual(['web1', 'web2', 'web3']);
    expect(names(inv, '*.example.com')).toEqual(['mon.example.com']);
    expect(names(inv, '~(web|db)[13]')).toEqual(['web1', 'web3', 'db1']);
    expect(names(inv, 'web[0]')).toEqual(['web1']);
    expect(names(inv, 'web[-1]')).toEqual(['web3']);
    expect(names(inv, 'web[0:1]')).toEqual(['web1', 'web2']);
  });

  it('intersects with a limit and reports terms that matched nothing', () => {
    expect(names(inv, 'all', 'staging:!db')).toEqual(['web3']);
    const sel = selectHosts(inv, 'web:nope', '!web2');
    expect(sel.hosts.map((h) => h.name)).toEqual(['web1', 'web3']);
    expect(sel.unmatched).toEqual(['nope']);
  });
});

describe('jump host spec', () => {
  it('parses [user@]host[:port] and refuses chains', () => {
    expect(parseJumpSpec('bastion')).toEqual({ host: 'bastion', port: 22 });
    expect(parseJumpSpec('ops@10.0.0.1:2200')).toEqual({ host: '10.0.0.1', port: 2200, user: 'ops' });
    expect(parseJumpSpec('ssh://ops@[::1]:2200')).toEqual({ host: '::1', port: 2200, user: 'ops' });
    expect(parseJumpSpec('a@b,c@d')).toHaveProperty('error');
  });
});
