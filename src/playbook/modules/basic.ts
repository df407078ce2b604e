import { z } from 'zod';
import { ansibleBool, toText } from '../../template/templar.js';
import { type ModuleDef, ModuleFailure, type ModuleResult } from './types.js';

const boolish = z.unknown().transform((v) => ansibleBool(v));

export const debugModule: ModuleDef = {
  name: 'debug',
  collection: 'ansible.builtin',
  params: ['msg', 'var', 'verbosity'],
  schema: z
    .object({ msg: z.unknown().optional(), var: z.string().optional(), verbosity: z.coerce.number().int().optional() })
    .refine((a) => !(a.msg !== undefined && a.var !== undefined), { message: 'msg and var are mutually exclusive' }),
  async run(args, ctx): Promise<ModuleResult> {
    if (typeof args.var === 'string') return { changed: false, [args.var]: ctx.lookup(args.var) };
    return { changed: false, msg: args.msg === undefined ? 'Hello world!' : (args.msg as string) };
  },
};

export const setFactModule: ModuleDef = {
  name: 'set_fact',
  collection: 'ansible.builtin',
  params: 'any',
  schema: z.record(z.string(), z.unknown()),
  async run(args) {
    const facts: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(args)) if (k !== 'cacheable') facts[k] = v;
    if (Object.keys(facts).length === 0) throw new ModuleFailure('set_fact needs at least one name=value');
    for (const k of Object.keys(facts))
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new ModuleFailure(`set_fact: "${k}" is not a valid variable name`);
    return { changed: false, ansible_facts: facts };
  },
};

export const assertModule: ModuleDef = {
  name: 'assert',
  collection: 'ansible.builtin',
  params: ['that', 'fail_msg', 'msg', 'success_msg', 'quiet'],
  aliases: { msg: 'fail_msg' },
  schema: z.object({
    that: z.union([z.array(z.unknown()), z.unknown()]).transform((v) => (Array.isArray(v) ? v : [v])),
    fail_msg: z.unknown().optional(),
    success_msg: z.unknown().optional(),
    quiet: boolish.optional(),
  }),
  async run(args, ctx) {
    for (const cond of args.that as unknown[]) {
      if (!ctx.evaluate(cond)) {
        throw new ModuleFailure(args.fail_msg === undefined ? `Assertion failed` : toText(args.fail_msg), {
          assertion: cond,
          evaluated_to: false,
        });
      }
    }
    return { changed: false, msg: args.success_msg === undefined ? 'All assertions passed' : toText(args.success_msg) };
  },
};
