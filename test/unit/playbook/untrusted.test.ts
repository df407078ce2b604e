import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { readExtraVars } from '../../../src/playbook/extra-vars.js';
import { Templar } from '../../../src/template/templar.js';
import { type Answer, playOnRecorders } from './harness.js';

/**
 * Data from hosts is never code, and templates cannot reach code: the CVE-2016-9587 class on Dyce's engine.
 * Every payload, if it ran, would set globalThis.pwned or print 49.
 */

const RUN = 'globalThis.pwned = 1; return 7 * 7';
const ESCAPES = [
  `{{ range.constructor("${RUN}")() }}`,
  `{{ cycler.constructor("${RUN}")() }}`,
  `{{ joiner.constructor("${RUN}")() }}`,
  `{{ joiner().constructor.constructor("${RUN}")() }}`,
  `{{ constructor.constructor("${RUN}")() }}`,
  `{{ x.constructor.constructor("${RUN}")() }}`,
  `{{ x["constr" ~ "uctor"]["constr" ~ "uctor"]("${RUN}")() }}`,
  `{% set c = "constructor" %}{{ range[c][c]("${RUN}")() }}`,
  `{{ x.__proto__.constructor.constructor("${RUN}")() }}`,
  `{{ range.prototype }}`,
  `{{ range.__lookupGetter__("__proto__").call(range) }}`,
  `{{ range.call.call(range.bind, 1) }}`,
  `{{ (x | list).constructor.from }}`,
  `{{ [1] | map("constructor") }}`,
  `{{ x | attr("constructor") }}`,
  `{{ [x] | selectattr("constructor") | list }}`,
  `{{ lipsum.__globals__ }}`,
  `{{ ''.__class__.__mro__ }}`,
  `{% for k, v in {"a": 1}.items() %}{{ v.constructor("${RUN}")() }}{% endfor %}`,
];

