import type { Parsed } from '../config/conventions.js';

/** Inclusive ranges of HTTP status codes. */
export type StatusRanges = ReadonlyArray<readonly [number, number]>;

/**
 * Parses `200-299,204` (commas or newlines, spaces allowed) into ranges. Codes are 100..599.
 * Pure: used to validate the input before any request.
 */
export function parseStatusCodes(text: string): Parsed<StatusRanges> {
  const out: Array<[number, number]> = [];
  const items = text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) return { ok: false, error: 'must list at least one status code or range' };
  for (const item of items) {
    const m = /^(\d{3})(?:\s*-\s*(\d{3}))?$/.exec(item);
    if (!m) return { ok: false, error: `${JSON.stringify(item)} is not a status code (200) or a range (200-299)` };
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    for (const c of [lo, hi])
      if (c < 100 || c > 599) return { ok: false, error: `${JSON.stringify(item)}: ${c} is not an HTTP status code` };
    if (hi < lo) return { ok: false, error: `${JSON.stringify(item)}: the range ends before it starts` };
    out.push([lo, hi]);
  }
  return { ok: true, value: out };
}

export function statusAllowed(ranges: StatusRanges, code: number): boolean {
  return ranges.some(([lo, hi]) => code >= lo && code <= hi);
}

export function formatStatusRanges(ranges: StatusRanges): string {
  return ranges.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`)).join(',');
}
