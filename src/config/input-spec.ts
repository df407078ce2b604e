import { z } from 'zod';
import { formatDuration, parseDuration } from '../util/duration.js';
import { InputError } from '../util/errors.js';
import { type MapEntry, parseBoolean, parseLines, parseList, parseMap } from './conventions.js';

/**
 * One declaration per action input. From it come: the zod schema that parses the raw text once,
 * the `inputs:` block of action.yml, the README's input table and the `dyce` CLI flags.
 * Tests check that the committed action.yml and README agree with these declarations.
 */
export type InputKind = 'string' | 'boolean' | 'integer' | 'number' | 'duration' | 'list' | 'lines' | 'map' | 'enum';

export interface InputMeta {
  description: string;
  /** The default as written in action.yml (raw text, parsed like user input). */
  default?: string;
  required?: boolean;
  /** Secret inputs are registered with core.setSecret and are never accepted as CLI flag values. */
  secret?: boolean;
  choices?: readonly string[];
}

export interface InputField<T> {
  readonly kind: InputKind;
  readonly meta: InputMeta;
  readonly schema: z.ZodType<T, string>;
}

type Out<T, M extends InputMeta> = M extends { default: string } | { required: true } ? T : T | undefined;

function field<T, M extends InputMeta>(kind: InputKind, meta: M, schema: z.ZodType<T, string>): InputField<Out<T, M>> {
  return { kind, meta, schema } as unknown as InputField<Out<T, M>>;
}

const text = () => z.string();

export const input = {
  string<M extends InputMeta>(meta: M, refine?: (s: z.ZodString) => z.ZodType<string, string>) {
    return field<string, M>('string', meta, refine ? refine(text()) : text());
  },
  boolean<M extends InputMeta>(meta: M) {
    return field<boolean, M>(
      'boolean',
      meta,
      text().transform((s, ctx) => {
        const r = parseBoolean(s);
        if (!r.ok) ctx.addIssue({ code: 'custom', message: r.error });
        return r.ok ? r.value : false;
      }),
    );
  },
  integer<M extends InputMeta & { min?: number; max?: number }>(meta: M) {
    return field<number, M>(
      'integer',
      meta,
      text().transform((s, ctx) => {
        const t = s.trim();
        if (!/^-?\d+$/.test(t)) {
          ctx.addIssue({ code: 'custom', message: `must be a whole number, got ${JSON.stringify(t)}` });
          return 0;
        }
        const n = Number(t);
        if (meta.min !== undefined && n < meta.min)
          ctx.addIssue({ code: 'custom', message: `must be at least ${meta.min}, got ${n}` });
        if (meta.max !== undefined && n > meta.max)
          ctx.addIssue({ code: 'custom', message: `must be at most ${meta.max}, got ${n}` });
        return n;
      }),
    );
  },
  /** Milliseconds. */
  duration<M extends InputMeta & { min?: number }>(meta: M) {
    return field<number, M>(
      'duration',
      meta,
      text().transform((s, ctx) => {
        const t = s.trim();
        if (t.startsWith('-')) {
          ctx.addIssue({ code: 'custom', message: `must not be negative, got ${JSON.stringify(t)}` });
          return 0;
        }
        const ms = parseDuration(t);
        if (ms === undefined) {
          ctx.addIssue({
            code: 'custom',
            message: `must be a duration like 500ms, 10s, 5m, 72h or 30d (a bare number means seconds), got ${JSON.stringify(t)}`,
          });
          return 0;
        }
        if (meta.min !== undefined && ms < meta.min)
          ctx.addIssue({ code: 'custom', message: `must be at least ${formatDuration(meta.min)}` });
        return ms;
      }),
    );
  },
  /** Newline- or comma-separated. */
  list<M extends InputMeta>(meta: M) {
    return field<string[], M>('list', meta, text().transform(parseList));
  },
  /** Newline-separated, for items that may contain a comma. */
  lines<M extends InputMeta>(meta: M) {
    return field<string[], M>('lines', meta, text().transform(parseLines));
  },
  /** `KEY=value` lines with heredocs for multi-line values. */
  map<M extends InputMeta & { keyPattern?: RegExp }>(meta: M) {
    return field<MapEntry[], M>(
      'map',
      meta,
      text().transform((s, ctx) => {
        const r = parseMap(s, meta.keyPattern ? { keyPattern: meta.keyPattern } : {});
        if (!r.ok) ctx.addIssue({ code: 'custom', message: r.error });
        return r.ok ? r.value : [];
      }),
    );
  },
  enum<const C extends readonly [string, ...string[]], M extends InputMeta>(choices: C, meta: M) {
    return field<C[number], M>(
      'enum',
      { ...meta, choices },
      text().transform((s, ctx) => {
        const t = s.trim();
        if (!(choices as readonly string[]).includes(t))
          ctx.addIssue({ code: 'custom', message: `must be one of ${choices.join(', ')}, got ${JSON.stringify(t)}` });
        return t as C[number];
      }),
    );
  },
};

