import { describe, expect, test } from 'vitest';
import { excludingRule, parseDockerignore } from '../../../src/build/dockerignore.js';

describe('.dockerignore: is the env file excluded?', () => {
  test.each([
    ['', 'api/.env', false],
    ['.env', 'api/.env', false],
    ['**/.env', 'api/.env', true],
    ['*/.env', 'api/.env', true],
    ['api', 'api/.env', true],
    ['/api/', 'api/.env', true],
    ['api/*', 'api/.env', true],
    ['api/.env*', 'api/.env', true],
    ['**/*.env\n!api/.env', 'api/.env', false],
    ['api\n!api/.env', 'api/.env', false],
    ['!api/.env\napi', 'api/.env', true],
    ['# comment\n\n**/.e?v', 'api/.env', true],
    ['api/.[e]nv', 'api/.env', true],
    ['*', '.env', true],
    ['*\n!.env', '.env', false],
    ['./api/../api/.env', 'api/.env', true],
    ['ap', 'api/.env', false],
  ])('%j excludes %s: %s', (ignore, path, excluded) => {
    expect(excludingRule(parseDockerignore(ignore), path) !== undefined).toBe(excluded);
  });

  test('names the line that excluded it', () => {
    const rule = excludingRule(parseDockerignore('# secrets\nnode_modules\n**/.env\n'), 'api/.env');
    expect(rule).toMatchObject({ line: 3, pattern: '**/.env' });
  });
});
