const BRANDS = Symbol.for('dyce.errorBrands');

/**
 * A UserError is a problem the user can fix (bad input, an unreachable host, a refused key).
 * The CLI and the actions print its message without a stack trace; anything else is a bug and keeps its stack.
 */
export class UserError extends Error {
  /**
   * `instanceof` across bundles: the lab is bundled apart from the CLI (build/lab.js), each with its own copy of this
   * class, so a class with its own `brand` recognises its instances by a brand they carry, not by their prototype.
   */
  static readonly brand: string = 'dyce.UserError';
  override readonly name: string = 'UserError';
  /** Extra lines shown under the message (e.g. the last lines of a container log). */
  readonly details: string[];
  readonly [BRANDS]: string[];
  constructor(message: string, options: { cause?: unknown; details?: string[] } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.details = options.details ?? [];
    const brands: string[] = [];
    for (let c: unknown = new.target; c && c !== Error; c = Object.getPrototypeOf(c))
      if (Object.hasOwn(c as object, 'brand')) brands.push((c as { brand: string }).brand);
    this[BRANDS] = brands;
  }
}

/** `value instanceof C`: by brand for a class with its own, by prototype for others (e.g. a subclass without one). */
function hasInstance(this: { brand?: string }, value: unknown): boolean {
  if (!Object.hasOwn(this, 'brand')) return Function.prototype[Symbol.hasInstance].call(this, value);
  const brands = (value as { [BRANDS]?: unknown } | null)?.[BRANDS];
  return Array.isArray(brands) && brands.includes(this.brand);
}
Object.defineProperty(UserError, Symbol.hasInstance, { value: hasInstance });

/** Input that failed validation: every issue, each naming the field (and file:line for YAML). */
export class InputError extends UserError {
  static override readonly brand: string = 'dyce.InputError';
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