export type InputSpec = Record<string, InputField<unknown>>;
export type ParsedInputs<S extends InputSpec> = { [K in keyof S]: S[K] extends InputField<infer T> ? T : never };

export interface OutputSpec {
  [name: string]: { description: string };
}

export interface ActionSpec<S extends InputSpec = InputSpec> {
  name: string;
  /** Folder under actions/. */
  id: string;
  description: string;
  inputs: S;
  outputs: OutputSpec;
  /** Whether the action has a post step (cleanup). */
  post?: boolean;
  /**
   * Inputs that no longer exist, each with what to use instead: refused with that pointer (as an input and as a
   * CLI flag) rather than as an unknown name, and never silently ignored.
   */
  removed?: Record<string, string>;
  branding?: { icon: string; color: string };
}

export type RawInputs = Record<string, string | undefined>;

/** A cross-field rule: returns issues (`input "a": ...`) or nothing. */
export type InputRule<S extends InputSpec> = (inputs: ParsedInputs<S>) => string | string[] | undefined;

/**
 * Parses raw input text once. Empty text counts as absent (the runner passes '' for unset inputs),
 * then the declared default applies. Every issue is collected and thrown together as one InputError.
 */
export function parseInputs<S extends InputSpec>(
  spec: ActionSpec<S>,
  raw: RawInputs,
  rules: InputRule<S>[] = [],
): ParsedInputs<S> {
  const issues: string[] = [];
  const out: Record<string, unknown> = {};
  const failed = new Set<string>();
  for (const [name, f] of Object.entries(spec.inputs)) {
    let value = raw[name];
    if (value === undefined || value.trim() === '') value = f.meta.default;
    if (value === undefined || (value.trim() === '' && f.kind !== 'string')) {
      if (f.meta.required) {
        issues.push(`input "${name}" is required`);
        failed.add(name);
      }
      out[name] = undefined;
      continue;
    }
    const r = f.schema.safeParse(value);
    if (r.success) out[name] = r.data;
    else {
      for (const i of r.error.issues) issues.push(`input "${name}" ${i.message}`);
      failed.add(name);
      // The rules below still run, on the default in its place, so that one run reports every problem.
      const d = f.meta.default === undefined ? undefined : f.schema.safeParse(f.meta.default);
      out[name] = d?.success ? d.data : undefined;
    }
  }
  for (const key of Object.keys(raw)) {
    const removed = spec.removed?.[key];
    if (removed !== undefined && !(key in spec.inputs)) issues.push(`input "${key}" ${removed}`);
    else if (!(key in spec.inputs))
      issues.push(`unknown input "${key}" (${spec.id} takes: ${Object.keys(spec.inputs).join(', ')})`);
  }
  for (const rule of rules) {
    if (failed.size === 0) {
      const r = rule(out as ParsedInputs<S>);
      if (r) issues.push(...(Array.isArray(r) ? r : [r]));
      continue;
    }
    // Best effort: a rule may trip over a value that failed; its other findings still count.
    let found: string[] = [];
    try {
      const r = rule(out as ParsedInputs<S>);
      found = r ? (Array.isArray(r) ? r : [r]) : [];
    } catch (error) {
      if (error instanceof InputError) found = error.issues;
    }
    issues.push(...found.filter((m) => ![...failed].some((name) => m.includes(`"${name}"`))));
  }
  if (issues.length) throw new InputError(issues, `${spec.id}: invalid input`);
  return out as ParsedInputs<S>;
}

/**
 * The issues `check` throws as an InputError, as a rule's result: how a later, pure check (e.g. assembling a config
 * from the inputs) joins the first pass, so that one run reports every problem.
 */
export function issuesOf(check: () => unknown): string[] | undefined {
  try {
    check();
    return undefined;
  } catch (error) {
    if (error instanceof InputError) return error.issues;
    throw error;
  }
}
