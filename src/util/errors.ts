/**
 * A UserError is a problem the user can fix (bad input, an unreachable host, a refused key).
 * The CLI and the actions print its message without a stack trace; anything else is a bug and keeps its stack.
 */
export class UserError extends Error {
  override readonly name: string = 'UserError';
  /** Extra lines shown under the message (e.g. the last lines of a container log). */
  readonly details: string[];
  constructor(message: string, options: { cause?: unknown; details?: string[] } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.details = options.details ?? [];
  }
}

/** Input that failed validation: every issue, each naming the field (and file:line for YAML). */
export class InputError extends UserError {
  override readonly name = 'InputError';
  readonly issues: string[];
  constructor(issues: string[], context = 'invalid input') {
    super(`${context}:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.issues = issues;
  }
}

export function isUserError(error: unknown): error is UserError {
  return error instanceof UserError;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
