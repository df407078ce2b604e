import { beforeAll, describe, expect, it } from 'vitest';
import { freshPair, type Pair, playbookOf, runAnsible, runDyce, stateOf } from '../support/modules-diff.js';

/**
 * file, copy, stat and lineinfile against ansible-playbook: the same task file on two fresh machine VPSs (mvps1 under
 * ansible-playbook, mvps2 under dyce play). Compared: each task's changed/ok, the files' content, mode and owner
 * (and what `stat` returned, written to a file by a later task), then --check and a rerun reporting changed=0.
 */

const TASKS = String.raw`
- name: a directory with mode and owner
  file: {path: /srv/dm/conf, state: directory, mode: '0750', owner: deploy, group: deploy}
- name: a file from content, only when absent (force no)
  copy: {dest: /srv/dm/conf/app.conf, content: "a=1\nb=2\nold=1\n", mode: '0640', owner: root, group: deploy, force: false}
- name: another file, with backup
  copy: {dest: /srv/dm/conf/other.conf, content: "x\n", backup: true}
- name: replace a line by regexp
  lineinfile: {path: /srv/dm/conf/app.conf, regexp: '^b=', line: 'b=3'}
- name: insert after a line
  lineinfile: {path: /srv/dm/conf/app.conf, insertafter: '^a=', line: 'a2=9'}
- name: insert before a line
  lineinfile: {path: /srv/dm/conf/app.conf, insertbefore: '^b=', line: '# b follows'}
- name: a line at the beginning
  lineinfile: {path: /srv/dm/conf/app.conf, insertbefore: BOF, line: '# top'}
- name: create a file for a line
  lineinfile: {path: /srv/dm/new.txt, line: hello, create: true}
- name: remove lines that are not there
  lineinfile: {path: /srv/dm/conf/app.conf, regexp: '^zzz', state: absent}
- name: remove a line
  lineinfile: {path: /srv/dm/conf/app.conf, line: 'old=1', state: absent}
- name: backrefs
  lineinfile: {path: /srv/dm/conf/app.conf, regexp: '^(a)=(\d+)$', line: '\1 = \2', backrefs: true}
- name: backrefs without a match change nothing
  lineinfile: {path: /srv/dm/conf/app.conf, regexp: '^(nomatch)=(\d+)$', line: '\1', backrefs: true}
- name: a symlink
  file: {path: /srv/dm/link, src: /srv/dm/conf/app.conf, state: link}
- name: stat a file
  stat: {path: /srv/dm/conf/app.conf}
  register: st
- name: record what stat said
  copy:
    dest: /srv/dm/stat.txt
    content: "{{ st.stat.exists }} {{ st.stat.mode }} {{ st.stat.isreg }} {{ st.stat.isdir }} {{ st.stat.pw_name }} {{ st.stat.gr_name }} {{ st.stat.size }} {{ st.stat.checksum }}\n"
- name: stat a link and a missing path
  stat: {path: /srv/dm/link}
  register: lnk
- name: stat a missing path
  stat: {path: /srv/dm/nope}
  register: missing
- name: record those
  copy: {dest: /srv/dm/stat2.txt, content: "{{ lnk.stat.islnk }} {{ lnk.stat.lnk_source }} {{ missing.stat.exists }}\n"}
- name: only the mode of an existing file
  file: {path: /srv/dm/new.txt, mode: '0644'}
- name: a copy of a file on the host
  copy: {src: /srv/dm/conf/app.conf, dest: /srv/dm/app.copy, remote_src: true, mode: '0600'}
- name: a sudoers file checked by visudo before it is moved in
  copy: {dest: /etc/sudoers.d/dm, content: "deploy ALL=(ALL) NOPASSWD: /bin/true\n", mode: '0440', validate: '/usr/sbin/visudo -cf %s'}
- name: remove what is not there
  file: {path: /srv/dm/gone, state: absent}
- name: a directory tree
  file: {path: /srv/dm/tree/a/b, state: directory, mode: '0700'}
`;

const STATE = String.raw`cd /srv/dm && find . -not -name '*~' -printf '%p %y %m %u %g %s %l\n' | sort && find . -name '*~' | wc -l && for f in $(find . -type f -not -name '*~' | sort); do echo "== $f"; cat "$f"; done; stat -c '%n %a %U' /etc/sudoers.d/dm; cat /etc/sudoers.d/dm`;

describe('modules: file, copy, stat, lineinfile (differential against ansible-playbook)', () => {
  let p: Pair;
  beforeAll(async () => {
    p = await freshPair();
  }, 300_000);

  it('same changed flags and the same files; --check and the rerun change nothing', async () => {
    const playbook = playbookOf(TASKS);
    const a1 = await runAnsible(p, playbook);
    const d1 = await runDyce(p, playbook);
    expect(a1.code, a1.output).toBe(0);
    expect(d1.code, d1.output).toBe(0);
    expect(d1.statuses).toEqual(a1.statuses);
    expect(a1.statuses.filter(([, s]) => s === 'changed').length).toBeGreaterThan(10);
    const s1 = await stateOf(p, STATE);
    expect(s1.dyce).toEqual(s1.ansible);
    expect(s1.ansible).toContain('== ./conf/app.conf\n# top\na = 1\na2=9\n# b follows\nb=3\n');

    const a2 = await runAnsible(p, playbook, ['--check']);
    const d2 = await runDyce(p, playbook, ['--check']);
    expect(d2.statuses).toEqual(a2.statuses);
    const a3 = await runAnsible(p, playbook);
    const d3 = await runDyce(p, playbook);
    expect(d3.statuses).toEqual(a3.statuses);
    expect(d3.statuses.filter(([, s]) => s === 'changed')).toEqual([]);
    expect((await stateOf(p, STATE)).dyce).toEqual(s1.dyce);
  }, 600_000);

  it('--check reports a change to content, a mode and a line, and changes nothing', async () => {
    const playbook = playbookOf(String.raw`
- name: new content
  copy: {dest: /srv/dm/conf/other.conf, content: "y\n"}
- name: new mode
  file: {path: /srv/dm/new.txt, mode: '0600'}
- name: new line
  lineinfile: {path: /srv/dm/conf/app.conf, line: 'c=4'}
`);
    const before = await stateOf(p, STATE);
    const a = await runAnsible(p, playbook, ['--check']);
    const d = await runDyce(p, playbook, ['--check']);
    expect(d.statuses).toEqual(a.statuses);
    expect(d.statuses.map(([, s]) => s)).toEqual(['changed', 'changed', 'changed']);
    expect(await stateOf(p, STATE)).toEqual(before);
  });
});
