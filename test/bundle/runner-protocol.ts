/**
 * The GitHub runner's protocol for a JavaScript action, reproduced for tests of the committed bundles:
 * the action folder (action.yml + dist/) is copied alone to a temporary directory, so nothing from the repository's
 * node_modules can be picked up; `runs.main` runs under Node 24 with INPUT_* variables (action.yml defaults
 * included, as the runner passes them) and the file commands GITHUB_OUTPUT, GITHUB_STATE, GITHUB_ENV, GITHUB_PATH
 * and GITHUB_STEP_SUMMARY; then `runs.post`, if any, with STATE_* taken from what main saved.
 */

import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { runLocal } from '../../src/remote/local.js';

export const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** Node 24 from the npm registry (`npm install --prefix tools/node24`), the runtime of `runs.using: node24`. */
export function node24(): string {
  const bin = join(repoRoot, 'tools/node24/node_modules/node/bin/node');
  if (!existsSync(bin))
    throw new Error(`Node 24 is missing: run \`npm install --prefix tools/node24\` (expected ${bin})`);
  return bin;
}

export interface ActionYml {
  inputs?: Record<string, { default?: string; required?: boolean }>;
  outputs?: Record<string, unknown>;
  runs: { using: string; main: string; post?: string; 'post-if'?: string };
}

export interface StepResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Parsed from GITHUB_OUTPUT. */
  outputs: Record<string, string>;
  /** Parsed from GITHUB_STATE. */
  state: Record<string, string>;
  /** GITHUB_STEP_SUMMARY as written. */
  summary: string;
  /** `::error::` and `::warning::` lines. */
  errors: string[];
  warnings: string[];
}

export interface CopiedAction {
  dir: string;
  yml: ActionYml;
  /** A scratch workspace (cwd of the steps, RUNNER_TEMP below it). */
  workspace: string;
  cleanup(): void;
}

/** Copies `actions/<id>/action.yml` and `dist/` (nothing else) into a temporary directory. */
export function copyAction(id: string): CopiedAction {
  const src = join(repoRoot, 'actions', id);
  const root = mkdtempSync(join(tmpdir(), `dyce-bundle-${id}-`));
  const dir = join(root, 'action');
  mkdirSync(dir);
  cpSync(join(src, 'action.yml'), join(dir, 'action.yml'));
  cpSync(join(src, 'dist'), join(dir, 'dist'), { recursive: true });
  const workspace = join(root, 'workspace');
  mkdirSync(join(workspace, '.runner-temp'), { recursive: true });
  const yml = parse(readFileSync(join(dir, 'action.yml'), 'utf8')) as ActionYml;
  return { dir, yml, workspace, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/**
 * Parses a file-command file: `name=value` lines and `name<<DELIMITER` ... `DELIMITER` blocks
 * (what @actions/core writes for multi-line values).
 */
export function parseFileCommands(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delim] = heredoc;
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== delim; i++) body.push(lines[i]!);
      if (i >= lines.length) throw new Error(`file command ${name}<<${delim} is never closed`);
      out[name!] = body.join('\n');
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`bad file command line: ${JSON.stringify(line)}`);
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/** INPUT_<NAME> as the runner spells it: upper-cased, spaces to underscores, hyphens kept. */
export function inputEnvName(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;
}

export interface RunOptions {
  inputs?: Record<string, string>;
  env?: Record<string, string>;
  timeoutMs?: number;
}

function fresh(path: string): string {
  writeFileSync(path, '');
  return path;
}

async function runStep(
  action: CopiedAction,
  entry: string,
  env: Record<string, string>,
  timeoutMs: number,
): Promise<StepResult> {
  const files = {
    GITHUB_OUTPUT: fresh(join(action.workspace, '.runner-temp', 'output')),
    GITHUB_STATE: fresh(join(action.workspace, '.runner-temp', 'state')),
    GITHUB_ENV: fresh(join(action.workspace, '.runner-temp', 'env')),
    GITHUB_PATH: fresh(join(action.workspace, '.runner-temp', 'path')),
    GITHUB_STEP_SUMMARY: fresh(join(action.workspace, '.runner-temp', 'summary')),
  };
  // A clean environment: only what the runner would set, plus PATH/HOME for child processes.
  const base: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? action.workspace,
    GITHUB_ACTIONS: 'true',
    CI: 'true',
    RUNNER_TEMP: join(action.workspace, '.runner-temp'),
    GITHUB_WORKSPACE: action.workspace,
    ...files,
  };
  const { code, stdout, stderr } = await runLocal([node24(), join(action.dir, entry)], {
    cwd: action.workspace,
    env: { ...base, ...env },
    timeoutMs,
  });
  const lines = stdout.split('\n');
  return {
    code,
    stdout,
    stderr,
    outputs: parseFileCommands(readFileSync(files.GITHUB_OUTPUT, 'utf8')),
    state: parseFileCommands(readFileSync(files.GITHUB_STATE, 'utf8')),
    summary: readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8'),
    errors: lines.filter((l) => l.startsWith('::error')),
    warnings: lines.filter((l) => l.startsWith('::warning')),
  };
}

/**
 * Runs the action's main step, then its post step when action.yml declares one (post-if: always() is assumed, so
 * it runs after a failed main too). Inputs not given get their action.yml default, as on the runner.
 */
export async function runAction(
  action: CopiedAction,
  opts: RunOptions = {},
): Promise<{ main: StepResult; post?: StepResult }> {
  const env: Record<string, string> = {};
  for (const [name, decl] of Object.entries(action.yml.inputs ?? {}))
    env[inputEnvName(name)] = opts.inputs?.[name] ?? decl.default ?? '';
  for (const [name, value] of Object.entries(opts.inputs ?? {})) env[inputEnvName(name)] = value;
  Object.assign(env, opts.env ?? {});
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const main = await runStep(action, action.yml.runs.main, env, timeoutMs);
  if (!action.yml.runs.post) return { main };
  const stateEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(main.state)) stateEnv[`STATE_${k}`] = v;
  const post = await runStep(action, action.yml.runs.post, { ...env, ...stateEnv }, timeoutMs);
  return { main, post };
}
