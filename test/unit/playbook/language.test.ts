import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { playOnRecorders } from './harness.js';

/**
 * The language on recording executors: roles (dependencies, defaults, vars, handlers, templates), block/rescue/
 * always, include_tasks with a loop, include_vars, lookups, handlers with listen and flush_handlers, run_once,
 * delegate_to. The recap is the one ansible-playbook 2.14 prints for the same files (test/lab/playbook-differential
 * runs both side by side on the lab).
 */
const dir = join(process.cwd(), 'test/fixtures/playbooks/language');
const file = join(dir, 'playbook.yml');
const hosts = 'h1 ansible_connection=local\nh2 ansible_connection=local\n';

describe('the language', () => {
  it('runs the feature playbook with the recap ansible-playbook gives', async () => {
    const r = await playOnRecorders(readFileSync(file, 'utf8'), { file, hosts });
    expect(r.exitCode).toBe(0);
    expect(r.text).toMatch(/h1\s+: ok=20\s+changed=2\s+unreachable=0\s+failed=0\s+skipped=1\s+rescued=1\s+ignored=0/);
    expect(r.text).toMatch(/h2\s+: ok=19\s+changed=2\s+unreachable=0\s+failed=0\s+skipped=1\s+rescued=1\s+ignored=0/);
    expect(r.text).not.toContain('localhost  ');
    const msgs = r.json.run.plays[0]!.tasks.map((t) => [t.task.name, t.hosts.h1?.msg]);
    expect(msgs).toContainEqual(['web : web says', 'web 80 myweb hi']);
    expect(msgs).toContainEqual(['web : template lookup', 'motd for myweb on h1']);
    expect(msgs).toContainEqual(['debug', 'rescued  True']);
    expect(msgs).toContainEqual(['debug', 'included b P']);
    expect(r.text).toContain('RUNNING HANDLER [web : restart web]');
    expect(r.text).toContain('RUNNING HANDLER [h2]');
    expect(r.text.indexOf('RUNNING HANDLER [h2]')).toBeLessThan(r.text.indexOf('after flush'));
    expect(r.text).not.toContain('never');
  });

  it('--tags and --skip-tags select tasks, blocks hand their tags down', async () => {
    const pb = `
- hosts: all
  gather_facts: false
  tasks:
    - block:
        - debug: msg=one
        - debug: msg=two
          tags: [b]
      tags: [a]
    - debug: msg=three
    - debug: msg=four
      tags: [always]
`;
    const only = await playOnRecorders(pb, { tags: ['b'] });
    expect(only.json.run.plays[0]!.tasks.map((t) => t.hosts.h1?.msg)).toEqual(['two', 'four']);
    const skip = await playOnRecorders(pb, { skipTags: ['a'] });
    expect(skip.json.run.plays[0]!.tasks.map((t) => t.hosts.h1?.msg)).toEqual(['three', 'four']);
  });

  it('until/retries/delay retries until the condition holds, and fails after the last attempt', async () => {
    const pb = `
- hosts: all
  gather_facts: false
  tasks:
    - set_fact: n=0
    - name: counts
      set_fact:
        n: "{{ n | int + 1 }}"
      register: r
      until: n | int >= 3
      retries: 5
      delay: 0
    - debug: msg="{{ n }} {{ r.attempts }}"
    - debug: msg=x
      register: never
      until: false
      retries: 1
      delay: 0
`;
    const r = await playOnRecorders(pb);
    expect(r.json.run.plays[0]!.tasks[2]!.hosts.h1!.msg).toBe('3 3');
    expect(r.json.run.plays[0]!.tasks[3]!.hosts.h1).toMatchObject({ failed: true, attempts: 1 });
    expect(r.exitCode).toBe(2);
  });

  it('any_errors_fatal stops every host; max_fail_percentage counts the batch; serial lists batch hosts', async () => {
    const hosts3 = 'a ansible_connection=local\nb ansible_connection=local\nc ansible_connection=local\n';
    const fatal = await playOnRecorders(
      `- hosts: all\n  gather_facts: false\n  any_errors_fatal: true\n  tasks:\n    - assert: {that: "inventory_hostname != 'a'"}\n    - debug: msg=after\n`,
      { hosts: hosts3 },
    );
    expect(fatal.json.run.plays[0]!.tasks.map((t) => t.task.name)).toEqual(['assert']);
    expect(fatal.exitCode).toBe(2);
    const serial = await playOnRecorders(
      `- hosts: all\n  gather_facts: false\n  serial: [1, 2]\n  tasks:\n    - debug: msg="{{ ansible_play_batch | join(',') }}"\n`,
      { hosts: hosts3 },
    );
    expect(serial.json.run.plays[0]!.tasks.map((t) => Object.values(t.hosts).map((h) => h.msg))).toEqual([
      ['a'],
      ['b,c', 'b,c'],
    ]);
    const budget = await playOnRecorders(
      `- hosts: all\n  gather_facts: false\n  max_fail_percentage: 30\n  tasks:\n    - assert: {that: "inventory_hostname != 'a'"}\n    - debug: msg=after\n`,
      { hosts: hosts3 },
    );
    expect(budget.json.run.plays[0]!.tasks.map((t) => t.task.name)).toEqual(['assert']);
  });

  it('check_mode on a task runs it in check mode; --check with check_mode: false runs it for real', async () => {
    const pb = `- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: msg="{{ ansible_check_mode }}"\n    - docker_image: {name: "alpine:3", source: pull}\n      check_mode: true\n`;
    const r = await playOnRecorders(pb, {
      answer: (argv) => ({ code: argv.includes('inspect') ? 1 : 0, stdout: '', stderr: '' }),
    });
    expect(r.calls.some((c) => c.argv.includes('pull'))).toBe(false);
  });
});
