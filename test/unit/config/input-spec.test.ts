import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { renderActionYml, renderInputTable, renderReadme } from '../../../src/config/action-yml.js';
import { actionSpecs } from '../../../src/config/actions/index.js';
import { type ActionSpec, input, parseInputs } from '../../../src/config/input-spec.js';
import { InputError } from '../../../src/util/errors.js';

const inputs = {
  name: input.string({ description: 'app name', required: true }, (s) =>
    s.regex(/^[a-z0-9][a-z0-9_.-]*$/, 'must match [a-z0-9][a-z0-9_.-]*'),
  ),
  replicas: input.integer({ description: 'replicas', default: '1', min: 1 }),
  timeout: input.duration({ description: 'timeout', default: '10m' }),
  dry: input.boolean({ description: 'dry run', default: 'false' }),
  tags: input.list({ description: 'tags' }),
  env: input.map({ description: 'env' }),
  pull: input.enum(['missing', 'always'], { description: 'pull', default: 'missing' }),
  password: input.string({ description: 'password', secret: true }),
};
const spec: ActionSpec<typeof inputs> = {
  name: 'T',
  id: 'test',
  description: 'test',
  inputs,
  outputs: { success: { description: 's' } },
};

describe('parseInputs', () => {
  it('parses each kind once, with defaults, treating empty text as absent', () => {
    const r = parseInputs(spec, {
      name: 'web',
      replicas: '',
      tags: 'a,b\nc',
      env: 'A=1\nB<<X\nx\ny\nX',
      password: 'p',
    });
    expect(r).toEqual({
      name: 'web',
      replicas: 1,
      timeout: 600_000,
      dry: false,
      tags: ['a', 'b', 'c'],
      env: [
        { key: 'A', value: '1', line: 1 },
        { key: 'B', value: 'x\ny', line: 2 },
      ],
      pull: 'missing',
      password: 'p',
    });
  });

  it('collects every issue, each naming its input', () => {
    try {
      parseInputs(spec, { name: 'Bad Name', replicas: '0', timeout: '-5s', dry: 'yes', pull: 'never', env: 'oops' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(InputError);
      const issues = (e as InputError).issues;
      expect(issues).toEqual([
        'input "name" must match [a-z0-9][a-z0-9_.-]*',
        'input "replicas" must be at least 1, got 0',
        'input "timeout" must not be negative, got "-5s"',
        'input "dry" must be true or false, got "yes"',
        'input "env" line 1: expected KEY=value or KEY<<EOF, got "oops"',
        'input "pull" must be one of missing, always, got "never"',
      ]);
    }
  });

  it('requires required inputs and refuses unknown ones', () => {
    expect(() => parseInputs(spec, { nmae: 'x' })).toThrow(/input "name" is required[\s\S]*unknown input "nmae"/);
  });

  it('still runs the rules when a field failed, so that one run reports every problem', () => {
    const rule = (i: { tags?: string[]; replicas: number }) => [
      ...(i.tags?.includes('bad') ? ['input "tags" holds "bad"'] : []),
      ...(i.replicas === 1 ? [] : ['input "replicas" is odd']),
    ];
    // replicas fails its own check: the rule sees its default (1), and a finding about it would be dropped.
    expect(() => parseInputs(spec, { name: 'a', replicas: 'x', tags: 'bad' }, [rule])).toThrow(
      /input "replicas" must be a whole number[\s\S]*input "tags" holds "bad"/,
    );
    const failing = () => {
      throw new InputError(['input "dry" cannot be used here', 'input "replicas" is odd']);
    };
    try {
      parseInputs(spec, { name: 'a', replicas: 'x' }, [failing]);
      expect.unreachable();
    } catch (e) {
      expect((e as InputError).issues).toEqual([
        'input "replicas" must be a whole number, got "x"',
        'input "dry" cannot be used here',
      ]);
    }
  });

  it('runs cross-field rules after the fields parse', () => {
    const rule = (i: { replicas: number; dry: boolean }) =>
      i.dry && i.replicas > 1 ? 'input "dry" cannot be used with replicas > 1' : undefined;
    expect(() => parseInputs(spec, { name: 'a', replicas: '2', dry: 'true' }, [rule])).toThrow('cannot be used');
  });
});

describe('action.yml', () => {
  it.each(actionSpecs.map((s) => [s.id, s] as const))(
    '%s: declares every spec input, its default and node24',
    (_id, s) => {
      const doc = parseYaml(renderActionYml(s));
      expect(Object.keys(doc.inputs)).toEqual(Object.keys(s.inputs));
      for (const [name, f] of Object.entries(s.inputs)) {
        expect(doc.inputs[name].default, name).toBe(f.meta.default);
        expect(doc.inputs[name].required, name).toBe(f.meta.required === true);
      }
      expect(doc.outputs.success).toBeDefined();
      expect(doc.runs.using).toBe('node24');
    },
  );
});

describe('action READMEs', () => {
  it('replace the generated section and keep what follows it', () => {
    const spec = actionSpecs[0]!;
    const out = renderReadme('# T\n\nintro\n\n## Inputs and outputs\n\nold table\n\n## Notes\n\nkept\n', spec);
    expect(out).toContain('# T\n\nintro\n\n## Inputs and outputs\n\n<!-- Generated');
    expect(out).not.toContain('old table');
    expect(out).toContain(renderInputTable(spec));
    expect(out.endsWith('## Notes\n\nkept\n')).toBe(true);
    expect(renderReadme('# T\n', spec)).toContain('# T\n\n## Inputs and outputs');
  });

  it.each(actionSpecs.map((s) => [s.id, s] as const))(
    '%s: the committed README lists exactly the spec inputs',
    (id, s) => {
      const path = new URL(`../../../actions/${id}/README.md`, import.meta.url);
      const committed = readFileSync(path, 'utf8');
      expect(committed).toBe(renderReadme(committed, s));
    },
  );
});