describe('the template sandbox', () => {
  it('the payloads run code in plain nunjucks (so the checks below can fail)', () => {
    const out = execFileSync(
      process.execPath,
      ['-e', `process.stdout.write(require('nunjucks').renderString(process.argv[1], { x: 'a' }))`, ESCAPES[0]!],
      { encoding: 'utf8' },
    );
    expect(out).toBe('49');
  });

  it.each(ESCAPES)('refuses %s', (payload) => {
    const t = new Templar();
    (globalThis as Record<string, unknown>).pwned = undefined;
    let out: unknown;
    let error: unknown;
    try {
      out = t.render(payload, { lookup: (n) => (n === 'x' ? { value: 'a' } : undefined) });
    } catch (e) {
      error = e;
    }
    expect((globalThis as Record<string, unknown>).pwned).toBeUndefined();
    expect(String(out)).not.toContain('49');
    expect(String(out)).not.toMatch(/function|native code|\[object/);
    expect(error).toBeInstanceOf(Error);
  });

  it('keeps what playbooks use: members, indexes, Python methods, range/cycler/joiner', () => {
    const t = new Templar();
    const vars: Record<string, unknown> = { x: 'a,b', d: { k: 'v' }, l: [1, 2, 3] };
    const scope = { lookup: (n: string) => (Object.hasOwn(vars, n) ? { value: vars[n] } : undefined) };
    expect(t.render('{{ d.k }}{{ d["k"] }}{{ l[-1] }}{{ x.split(",") | length }}', scope)).toBe('vv32');
    expect(t.render('{{ d.keys() | list }} {{ x.startswith("a") }} {{ " y ".strip() }}', scope)).toBe("['k'] True y");
    expect(
      t.render('{% for i in range(2) %}{{ i }}{% endfor %}{% set c = cycler("p", "q") %}{{ c.next() }}', scope),
    ).toBe('01p');
  });
});

const PAYLOAD = `{{ range.constructor("${RUN}")() }}{{ 7 * 7 }}`;

/** A host whose os-release and docker errors carry template payloads. */
const hostileHost: Answer = (argv) => {
  const line = argv.join(' ');
  if (line.includes('os-release'))
    return { code: 0, stdout: `id=debian\nversion=12\narch=x86_64\ncodename=${PAYLOAD}\nnodename=vps\n`, stderr: '' };
  if (argv.includes('login')) return { code: 1, stdout: '', stderr: `Error response from daemon: ${PAYLOAD}` };
  return { code: 0, stdout: '/root\n{}', stderr: '' };
};

describe('data from hosts is never code', () => {
  const playbook = `
- hosts: all
  tasks:
    - debug:
        msg: "host {{ ansible_distribution_release }} like {{ ansible_facts.distribution_release }}"
    - set_fact:
        derived: "{{ ansible_distribution_release }}"
        wrapped: ["{{ ansible_distribution_release }}"]
    - debug: var=derived
    - debug:
        msg: "{{ item }}"
      loop: "{{ wrapped }}"
    - docker_login:
        registry_url: 127.0.0.1:5000
        username: u
        password: p
      register: login
      ignore_errors: true
    - set_fact:
        err: "{{ login.msg }}"
    - debug:
        msg: "{{ err }}"
    - assert:
        that:
          - derived == ansible_distribution_release
          - "'7 * 7' in err"
`;

  it('facts, registered results, set_fact and loop items come out literally; nothing runs', async () => {
    (globalThis as Record<string, unknown>).pwned = undefined;
    const r = await playOnRecorders(playbook, { answer: hostileHost });
    expect((globalThis as Record<string, unknown>).pwned).toBeUndefined();
    // The payload reached the output as text (the search works) ...
    const shown = JSON.stringify(PAYLOAD).slice(1, -1);
    expect(r.text).toContain(`host ${shown} like ${shown}`);
    expect(r.text).toContain(`"derived": "${shown}"`);
    expect(r.text).toContain(`(item=${PAYLOAD})`);
    expect(r.text).toContain(
      `"msg": "docker login 127.0.0.1:5000 failed (exit 1): Error response from daemon: ${shown}"`,
    );
    // ... and was never rendered.
    expect(r.everything).not.toContain('49');
    expect(r.everything).not.toMatch(/not allowed in a template/);
    expect(r.exitCode).toBe(0);
  });
});

describe('!unsafe and secret-extra-vars are never templated', () => {
  it('a secret Zq{{9}}x arrives as it is, and a{{b.c}} does not fail', async () => {
    const pw = 'Zq{{9}}x';
    const r = await playOnRecorders(
      `
- hosts: all
  gather_facts: false
  tasks:
    - docker_login:
        registry_url: 127.0.0.1:5000
        username: u
        password: "{{ DOCKER_PASSWORD }}"
      no_log: true
    - debug:
        msg: "other {{ OTHER | length }}"
`,
      {
        unsafe: { DOCKER_PASSWORD: pw, OTHER: 'a{{b.c}}' },
        answer: (argv) => ({ code: 0, stdout: argv.includes('login') ? '' : '/root\n{}', stderr: '' }),
      },
    );
    expect(r.exitCode).toBe(0);
    const login = r.calls.find((c) => c.argv.includes('login'))!;
    expect(login.opts.stdin).toBe(pw);
    expect(r.text).toContain('other 8');
    expect(r.everything).not.toContain('Zq9x');
  });

  it('!unsafe in the playbook and in an extra-vars file keeps the braces', async () => {
    const dir = execFileSync('mktemp', ['-d'], { encoding: 'utf8' }).trim();
    execFileSync('sh', ['-c', `printf '%s\\n' 'tag: !unsafe "v1{{ 6 * 7 }}"' > ${dir}/e.yml`]);
    const extra = await readExtraVars([{ text: `@${dir}/e.yml`, origin: '-e' }]);
    const r = await playOnRecorders(
      `
- hosts: all
  gather_facts: false
  vars:
    raw: !unsafe '{{ 6 * 7 }} "quoted" \\ {% end %}'
    via: "{{ raw }}!"
  tasks:
    - debug: msg="{{ via }} {{ tag }}"
`,
      { extra: extra.vars },
    );
    expect(r.exitCode).toBe(0);
    expect(r.text).toContain('"msg": "{{ 6 * 7 }} \\"quoted\\" \\\\ {% end %}! v1{{ 6 * 7 }}"');
    expect(r.everything).not.toContain('42');
  });
});

describe('the example workflows', () => {
  it('never paste a git ref (chosen by whoever pushes a tag) into extra-vars, where it would be rendered', () => {
    const dir = join(process.cwd(), 'examples', 'workflows');
    const found: string[] = [];
    let checked = 0;
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.yml'))) {
      const wf = parseYaml(readFileSync(join(dir, f), 'utf8')) as {
        jobs: Record<string, { steps?: { with?: Record<string, unknown> }[] }>;
      };
      for (const job of Object.values(wf.jobs))
        for (const step of job.steps ?? []) {
          const ev = step.with?.['extra-vars'];
          if (typeof ev !== 'string') continue;
          checked++;
          if (/\$\{\{\s*github\.(ref|ref_name|head_ref|event)\b/.test(ev)) found.push(`${f}: ${ev}`);
        }
    }
    expect(checked).toBeGreaterThan(0);
    expect(found).toEqual([]);
  });
});
