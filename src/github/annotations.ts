import { InputError } from '../util/errors.js';
import type { Reporter } from './reporter.js';

/** One problem, with the file and line it is about when the message starts with `file:line[:col]: `. */
export interface Annotation {
  message: string;
  file?: string;
  line?: number;
  col?: number;
}

const LOCATED = /^([^\s:][^:\n]*?):(\d+)(?::(\d+))?: ([\s\S]*)$/;

/**
 * Where an issue points, read from the project's message form `file:line: message` (inventories, playbooks, YAML).
 * Pure. An issue without a location is returned as it is.
 */
export function annotationOf(issue: string): Annotation {
  const m = LOCATED.exec(issue);
  if (!m) return { message: issue };
  return { file: m[1]!, line: Number(m[2]), ...(m[3] ? { col: Number(m[3]) } : {}), message: m[4]! };
}

/**
 * Reports each located issue of an input error as an annotation on its file and line (GitHub shows it on the file;
 * the CLI prints `file:line: `). Returns how many were located; the caller still fails the step with the whole error.
 */
export function annotateInputError(error: unknown, reporter: Pick<Reporter, 'error'>): number {
  if (!(error instanceof InputError)) return 0;
  let n = 0;
  for (const issue of error.issues) {
    const a = annotationOf(issue);
    if (!a.file) continue;
    reporter.error(a.message, { file: a.file, ...(a.line ? { line: a.line } : {}) });
    n++;
  }
  return n;
}
