import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePlaybook, parseSequence, splitFreeForm } from '../../../src/playbook/parse.js';
import { InputError } from '../../../src/util/errors.js';
import { MELTON_DIR } from '../../support/melton.js';

const melton = readFileSync(join(MELTON_DIR, 'playbook.yml'), 'utf8');

function issuesOf(text: string, file = 'bad.yml'): string[] {
  try {
    parsePlaybook(text, file);
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return (error as InputError).issues;
  }
  throw new Error('expected the playbook to be refused');
}

const play = (tasks: string) => `- hosts: all\n  tasks:\n${tasks}`;

describe('parsePlaybook', () => {
  it('reads the Melton playbook unchanged', () => {
    const pb = parsePlaybook(melton, 'playbook.yml');
    expect(pb.plays).toHaveLength(1);
    const p = pb.plays[0]!;
    expect(p.hosts).toBe('all');
    expect(p.become).toBe(true);
    expect(p.vars.create_containers).toBe(2);
    expect(p.tasks.map((t) => t.module)).toEqual(['apt', 'docker_login', 'docker_image', 'docker_container']);
    const [apt, login, , container] = p.tasks;
    expect(apt!.args).toEqual({ name: '{{ item }}', state: 'present' });
    expect(apt!.loop).toMatchObject({ kind: 'loop', items: ['ca-certificates', 'curl'] });
    expect(login!.at.line).toBe(18);
    expect(container!.loop).toMatchObject({ kind: 'sequence', spec: 'count={{ create_containers }}' });
    expect(container!.args.log_options).toMatchObject({ 'loki-retries': 5 });
    expect(container!.argLines.log_driver).toBe(40);
  });

  it('accepts FQCNs and maps them to the module', () => {
    const pb = parsePlaybook(
      play('    - community.docker.docker_container: {name: a, image: b}\n    - ansible.builtin.debug: msg=hi\n'),
      'f.yml',
    );
    expect(pb.plays[0]!.tasks.map((t) => t.module)).toEqual(['docker_container', 'debug']);
  });

  it('refuses an unknown module, naming file:line', () => {
    expect(issuesOf(play('    - name: x\n      frobnicate: a=1\n'))).toEqual([
      expect.stringMatching(/^bad\.yml:4: unknown module or task keyword "frobnicate"/),
    ]);
  });

  it('refuses an unknown filter and lookup plugin at parse time', () => {
    expect(issuesOf(play('    - debug:\n        msg: "{{ x | frobnicate }}"\n'))).toEqual([
      expect.stringMatching(/^bad\.yml:4: unknown filter "frobnicate"/),
    ]);
    expect(issuesOf(play("    - debug:\n        msg: \"{{ lookup('password', '/tmp/x') }}\"\n"))).toEqual([
      expect.stringMatching(/^bad\.yml:4: lookup plugin "password" is not supported/),
    ]);
  });

  it('refuses an unknown test', () => {
    expect(issuesOf(play('    - debug: msg=x\n      when: x is frobbed\n'))).toEqual([
      expect.stringMatching(/^bad\.yml:4: unknown test "frobbed"/),
    ]);
  });

  it('refuses bad YAML with its line', () => {
    expect(issuesOf('- hosts: all\n  tasks:\n    - debug: {msg: 1\n    - debug: msg=2\n')).toEqual([
      expect.stringMatching(/^bad\.yml:\d+: invalid YAML/),
    ]);
    expect(issuesOf('- hosts: all\n  hosts: again\n')[0]).toMatch(/^bad\.yml:2: invalid YAML: Map keys must be unique/);
  });

  it('refuses a when that is not an expression', () => {
    expect(issuesOf(play('    - debug: msg=x\n      when: "x = = 1"\n'))).toEqual([
      expect.stringMatching(/^bad\.yml:4: when is not an expression: "x = = 1"/),
    ]);
    expect(issuesOf(play('    - debug: msg=x\n      when: "{{ x }} and y"\n'))).toEqual([
      expect.stringMatching(/^bad\.yml:4: when is a bare expression/),
    ]);
  });

  it('refuses unsupported keywords and parameters by name', () => {
    const issues = issuesOf(
      `- hosts: all\n  vars_prompt: []\n  tasks:\n    - debug: msg=x\n      async: 10\n    - docker_container:\n        name: a\n        colour: blue\n    - debug: msg=x\n      with_nested: [[1]]\n    - debug: msg=x\n      apt: name=x\n`,
    );
    expect(issues).toEqual([
      expect.stringMatching(/^bad\.yml:2: play keyword "vars_prompt" is not supported/),
      expect.stringMatching(/^bad\.yml:5: task keyword "async" is not supported/),
      expect.stringMatching(/^bad\.yml:8: docker_container: unsupported parameter "colour"/),
      expect.stringMatching(/^bad\.yml:10: task keyword "with_nested" is not supported/),
      expect.stringMatching(/^bad\.yml:1[12]: more than one module in a task/),
    ]);
  });

  it('refuses template syntax errors and bad keyword types', () => {
    const issues = issuesOf(play('    - debug:\n        msg: "{{ foo "\n      register: 1bad\n      become: maybe\n'));
    expect(issues).toEqual([
      expect.stringMatching(/^bad\.yml:4: debug: template error/),
      expect.stringMatching(/^bad\.yml:5: register: must be a valid variable name/),
      expect.stringMatching(/^bad\.yml:6: become: /),
    ]);
  });

  it('refuses a play that is not a list', () => {
    expect(issuesOf('hosts: all\n')[0]).toMatch(/^bad\.yml:1: a playbook is a list of plays/);
  });

  it('reads YAML 1.1 booleans as Ansible does', () => {
    const pb = parsePlaybook('- hosts: all\n  become: yes\n  gather_facts: no\n  tasks: []\n', 'f.yml');
    expect(pb.plays[0]).toMatchObject({ become: true, gatherFacts: false });
  });
});

