import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { shellQuote } from '../../src/commands/quote.js';
import { Redactor, Secret } from '../../src/util/secret.js';

describe('Secret', () => {
  it('never prints its value', () => {
    const s = new Secret('hunter2-value');
    const shown = [String(s), `${s}`, JSON.stringify({ s }), inspect({ s }), inspect(s)].join(' ');
    expect(shown).not.toContain('hunter2');
    expect(s.reveal()).toBe('hunter2-value');
  });
});

describe('Redactor', () => {
  it('hides every registered value, the longest first, and each line of a multi-line value', () => {
    const r = new Redactor();
    r.add('abc-secret');
    r.add('abc-secret-longer');
    r.add('line-one\nline-two');
    expect(r.redact('x abc-secret-longer y abc-secret z')).toBe('x *** y *** z');
    expect(r.redact('printed: line-two')).toBe('printed: ***');
    expect(r.redact('nothing here')).toBe('nothing here');
  });
});

describe('shellQuote', () => {
  it('leaves plain words alone and single-quotes everything else', () => {
    expect(shellQuote(['docker', 'ps', '--filter', 'label=dyce.app=web'])).toBe(
      'docker ps --filter label=dyce.app=web',
    );
    expect(shellQuote(['echo', "it's $(id) `x` \\ \n"])).toBe(`echo 'it'\\''s $(id) \`x\` \\ \n'`);
    expect(shellQuote(['a', ''])).toBe("a ''");
  });
});

describe('shellQuote round trip through a real shell', () => {
  it('delivers hostile words byte for byte', async () => {
    const { runLocal } = await import('../../src/remote/local.js');
    const words = [
      "it's",
      '$(touch /tmp/dyce-pwned)',
      '`id`',
      'back\\slash',
      'new\nline',
      '"dq"',
      '*',
      '~',
      '$HOME',
      ';&|<>',
      ' lead',
    ];
    const r = await runLocal(['sh', '-c', `printf '%s\\0' ${shellQuote(words)}`]);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(words);
  });
});
