import type { z } from 'zod';
import type { Host } from '../../config/inventory.js';
import type { ExecOptions, ExecResult, Executor } from '../../remote/executor.js';

/** What a module may use while it runs on one host. */
export interface ModuleContext {
  host: Host;
  exec: Executor;
  /** --check: observe, decide, report what would change, change nothing. */
  check: boolean;
  /** Runs argv on the host with the task's `become` and `environment` applied. */
  run(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Registers a value that must never be printed. */
  secret(value: string): void;
  warn(message: string): void;
  /** A bare Jinja expression against the task's variables (assert). */
  evaluate(expression: unknown): boolean;
  /** A variable's value, templated (debug var=). Throws when undefined. */
  lookup(name: string): unknown;
  /** The home directory commands see on this host (cached per host). */
  home(): Promise<string>;
  /** Records the home directory when a module learnt it along the way (saves a round trip). */
  knowHome(home: string): void;
}

/** A module's answer; it becomes the registered variable. */
export interface ModuleResult {
  changed?: boolean;
  failed?: boolean;
  skipped?: boolean;
  msg?: string;
  /** Facts to set on the host (set_fact). */
  ansible_facts?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface ModuleDef {
  /** The short name (`docker_container`). */
  name: string;
  /** The collection of the FQCN (`community.docker`). */
  collection: string;
  /** Parameter names with their aliases; `any` accepts any name (set_fact). */
  params: readonly string[] | 'any';
  /** Validates templated arguments (aliases already folded into their main names). */
  schema: z.ZodType<Record<string, unknown>>;
  /** alias -> main name. */
  aliases?: Record<string, string>;
  /** The parameter that free-form text goes to (`command: ls -l`, `meta: flush_handlers`). */
  freeForm?: string;
  /** Parse-time checks of the arguments as written (values may hold templates: check only the literals). */
  checkArgs?(args: Record<string, unknown>): { path: (string | number)[]; message: string }[];
  run(args: Record<string, unknown>, ctx: ModuleContext): Promise<ModuleResult>;
}

/** A failure the module reports (not a bug): the task fails on this host with this message. */
export class ModuleFailure extends Error {
  override readonly name = 'ModuleFailure';
  constructor(
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** Runs a command and throws ModuleFailure with its stderr when it exits non-zero. */
export async function runOrFail(
  ctx: ModuleContext,
  argv: readonly string[],
  what: string,
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const r = await ctx.run(argv, { label: what, ...opts });
  if (r.code !== 0)
    throw new ModuleFailure(
      `${what} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-5).join('\n')}`,
      {
        rc: r.code,
      },
    );
  return r;
}
