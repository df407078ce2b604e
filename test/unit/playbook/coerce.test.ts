import { describe, expect, it } from 'vitest';
import { parsePlaybook } from '../../../src/playbook/parse.js';
import { InputError } from '../../../src/util/errors.js';
import { playOnRecorders } from './harness.js';

/** Ansible's argument coercion, and literal arguments checked at parse time wherever they are (blocks too). */
function issuesOf(text: string): string[] {
  try {
    parsePlaybook(text, 'bad.yml');
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return (error as InputError).issues;
  }
  return [];
}

describe('argument coercion', () => {
  it('reads strings as Ansible does: ports "80:80" is a list, env "A=1 B=2" a dict, detach "yes" a boolean', async () => {
    const r = await playOnRecorders(
      `- hosts: all\n  gather_facts: false\n  tasks:\n    - docker_container:\n        name: c1\n        image: alpine:3\n        ports: "8080:80"\n        env: "A=1 B=two"\n        restart_retries: "3"\n        detach: "yes"\n`,
      {
        answer: (argv) => ({
          code: 0,
          stdout: String(argv[2] ?? '').includes('container inspect') ? '[]\n--dyce--\n' : '/root\n',
          stderr: '',
        }),
      },
    );
    expect(r.text).not.toContain('FAILED');
    const run = r.calls.find((c) => c.argv.includes('run') || c.argv.includes('create'));
    expect(run?.argv.join(' ')).toContain('8080:80');
    expect(run?.opts.stdin).toBe('A=1\nB=two\n');
  });

  it('refuses a bad literal at parse time, inside a block, at the key, under the name the user wrote', () => {
    const issues = issuesOf(
      `- hosts: all\n  tasks:\n    - block:\n        - docker_container:\n            name: c1\n            image: alpine:3\n            ports: {a: 1}\n            detach: maybe\n            restart_retries: three\n`,
    );
    expect(issues).toEqual([
      expect.stringMatching(/^bad\.yml:7: docker_container: ports(\.\w+)?: /),
      'bad.yml:8: docker_container: detach: "maybe" is not a valid boolean (use true or false)',
      'bad.yml:9: docker_container: restart_retries: "three" is not a whole number',
    ]);
  });

  it('leaves templated arguments to run time', () => {
    expect(
      issuesOf(`- hosts: all\n  tasks:\n    - docker_container: {name: c1, image: a, detach: "{{ d }}"}\n`),
    ).toEqual([]);
  });
});
