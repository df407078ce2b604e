import { describe, expect, it } from 'vitest';
import { parseFlags, secretEnvName } from '../../../src/cli/flags.js';
import { type ActionSpec, input } from '../../../src/config/input-spec.js';

const inputs = {
  image: input.string({ description: 'image' }),
  replicas: input.integer({ description: 'replicas', default: '1' }),
  'dry-run': input.boolean({ description: 'dry', default: 'false' }),
  env: input.map({ description: 'env' }),
  'registry-password': input.string({ description: 'pw', secret: true }),
};
const spec: ActionSpec<typeof inputs> = { name: 'T', id: 'deploy', description: 'd', inputs, outputs: {} };

describe('CLI flags', () => {
  it('take the action input names', () => {
    const r = parseFlags(spec, ['--image', 'a:b', '--replicas=3', '--dry-run', '--env', 'A=1', '--env', 'B=2', 'pos'], {
      env: {},
    });
    expect(r.raw).toEqual({ image: 'a:b', replicas: '3', 'dry-run': 'true', env: 'A=1\nB=2' });
    expect(r.positionals).toEqual(['pos']);
    expect(parseFlags(spec, ['--no-dry-run'], { env: {} }).raw['dry-run']).toBe('false');
  });

  it('refuse a secret given as a flag value, and do not keep the value', () => {
    expect(() => parseFlags(spec, ['--registry-password', 'hunter2'], { env: {} })).toThrow(
      /--registry-password is a secret and cannot be given on the command line.*DYCE_REGISTRY_PASSWORD/,
    );
    try {
      parseFlags(spec, ['--registry-password=hunter2'], { env: {} });
    } catch (e) {
      expect(String(e)).not.toContain('hunter2');
    }
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
    expect(() => parseFlags(spec, ['--registry-password-file', '/nonexistent/x'], { env: {} })).toThrow(
      /cannot read \/nonexistent\/x: ENOENT/,
    );
  });

  it('refuse unknown flags, naming them', () => {
    expect(() => parseFlags(spec, ['--imgae', 'x'], { env: {} })).toThrow('unknown flag --imgae');
  });
});
