import { z } from 'zod';
import { isTemplate } from '../../template/unsafe.js';
import { type ModuleDef, ModuleFailure } from './types.js';

/**
 * Tasks that steer the run rather than touch a host: the interpreter (src/playbook/run.ts) carries them out; these
 * declarations give the parser their parameters.
 */

export const META_ACTIONS = [
  'flush_handlers',
  'noop',
  'end_play',
  'end_host',
  'end_batch',
  'clear_host_errors',
  'refresh_inventory',
  'reset_connection',
  'clear_facts',
] as const;

export const metaModule: ModuleDef = {
  name: 'meta',
  collection: 'ansible.builtin',
  params: ['free_form'],
  freeForm: 'free_form',
  schema: z.object({ free_form: z.enum(META_ACTIONS) }),
  checkArgs(args) {
    const a = args.free_form;
    if (typeof a === 'string' && !isTemplate(a) && !(META_ACTIONS as readonly string[]).includes(a))
      return [{ path: [], message: `meta action "${a}" is not supported (supported: ${META_ACTIONS.join(', ')})` }];
    return [];
  },
  async run() {
    throw new ModuleFailure('meta runs in the interpreter');
  },
};

export const includeVarsModule: ModuleDef = {
  name: 'include_vars',
  collection: 'ansible.builtin',
  params: ['file', 'free_form', 'name'],
  freeForm: 'file',
  aliases: { free_form: 'file' },
  schema: z.object({ file: z.string(), name: z.string().optional() }),
  async run() {
    throw new ModuleFailure('include_vars runs in the interpreter');
  },
};
