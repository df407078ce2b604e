import { describe, expect, it } from 'vitest';
import { checkInputs, closest, inCliSyntax, parseFlags, secretEnvName } from '../../../src/cli/flags.js';
import { type ActionSpec, input } from '../../../src/config/input-spec.js';
import { InputError } from '../../../src/util/errors.js';

const inputs = {
  image: input.string({ description: 'image' }),
  replicas: input.integer({ description: 'replicas', default: '1', min: 1 }),
  'dry-run': input.boolean({ description: 'dry', default: 'false' }),
  env: input.map({ description: 'env' }),
  'registry-password': input.string({ description: 'pw', secret: true }),
};
const spec: ActionSpec<typeof inputs> = { name: 'T', id: 'deploy', description: 'd', inputs, outputs: {} };
const JSON_FLAG = { name: 'json', kind: 'boolean', description: 'json' } as const;

describe('CLI flags', () => {
  it('take the action input names, --flag value and --flag=value alike', () => {
    const r = parseFlags(spec, ['--image', 'a:b', '--replicas=3', '--dry-run', '--env', 'A=1', '--env', 'B=2'], {
      env: {},
    });
    expect(r.issues).toEqual([]);
    expect(r.raw).toEqual({ image: 'a:b', replicas: '3', 'dry-run': 'true', env: 'A=1\nB=2' });
    expect(parseFlags(spec, ['--no-dry-run'], { env: {} }).raw['dry-run']).toBe('false');
    expect(parseFlags(spec, ['--dry-run', 'false'], { env: {} }).raw['dry-run']).toBe('false');
    expect(parseFlags(spec, ['--dry-run=false'], { env: {} }).raw['dry-run']).toBe('false');
  });

  it('take positionals only where the command has them', () => {
    expect(parseFlags(spec, ['ctx'], { env: {}, positionals: { name: 'CONTEXT', max: 1 } }).positionals).toEqual([
      'ctx',
    ]);
    expect(parseFlags(spec, ['a', 'b'], { env: {}, positionals: { name: 'CONTEXT', max: 1 } }).issues).toEqual([
      'unexpected argument "b": dyce deploy takes one CONTEXT',
    ]);
    expect(parseFlags(spec, ['--', '--image'], { env: {} }).issues).toEqual([
      'unexpected argument "--image": dyce deploy takes no arguments, only flags',
    ]);
  });

  it('refuse a secret given as a flag value, and do not keep the value', () => {
    const r = parseFlags(spec, ['--registry-password', 'hunter2'], { env: {} });
    expect(r.issues[0]).toMatch(
      /--registry-password is a secret and cannot be given on the command line.*DYCE_REGISTRY_PASSWORD/,
    );
    expect(r.positionals).toEqual([]);
    expect(JSON.stringify(parseFlags(spec, ['--registry-password=hunter2'], { env: {} }))).not.toContain('hunter2');
  });

  it('read a secret from DYCE_<NAME>, a file, or stdin', () => {
    expect(secretEnvName('registry-password')).toBe('DYCE_REGISTRY_PASSWORD');
    expect(parseFlags(spec, [], { env: { DYCE_REGISTRY_PASSWORD: 'from-env' } }).raw['registry-password']).toBe(
      'from-env',
    );
    expect(
      parseFlags(spec, ['--registry-password-file', '-'], { env: {}, readStdin: () => 'from-stdin\n' }).raw[
        'registry-password'
      ],
    ).toBe('from-stdin');
    expect(parseFlags(spec, ['--registry-password-file', '/nonexistent/x'], { env: {} }).issues).toEqual([
      '--registry-password-file: cannot read /nonexistent/x: ENOENT',
    ]);
  });

  it('refuse unknown flags with "did you mean", switches with other values, and extra flags typed', () => {
    const r = parseFlags(spec, ['--imgae', 'x', '--replica', '2', '--json=yes', '--dry-run', 'maybe'], {
      env: {},
      extra: [JSON_FLAG],
    });
    expect(r.issues).toEqual([
      'unknown flag --imgae; did you mean --image?',
      'unknown flag --replica; did you mean --replicas?',
      '--json must be true or false, got "yes"',
      '--dry-run is a switch and takes no value, got "maybe": write --dry-run, --dry-run=true or --dry-run=false',
    ]);
    expect(parseFlags(spec, ['--json'], { env: {}, extra: [JSON_FLAG] }).extra).toEqual({ json: true });
  });

  it('report the command line and the values together, in one InputError', () => {
    const parsed = parseFlags(spec, ['--replica', '2', '--replicas', '0'], { env: {} });
    try {
      checkInputs(spec, parsed);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(InputError);
      expect((e as InputError).issues).toEqual([
        'unknown flag --replica; did you mean --replicas?',
        '--replicas must be at least 1, got 0',
      ]);
    }
  });

  it('find the closest name, and none when nothing is close', () => {
    expect(closest('replica', ['replicas', 'registry'])).toBe('replicas');
    expect(closest('xyz', ['replicas', 'registry'])).toBeUndefined();
  });

  it("rewrite the actions' terms in the CLI's syntax, leaving quoted values alone", () => {
    parseFlags(spec, [], { env: {} }); // the spec parsed last names the secrets, whose flags are --<name>-file
    expect(inCliSyntax('input "registry-password" is required with "image"')).toBe(
      '--registry-password-file is required with --image',
    );
    expect(inCliSyntax('input "replicas" is required with "registry-username"', ['replicas'])).toBe(
      '--replicas is required with "registry-username"',
    );
    expect(inCliSyntax('or set insecure-skip-host-key-check: true to accept any key')).toBe(
      'or add --insecure-skip-host-key-check to accept any key',
    );
    expect(inCliSyntax('input "pull" must be one of missing, always, got "image"', ['image'])).toBe(
      '--pull must be one of missing, always, got "image"',
    );
  });
});
