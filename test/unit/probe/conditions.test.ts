import { describe, expect, it } from 'vitest';
import { evaluateCondition, type Observation, parseCondition } from '../../../src/probe/conditions.js';
import { parseStatusCodes, statusAllowed } from '../../../src/probe/status-codes.js';

const now = new Date('2026-01-01T00:00:00Z');
const obs = (o: Partial<Observation>): Observation => ({ connected: true, responseTimeMs: 50, now, ...o });

function check(text: string, o: Partial<Observation>): boolean {
  const c = parseCondition(text);
  if (!c.ok) throw new Error(c.error);
  return evaluateCondition(c.value, obs(o)).ok;
}

describe('status codes', () => {
  it('parses codes and ranges', () => {
    const r = parseStatusCodes('200-299, 304\n418');
    expect(r).toEqual({
      ok: true,
      value: [
        [200, 299],
        [304, 304],
        [418, 418],
      ],
    });
    if (!r.ok) return;
    expect(statusAllowed(r.value, 204)).toBe(true);
    expect(statusAllowed(r.value, 304)).toBe(true);
    expect(statusAllowed(r.value, 301)).toBe(false);
  });
  it.each([
    ['299-200', 'ends before it starts'],
    ['2xx', 'is not a status code'],
    ['200-', 'is not a status code'],
    ['99', 'is not a status code'],
    ['600', 'is not an HTTP status code'],
    ['', 'at least one'],
  ])('rejects %j', (text, message) => {
    const r = parseStatusCodes(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(message);
  });
});

describe('conditions', () => {
  it.each<[string, Partial<Observation>, boolean]>([
    ['[STATUS] == 200', { status: 200 }, true],
    ['[STATUS] == 200', { status: 503 }, false],
    ['[STATUS] < 300', { status: 204 }, true],
    ['[STATUS] == any(200, 204)', { status: 204 }, true],
    ['[STATUS] == 200', {}, false],
    ['[BODY].status == UP', { body: '{"status":"UP"}' }, true],
    ['[BODY].status == UP', { body: '{"status":"DOWN"}' }, false],
    ['[BODY].status == UP', { body: 'not json' }, false],
    ['[BODY].data[1].id == 7', { body: '{"data":[{"id":1},{"id":7}]}' }, true],
    ['[BODY].count > 2', { body: '{"count":3}' }, true],
    ['[BODY].ok == true', { body: '{"ok":true}' }, true],
    ['[BODY] == pat(*healthy*)', { body: 'all healthy here' }, true],
    ['[BODY] != pat(*error*)', { body: 'fine' }, true],
    ['len([BODY].items) == 2', { body: '{"items":[1,2]}' }, true],
    ['has([BODY].missing) == false', { body: '{"a":1}' }, true],
    ['[RESPONSE_TIME] < 300', { responseTimeMs: 120 }, true],
    ['[RESPONSE_TIME] < 300', { responseTimeMs: 301 }, false],
    ['[RESPONSE_TIME] < 1s', { responseTimeMs: 999 }, true],
    ['[CERTIFICATE_EXPIRATION] > 720h', { certExpiry: new Date(now.getTime() + 31 * 86_400_000) }, true],
    ['[CERTIFICATE_EXPIRATION] > 720h', { certExpiry: new Date(now.getTime() + 10 * 86_400_000) }, false],
    ['[CERTIFICATE_EXPIRATION] > 720h', {}, false],
    ['[CERTIFICATE_EXPIRATION] > 2d', { certExpiry: new Date(now.getTime() + 3 * 86_400_000) }, true],
    ['[CONNECTED] == true', { connected: true }, true],
    ['[IP] == 127.0.0.1', { ip: '127.0.0.1' }, true],
  ])('%s with %j -> %s', (text, o, want) => {
    expect(check(text, o)).toBe(want);
  });

  it('shows the observed value', () => {
    const c = parseCondition('[STATUS] == 200');
    if (!c.ok) throw new Error(c.error);
    expect(evaluateCondition(c.value, obs({ status: 503 })).resolved).toBe('[STATUS] (503) == 200');
  });

  it.each([
    ['[STATUS] = 200', 'expected'],
    ['[STATUSS] == 200', 'unknown placeholder [STATUSS]'],
    ['STATUS == 200', 'is not a placeholder'],
    ['[STATUS] == OK', '[STATUS] is compared with a number'],
    ['[RESPONSE_TIME] < fast', '[RESPONSE_TIME] is compared with a duration'],
    ['[CERTIFICATE_EXPIRATION] > 30 days', 'compared with a duration'],
    ['[STATUS].x == 1', 'takes no path'],
    ['[BODY]..x == 1', 'bad JSON path'],
    ['[STATUS] ==', 'nothing to compare'],
    ['[BODY] < pat(*x*)', 'needs a number'],
    ['len([STATUS]) > 1', 'applies to [BODY] only'],
    ['[CONNECTED] == yes', 'true or false'],
  ])('rejects %j naming it', (text, message) => {
    const r = parseCondition(text);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toContain(JSON.stringify(text.trim()));
      expect(r.error).toContain(message);
    }
  });
});
