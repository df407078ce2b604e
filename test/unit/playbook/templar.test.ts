import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseExtraVarsText, readExtraVars } from '../../../src/playbook/extra-vars.js';
import { type Scope, Templar, TemplateError, UndefinedVariableError } from '../../../src/template/templar.js';

const scopeOf = (vars: Record<string, unknown>): Scope => ({
  lookup: (n) => (Object.hasOwn(vars, n) ? { value: vars[n] } : undefined),
});

describe('Templar', () => {
  const t = new Templar();
  const vars = scopeOf({
    REGISTRY: '127.0.0.1:5000',
    image: '{{ REGISTRY }}/meltondevops/app',
    base_port: 8000,
    item: '2',
    list: ['a', 'b'],
    flag: true,
    d: { a: 1 },
    pw: '{{ DOCKER_PASSWORD }}',
    user: '{{ pw }}',
    self: '{{ self }}',
  });
  const r = (s: string) => t.render(s, vars);

  it('renders lazily through templated variables', () => {
    expect(r('{{ image }}:v1')).toBe('127.0.0.1:5000/meltondevops/app:v1');
  });

  it('binds filters tighter than +, and gives numbers as text (as Ansible)', () => {
    expect(r('{{ base_port + item | int }}')).toBe('8002');
  });

  it('keeps lists, dicts and booleans native in a single expression', () => {
    expect(r('{{ list }}')).toEqual(['a', 'b']);
    expect(r('{{ d }}')).toEqual({ a: 1 });
    expect(r('{{ flag }}')).toBe(true);
    expect(r('x={{ flag }} {{ list }} {{ d }} {{ None }}')).toBe("x=True ['a', 'b'] {'a': 1} None");
    expect(r('{{ "}}" ~ 1 }}-{{- " a" -}} ')).toBe('}}1- a');
  });

  it('names an undefined variable, also through other variables', () => {
    expect(() => r('{{ nope }}')).toThrow(new UndefinedVariableError('nope'));
    expect(() => r('{{ nope.x }}')).toThrow("'nope.x' is undefined");
    expect(() => r('{{ nope + 1 }}')).toThrow("'nope' is undefined");
    expect(() => r('{{ nope | int }}')).toThrow("'nope' is undefined");
    expect(() => r('a {{ user }}')).toThrow("'DOCKER_PASSWORD' is undefined (used by 'pw' <- 'user')");
    expect(() => r('{{ self }}')).toThrow(/defined through itself/);
  });

  it('lets default and defined handle undefined', () => {
    expect(r('{{ nope | default("z") }}')).toBe('z');
    expect(r('{{ nope.x | d(1) }}')).toBe('1');
    expect(r('{{ nope is defined }}')).toBe(false);
    expect(r('{{ 1 if nope is not defined else 2 }}')).toBe('1');
    expect(r('{{ "" | default("e", true) }}')).toBe('e');
    expect(r('{{ "" | default("e") }}')).toBe('');
  });

  it('has the filters deploy playbooks use', () => {
    expect(r('{{ "8080" | int + 1 }}')).toBe('8081');
    expect(r('{{ "yes" | bool }}')).toBe(true);
    expect(r('{{ "off" | bool }}')).toBe(false);
    expect(r('{{ 5 | string }}')).toBe('5');
    expect(r('{{ "Ab" | lower }}{{ "Ab" | upper }}')).toBe('abAB');
    expect(r('{{ list | join(",") }}')).toBe('a,b');
    expect(r('{{ d | to_json }}')).toBe('{"a": 1}');
    expect(r('{{ d | to_yaml }}')).toBe('a: 1\n');
    expect(r('{{ "a-b" | regex_replace("-(b)", "_\\\\1") }}')).toBe('a_b');
    expect(r('{{ "a" | b64encode }}')).toBe('YQ==');
    expect(r('{{ "it\'s" | quote }}')).toBe("'it'\\''s'");
    expect(r('{{ list | length }}')).toBe('2');
  });

  it('refuses unknown filters', () => {
    expect(() => r('{{ list | frobnicate }}')).toThrow(TemplateError);
    expect(t.analyse('{{ a | frobnicate }}').filters).toEqual(['frobnicate']);
  });

  it('reports variables, filters, tests and guards', () => {
    expect(
      t.analyse('{{ a | int }}{% if b is defined %}{{ c.d }}{% endif %}{% for x in y %}{{ x }}{% endfor %}'),
    ).toEqual({
      variables: ['a', 'b', 'c', 'y'],
      filters: ['int'],
      tests: ['defined'],
      guarded: true,
      lookups: [],
    });
    expect(t.analyse("{{ lookup('env', 'HOME') }}{{ query('password', x) }}").lookups).toEqual(['env', 'password']);
  });

  it('evaluates conditions as Ansible', () => {
    expect(t.evaluate('item == "2"', vars)).toBe(true);
    expect(t.evaluate('nope is defined and nope', vars)).toBe(false);
    expect(t.evaluate(true, vars)).toBe(true);
    expect(t.evaluate('list | length > 1', vars)).toBe(true);
    expect(() => t.evaluate('nope', vars)).toThrow("'nope' is undefined");
  });
});

describe('extra vars', () => {
  it('reads k=v, JSON and @file, later wins', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dyce-ev-'));
    const file = join(dir, 'secrets.yml');
    writeFileSync(file, 'DOCKER_PASSWORD: s3cret-value\nport: 1\n', { mode: 0o600 });
    const ev = await readExtraVars([
      { text: 'REGISTRY=r:5000 DOCKER_TAG="v 1" port=0', origin: '-e' },
      { text: '{"n": 2, "port": 5}', origin: '-e' },
      { text: `@${file}`, origin: '-e' },
    ]);
    expect(ev.vars).toEqual({ REGISTRY: 'r:5000', DOCKER_TAG: 'v 1', port: 1, n: 2, DOCKER_PASSWORD: 's3cret-value' });
    expect(ev.warnings).toEqual([]);
    expect(ev.secrets).toEqual(['s3cret-value']);
  });

  it('warns about secret-looking values on the command line, not from files or the environment', async () => {
    const ev = await readExtraVars([
      { text: 'DOCKER_PASSWORD=hunter22 api_token=t0k', origin: '-e' },
      { text: '{"DEPLOY_KEY": "k"}', origin: 'DYCE_EXTRA_VARS' },
    ]);
    expect(ev.warnings).toHaveLength(2);
    expect(ev.warnings[0]).toMatch(/DOCKER_PASSWORD looks secret .*-e @/);
    expect(ev.warnings.join('\n')).not.toContain('hunter22');
    expect(ev.secrets).toEqual(['hunter22', 't0k', 'k']);
  });

  it('refuses malformed text', () => {
    expect(() => parseExtraVarsText('novalue', '-e')).toThrow(/expected key=value/);
    expect(() => parseExtraVarsText('{"a": ', '-e')).toThrow(/bad JSON/);
    expect(() => parseExtraVarsText('[1]', '-e')).toThrow(/mapping/);
  });
});
