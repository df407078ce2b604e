import { beforeAll, describe, expect, it } from 'vitest';
import { freshPair, type Pair, playbookOf, runAnsible, runDyce, stateOf } from '../support/modules-diff.js';

/**
 * group, user, authorized_key, systemd/service and ufw against ansible-playbook, on two fresh machine VPSs (these
 * modules change a host's users, services and firewall: only machines of their own make that safe to test). Compared:
 * each task's changed/ok, the users, groups, keys, unit states and ufw rules; then --check and a rerun change nothing.
 */

// A throwaway hash of a throwaway password, and two public keys made for this test only.
const HASH = '$6$dycesalt$zEzhDHvoMovnfMU4jMa/rV/R8VCi4DjM1PzDdPErXiHgz8zbxSPcsbBoauEDIehQYB1B7A3gi2Sto/2ud/Q9u.';
const KEY1 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIUJ7q2gCNhsMVGvZLHiq6WvvAzlXv+i6A8bVsJgIZgo k1@test';
const KEY2 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN8BrrOKzgXhngW9SS/wMCeLd65givJLeof1tLrxKo/r k2@test';

const TASKS = `
- name: a group with a gid
  group: {name: webops, gid: 2345}
- name: a system group
  group: {name: svcgrp, system: true}
- name: a user with groups, shell and comment
  user: {name: alice, uid: 2001, groups: [webops, sudo, svcgrp], shell: /bin/bash, comment: Alice}
- name: append a group she has
  user: {name: alice, groups: webops, append: true}
- name: a user without a home
  user: {name: bob, create_home: false, shell: /usr/sbin/nologin}
- name: a password hash
  user: {name: bob, password: '${HASH}'}
- name: remove a user that is not there
  user: {name: nobody2, state: absent}
- name: a key
  authorized_key: {user: alice, key: '${KEY1}'}
- name: a key with options
  authorized_key: {user: alice, key: '${KEY2}', key_options: no-port-forwarding}
- name: remove a key that is not there
  authorized_key: {user: bob, key: '${KEY1}', state: absent, manage_dir: false, path: /tmp/bob_keys}
- name: a unit file
  copy:
    dest: /etc/systemd/system/demo.service
    content: "[Unit]\\nDescription=demo\\n[Service]\\nExecStart=/usr/bin/python3 -m http.server 8099\\n[Install]\\nWantedBy=multi-user.target\\n"
- name: started and enabled
  systemd: {name: demo, state: started, enabled: true, daemon_reload: true}
- name: already started
  service: {name: demo, state: started}
- name: ssh stays open
  ufw: {rule: allow, port: '22', proto: tcp}
- name: http
  ufw: {rule: allow, port: '80', proto: tcp}
- name: https, limited, with a comment
  ufw: {rule: limit, port: '443', proto: tcp, comment: https}
- name: a source network denied
  ufw: {rule: deny, from_ip: 10.9.9.0/24}
- name: incoming denied by default
  ufw: {default: deny, direction: incoming}
- name: logging
  ufw: {logging: 'on'}
- name: enabled
  ufw: {state: enabled}
- name: delete a rule that is not there
  ufw: {rule: allow, port: '9999', proto: tcp, delete: true}
`;

const STATE = `getent passwd alice bob; getent group webops svcgrp sudo; id alice; getent shadow bob | cut -d: -f2
ls -d /home/* ; stat -c '%n %a %U %G' /home/alice/.ssh /home/alice/.ssh/authorized_keys; cat /home/alice/.ssh/authorized_keys
systemctl is-active demo; systemctl is-enabled demo
ufw status verbose; grep -h '^### tuple' /lib/ufw/user.rules /lib/ufw/user6.rules`;

describe('modules: group, user, authorized_key, systemd/service, ufw (differential against ansible-playbook)', () => {
  let p: Pair;
  beforeAll(async () => {
    p = await freshPair();
  }, 300_000);

  it('same changed flags and the same users, keys, services and firewall; --check and the rerun change nothing', async () => {
    const playbook = playbookOf(TASKS);
    const a1 = await runAnsible(p, playbook);
    const d1 = await runDyce(p, playbook);
    expect(a1.code, a1.output).toBe(0);
    expect(d1.code, d1.output).toBe(0);
    expect(d1.statuses).toEqual(a1.statuses);
    const s1 = await stateOf(p, STATE);
    expect(s1.dyce).toEqual(s1.ansible);
    expect(s1.ansible).toContain('ALLOW IN');
    expect(s1.ansible).toContain(HASH);
    // The password hash never reached a command line: it is not in the output either.
    expect(d1.output).not.toContain(HASH);

    const a2 = await runAnsible(p, playbook, ['--check']);
    const d2 = await runDyce(p, playbook, ['--check']);
    expect(d2.statuses).toEqual(a2.statuses);
    const a3 = await runAnsible(p, playbook);
    const d3 = await runDyce(p, playbook);
    expect(d3.statuses).toEqual(a3.statuses);
    expect(d3.statuses.filter(([, s]) => s === 'changed')).toEqual([]);
    expect((await stateOf(p, STATE)).dyce).toEqual(s1.dyce);
  }, 600_000);

  it('--check reports a new user, a stopped service and a new rule, and changes nothing', async () => {
    const playbook = playbookOf(`
- name: new user
  user: {name: carol}
- name: stop
  service: {name: demo, state: stopped}
- name: new rule
  ufw: {rule: allow, port: '8080', proto: tcp}
- name: restarted is always a change
  systemd: {name: demo, state: restarted}
`);
    const before = await stateOf(p, STATE);
    const a = await runAnsible(p, playbook, ['--check']);
    const d = await runDyce(p, playbook, ['--check']);
    expect(d.statuses).toEqual(a.statuses);
    expect(d.statuses.map(([, s]) => s)).toEqual(['changed', 'changed', 'changed', 'changed']);
    expect(await stateOf(p, STATE)).toEqual(before);
  });
});
