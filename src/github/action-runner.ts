import * as core from '@actions/core';
import {
  type ActionSpec,
  type InputRule,
  type InputSpec,
  type ParsedInputs,
  parseInputs,
  type RawInputs,
} from '../config/input-spec.js';
import { errorMessage, isUserError } from '../util/errors.js';
import { annotateInputError } from './annotations.js';
import { outputText, type Reporter } from './reporter.js';

/** The runner's reporter: @actions/core, which masks registered secrets in the log. */
export class ActionsReporter implements Reporter {
  readonly #outputs = new Map<string, string>();
  #summary: string[] = [];
  secret(value: string): void {
    if (value !== '') core.setSecret(value);
  }
  info(message: string): void {
    core.info(message);
  }
  warning(message: string, where?: { file?: string; line?: number; title?: string }): void {
    core.warning(message, toProps(where));
  }
  error(message: string, where?: { file?: string; line?: number; title?: string }): void {
    core.error(message, toProps(where));
  }
  debug(message: string): void {
    core.debug(message);
  }
  group<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return core.group(name, fn);
  }
  output(name: string, value: string | number | boolean | object): void {
    const text = outputText(value);
    this.#outputs.set(name, text);
    core.setOutput(name, text);
  }
  summary(markdown: string): void {
    this.#summary.push(markdown);
  }
  hasOutput(name: string): boolean {
    return this.#outputs.has(name);
  }
  async flushSummary(): Promise<void> {
    if (this.#summary.length === 0 || !process.env.GITHUB_STEP_SUMMARY) return;
    await core.summary.addRaw(this.#summary.join('\n\n'), true).write();
    this.#summary = [];
  }
}

function toProps(where?: { file?: string; line?: number; title?: string }): core.AnnotationProperties | undefined {
  if (!where) return undefined;
  const p: core.AnnotationProperties = {};
  if (where.file) p.file = where.file;
  if (where.line) p.startLine = where.line;
  if (where.title) p.title = where.title;
  return p;
}

/** Reads INPUT_* variables the way the runner sets them (spaces become underscores, upper-cased, hyphens kept). */
export function readActionInputs(spec: ActionSpec): RawInputs {
  const raw: RawInputs = {};
  // Removed inputs are read too, so that one still in a workflow is refused with its pointer, not ignored.
  for (const name of [...Object.keys(spec.inputs), ...Object.keys(spec.removed ?? {})]) {
    const v = process.env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`];
    if (v !== undefined) raw[name] = v;
  }
  return raw;
}

export interface ActionHandlers<S extends InputSpec> {
  main(inputs: ParsedInputs<S>, reporter: Reporter): Promise<void>;
  /** The post step: cleanup that warns instead of failing. */
  post?(reporter: Reporter): Promise<void>;
  rules?: InputRule<S>[];
}

/**
 * Runs an action: main or post step. Secret inputs are registered before anything else is printed,
 * even before validation, because a validation message may quote a value. `success` is always written.
 */
export async function runAction<S extends InputSpec>(spec: ActionSpec<S>, handlers: ActionHandlers<S>): Promise<void> {
  const reporter = new ActionsReporter();
  const isPost = core.getState('isPost') === 'true';
  if (isPost) {
    try {
      await handlers.post?.(reporter);
    } catch (error) {
      core.warning(`cleanup failed: ${errorMessage(error)}`);
    }
    return;
  }
  core.saveState('isPost', 'true');
  try {
    const raw = readActionInputs(spec);
    for (const [name, f] of Object.entries(spec.inputs)) if (f.meta.secret && raw[name]) reporter.secret(raw[name]!);
    const inputs = parseInputs(spec, raw, handlers.rules ?? []);
    await handlers.main(inputs, reporter);
    if (!reporter.hasOutput('success')) reporter.output('success', true);
  } catch (error) {
    reporter.output('success', false);
    // Inventory, playbook and YAML issues point at a file and line: annotations there, then the whole error.
    annotateInputError(error, reporter);
    if (isUserError(error)) {
      core.setFailed(error.message + (error.details.length ? `\n${error.details.join('\n')}` : ''));
    } else {
      core.setFailed(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
  } finally {
    await reporter.flushSummary().catch((e) => core.warning(`could not write the job summary: ${errorMessage(e)}`));
  }
}
