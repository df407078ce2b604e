import { z } from 'zod';
import { toText } from '../../template/templar.js';

/**
 * Ansible's argument types (AnsibleModule's type checkers), as zod schemas that coerce the way Ansible does, so the
 * same file means the same thing: `ports: "80:80"` is a one-item list, `env: "A=1 B=2"` a dict, `detach: "no"` a
 * boolean, `"8080"` an int. Modules declare their parameters with these; the parser checks every literal argument
 * with the same schema at parse time (file:line of the key, the parameter as the user wrote it).
 */

const TRUE = new Set(['yes', 'on', '1', 'true', 't', 'y']);
const FALSE = new Set(['no', 'off', '0', 'false', 'f', 'n', '']);

/** Ansible's `bool`: true/false, yes/no, on/off, 1/0 (any case); anything else is an error. */
export const ansibleBoolean = z.unknown().transform((v, ctx) => {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number' && (v === 0 || v === 1)) return v === 1;
  const s = typeof v === 'string' ? v.trim().toLowerCase() : undefined;
  if (s !== undefined && TRUE.has(s)) return true;
  if (s !== undefined && FALSE.has(s)) return false;
  ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a valid boolean (use true or false)` });
  return z.NEVER;
});

/** Ansible's `str`: numbers and booleans become their text (`True`, `8080`); lists and dicts are refused. */
export const ansibleString = z.unknown().transform((v, ctx) => {
  if (v !== null && typeof v === 'object') {
    ctx.addIssue({ code: 'custom', message: `expected a string, got a ${Array.isArray(v) ? 'list' : 'dict'}` });
    return z.NEVER;
  }
  return toText(v);
});

/** Ansible's `int`: whole numbers, and text that is one. */
export const ansibleInt = z.unknown().transform((v, ctx) => {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*[-+]?\d+\s*$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isInteger(n)) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a whole number` });
    return z.NEVER;
  }
  return n;
});

/** Ansible's `float`. */
export const ansibleFloat = z.unknown().transform((v, ctx) => {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
  if (Number.isNaN(n)) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a number` });
    return z.NEVER;
  }
  return n;
});

/** Ansible's `list`: a list; text is split on commas; any other single value is a one-item list. */
export function ansibleList<T extends z.ZodType>(elements: T) {
  return z
    .unknown()
    .transform((v): unknown[] => {
      if (Array.isArray(v)) return v;
      if (v === null || v === undefined) return [];
      if (typeof v === 'string')
        return v
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
      return [v];
    })
    .pipe(z.array(elements));
}

/** Ansible's `dict`: a mapping; text as JSON (`{...}`) or `k=v` pairs (space or comma separated). */
export const ansibleDict = z.unknown().transform((v, ctx): Record<string, unknown> => {
  if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  if (typeof v === 'string') {
    const t = v.trim();
    if (t.startsWith('{')) {
      try {
        const parsed = JSON.parse(t) as unknown;
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
      } catch {
        // reported below
      }
    } else {
      const out: Record<string, unknown> = {};
      for (const pair of t.split(/[\s,]+/).filter((s) => s !== '')) {
        const eq = pair.indexOf('=');
        if (eq <= 0) {
          ctx.addIssue({ code: 'custom', message: `${JSON.stringify(pair)} is not key=value` });
          return z.NEVER;
        }
        out[pair.slice(0, eq)] = pair.slice(eq + 1);
      }
      return out;
    }
  }
  ctx.addIssue({
    code: 'custom',
    message: `expected a dict (a mapping or "key=value" text), got ${JSON.stringify(v)}`,
  });
  return z.NEVER;
});

/** One value of a fixed set (`choices`), compared as text as Ansible does (`state: absent`). */
export function ansibleChoice<const T extends readonly [string, ...string[]]>(choices: T) {
  return z.unknown().transform((v, ctx): T[number] => {
    const s = toText(v);
    if ((choices as readonly string[]).includes(s)) return s as T[number];
    ctx.addIssue({ code: 'custom', message: `must be one of ${choices.join(', ')}, got ${JSON.stringify(v)}` });
    return z.NEVER;
  });
}

/** True when a value holds a template anywhere: it can only be checked after templating, at run time. */
export function holdsTemplate(v: unknown): boolean {
  if (typeof v === 'string') return /\{\{|\{%/.test(v);
  if (Array.isArray(v)) return v.some(holdsTemplate);
  if (v && typeof v === 'object') return Object.entries(v).some(([k, x]) => holdsTemplate(k) || holdsTemplate(x));
  return false;
}
