/**
 * Every workflow example in the repo (examples/, .github/workflows/, and YAML code blocks of the README and docs)
 * is checked against the inputs its action declares: unknown inputs and missing required inputs fail, and so do values
 * the action's own parser or cross-input rules refuse (e.g. deploy without `image` or `playbook`). A value that is a
 * `${{ }}` expression is unknown until the run: it counts as given, and issues about it alone are not judged.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildPushRules } from '../../src/config/actions/build-push.js';
import { deployRules } from '../../src/config/actions/deploy.js';
import { actionSpecs } from '../../src/config/actions/index.js';
import { type ActionSpec, type InputRule, parseInputs } from '../../src/config/input-spec.js';
import { InputError } from '../../src/util/errors.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

function yamlFiles(dir: string, name = /\.ya?ml$/): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(join(dir, e.name), name) : name.test(e.name) ? [join(dir, e.name)] : [],
  );
}

function markdownBlocks(file: string): { name: string; text: string }[] {
  const md = readFileSync(file, 'utf8');
  const out: { name: string; text: string }[] = [];
  const re = /```ya?ml\n([\s\S]*?)```/g;
  for (let m = re.exec(md); m; m = re.exec(md)) {
    if (m[1]!.includes('dyce/actions/'))
      out.push({ name: `${relative(root, file)}:${md.slice(0, m.index).split('\n').length}`, text: m[1]! });
  }
  return out;
}

interface Step {
  uses?: string;
  with?: Record<string, unknown>;
}

function dyceSteps(doc: unknown): Step[] {
  const steps: Step[] = [];
  const visit = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (typeof o.uses === 'string' && /(^|\/)dyce\/actions\/|^\.\/actions\//.test(o.uses)) steps.push(o as Step);
      Object.values(o).forEach(visit);
    }
  };
  visit(doc);
  return steps;
}

function checkStep(step: Step): string[] {
  const id = /actions\/([a-z-]+)/.exec(step.uses!)?.[1];
  const spec = actionSpecs.find((s) => s.id === id);
  if (!spec) return [`${step.uses}: no such Dyce action (have: ${actionSpecs.map((s) => s.id).join(', ')})`];
  const given = Object.keys(step.with ?? {});
  const issues = given.filter((k) => !(k in spec.inputs)).map((k) => `${step.uses}: unknown input "${k}"`);
  for (const [name, f] of Object.entries(spec.inputs)) {
    if (f.meta.required && f.meta.default === undefined && !given.includes(name))
      issues.push(`${step.uses}: required input "${name}" is missing`);
  }
  if (issues.length) return issues;
  return parseIssues(spec, step.with ?? {}).map((i) => `${step.uses}: ${i}`);
}

/** Each action's cross-input rules, as its entry point applies them. */
const RULES: Record<string, InputRule<never>[]> = {
  'build-push': buildPushRules as InputRule<never>[],
  deploy: deployRules as InputRule<never>[],
  probe: [],
};

/** A value of the input's kind, standing in for a `${{ }}` expression (unknown until the run). */
function placeholder(f: ActionSpec['inputs'][string]): string {
  const choices = (f.meta as { choices?: readonly string[] }).choices;
  const candidates = [...(choices ?? []), 'true', '1', '10s', 'x', 'KEY=value', 'https://example.test/', '127.0.0.1'];
  return candidates.find((c) => f.schema.safeParse(c).success) ?? 'x';
}

/** What the action's parser and rules say of the step's values (issues about expression-valued inputs left out). */
function parseIssues(spec: ActionSpec, values: Record<string, unknown>): string[] {
  const raw: Record<string, string> = {};
  const expressions: string[] = [];
  for (const [k, v] of Object.entries(values)) {
    const text = typeof v === 'string' ? v : JSON.stringify(v);
    if (text.includes('${{')) {
      expressions.push(k);
      raw[k] = spec.inputs[k] ? placeholder(spec.inputs[k]) : text;
    } else raw[k] = text;
  }
  if (!(spec.id in RULES)) return [`no rules listed for action ${spec.id} in this test`];
  try {
    parseInputs(spec, raw, RULES[spec.id] as InputRule<typeof spec.inputs>[]);
    return [];
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    return e.issues.filter((i) => !expressions.some((k) => i.includes(`"${k}"`)));
  }
}

const sources = [
  ...[...yamlFiles(join(root, 'examples')), ...yamlFiles(join(root, '.github/workflows'))].map((f) => ({
    name: relative(root, f),
    text: readFileSync(f, 'utf8'),
  })),
  ...[
    join(root, 'README.md'),
    ...readdirSync(join(root, 'actions')).map((a) => join(root, 'actions', a, 'README.md')),
    ...yamlFiles(join(root, 'docs'), /\.md$/),
  ]
    .filter(existsSync)
    .flatMap(markdownBlocks),
];

describe('workflow examples use only declared inputs', () => {
  it('finds the examples', () => {
    expect(sources.length).toBeGreaterThan(0);
    expect(sources.flatMap((s) => dyceSteps(parse(s.text))).length).toBeGreaterThanOrEqual(3);
  });

  it('catches an unknown input and a missing required one (the check can fail)', () => {
    const probe = actionSpecs.find((s) => s.id === 'probe');
    expect(probe).toBeDefined();
    expect(checkStep({ uses: 'org/dyce/actions/probe@v1', with: { url: 'http://x', 'no-such-input': 1 } })).toEqual([
      'org/dyce/actions/probe@v1: unknown input "no-such-input"',
    ]);
    expect(checkStep({ uses: 'org/dyce/actions/probe@v1', with: {} })).toContain(
      'org/dyce/actions/probe@v1: required input "url" is missing',
    );
  });

  it("applies the action's parser and rules: deploy needs image or playbook; a bad duration is refused", () => {
    expect(
      checkStep({ uses: 'org/dyce/actions/deploy@v1', with: { hosts: 'h1', 'ssh-private-key': 'k' } }).join('\n'),
    ).toMatch(/input "image" is required/);
    expect(
      checkStep({ uses: 'org/dyce/actions/probe@v1', with: { url: 'http://x', timeout: 'soon' } }).join('\n'),
    ).toContain('input "timeout"');
    // An expression stands for a value given at run time: not judged.
    const expression = ['$', '{{ inputs.timeout }}'].join('');
    expect(checkStep({ uses: 'org/dyce/actions/probe@v1', with: { url: 'http://x', timeout: expression } })).toEqual(
      [],
    );
  });

  it.each(sources.map((s) => [s.name, s.text] as const))('%s', (_name, text) => {
    const issues = dyceSteps(parse(text)).flatMap(checkStep);
    expect(issues).toEqual([]);
  });
});
