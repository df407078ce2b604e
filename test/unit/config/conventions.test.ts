import { describe, expect, it } from 'vitest';
import { parseBoolean, parseList, parseMap } from '../../../src/config/conventions.js';
import { parseDuration } from '../../../src/util/duration.js';

describe('durations', () => {
  it.each([
    ['500ms', 500],
    ['10s', 10_000],
    ['5m', 300_000],
    ['72h', 259_200_000],
    ['30d', 2_592_000_000],
    ['90', 90_000],
    ['1.5', 1500],
    ['1m30s', 90_000],
    [' 2s ', 2000],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('takes a bare number in the unit asked for (Gatus RESPONSE_TIME: ms)', () => {
    expect(parseDuration('300', 'ms')).toBe(300);
  });

  it.each(['', '10x', 's', '5 m', '-1s', '1m30', 'ten'])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe('lists', () => {
  it('splits on newlines and commas, trims, drops empties', () => {
    expect(parseList('a, b\nc,,\n\n d ')).toEqual(['a', 'b', 'c', 'd']);
  });
});

describe('booleans', () => {
  it('takes exactly true and false', () => {
    expect(parseBoolean('true')).toEqual({ ok: true, value: true });
    expect(parseBoolean('false')).toEqual({ ok: true, value: false });
    expect(parseBoolean('yes').ok).toBe(false);
    expect(parseBoolean('True').ok).toBe(false);
  });
});

describe('maps', () => {
  it('keeps values byte for byte after the first =', () => {
    const r = parseMap(`A=1\nB= spaced = "quoted" $(id) \`x\` \\\\ \nC=`);
    expect(r).toEqual({
      ok: true,
      value: [
        { key: 'A', value: '1', line: 1 },
        { key: 'B', value: ' spaced = "quoted" $(id) `x` \\\\ ', line: 2 },
        { key: 'C', value: '', line: 3 },
      ],
    });
  });

  it('reads heredocs for multi-line values', () => {
    const r = parseMap('KEY<<EOF\nline 1\n  line 2\nEOF\nNEXT=x');
    expect(r.ok && r.value).toEqual([
      { key: 'KEY', value: 'line 1\n  line 2', line: 1 },
      { key: 'NEXT', value: 'x', line: 5 },
    ]);
  });

  it('names the line of an unclosed heredoc, a line without =, a bad key and a duplicate', () => {
    expect(parseMap('A=1\nK<<END\nx')).toEqual({
      ok: false,
      error: 'line 2: heredoc K<<END is never closed by a line "END"',
    });
    expect(parseMap('A=1\njust text')).toMatchObject({
      ok: false,
      error: expect.stringContaining('line 2: expected KEY=value'),
    });
    expect(parseMap('1A=x')).toMatchObject({ ok: false, error: expect.stringContaining('line 1: invalid key') });
    expect(parseMap('A=1\nA=2')).toMatchObject({ ok: false, error: expect.stringContaining('line 2: duplicate key') });
  });

  it('skips blank lines and comments, and handles CRLF', () => {
    expect(parseMap('# c\r\n\r\nA=1\r\n')).toEqual({ ok: true, value: [{ key: 'A', value: '1', line: 3 }] });
  });
});