describe('splitFreeForm', () => {
  it('keeps {{ }} and quotes together', () => {
    expect(splitFreeForm('name={{ item }} state=present msg="two words" x=\'a b\'')).toEqual({
      args: { name: '{{ item }}', state: 'present', msg: 'two words', x: 'a b' },
      raw: [],
    });
    expect(splitFreeForm('msg="unclosed')).toEqual({ error: expect.stringMatching(/unbalanced/) });
  });
});

describe('parseSequence', () => {
  it('handles count, start/end/stride/format and the shortcut form', () => {
    expect(parseSequence('count=3')).toEqual({ items: ['1', '2', '3'] });
    expect(parseSequence('count=0')).toEqual({ items: [] });
    expect(parseSequence('start=0 end=10 stride=5')).toEqual({ items: ['0', '5', '10'] });
    expect(parseSequence('start=1 end=2 format=app%02d')).toEqual({ items: ['app01', 'app02'] });
    expect(parseSequence('4-6')).toEqual({ items: ['4', '5', '6'] });
    expect(parseSequence('count=x')).toEqual({ error: expect.stringMatching(/count must be a whole number/) });
    expect(parseSequence('count=2 end=3')).toEqual({ error: expect.stringMatching(/mutually exclusive/) });
    expect(parseSequence('colour=1')).toEqual({ error: expect.stringMatching(/unknown option/) });
  });
});

describe('errors people can act on', () => {
  it('gives one message per YAML mistake, and refuses !vault with what to do instead', () => {
    expect(
      issuesOf('- hosts: all\n  tasks:\n    - debug: {msg: 1\n    - debug: msg=2\n    - debug: msg=3\n'),
    ).toHaveLength(1);
    expect(issuesOf('- hosts: all\n  vars:\n    p: !vault |\n      $ANSIBLE_VAULT;1.1;AES256\n      3339\n')).toEqual([
      expect.stringMatching(/^bad\.yml:3: invalid YAML: !vault values are not supported: .*-e @file/),
    ]);
  });

  it('reports every problem of every file in one run: blocks, rescue and included files too', () => {
    const files: Record<string, string> = {
      'inc.yml': '- debug: msg=ok\n- frobnicate: x=1\n',
    };
    let issues: string[] = [];
    try {
      parsePlaybook(
        '- hosts: all\n  tasks:\n    - block:\n        - nosuchmodule: a=1\n      rescue:\n        - debug: msg="{{ x | nosuchfilter }}"\n    - include_tasks: inc.yml\n    - debug: msg="{{ lookup(\'password\', \'x\') }}"\n',
        '/pb/bad.yml',
        (p) => files[p.replace(/^\/pb\//, '')],
      );
    } catch (error) {
      issues = (error as InputError).issues;
    }
    expect(issues).toEqual([
      expect.stringMatching(/^\/pb\/bad\.yml:4: unknown module or task keyword "nosuchmodule"/),
      expect.stringMatching(/^\/pb\/bad\.yml:6: unknown filter "nosuchfilter"/),
      expect.stringMatching(/^\/pb\/bad\.yml:8: lookup plugin "password" is not supported/),
      expect.stringMatching(/^\/pb\/inc\.yml:2: unknown module or task keyword "frobnicate"/),
    ]);
  });
});
