import { inspect } from 'node:util';

const REDACTED = '***';

/**
 * A secret value. It prints as *** everywhere (toString, JSON, util.inspect, template strings),
 * so that logging an options object can never leak it. Only `reveal()` gives the value, and the
 * value may only travel to a remote host through stdin or a 0600 file, never argv.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  get isEmpty(): boolean {
    return this.#value === '';
  }
  toString(): string {
    return REDACTED;
  }
  toJSON(): string {
    return REDACTED;
  }
  [inspect.custom](): string {
    return `Secret(${REDACTED})`;
  }
}

/**
 * Replaces registered secret values in text. Values are matched longest first so that a secret
 * containing another is fully hidden. Multi-line secrets are also registered line by line,
 * as the Actions runner does, because logs are often printed a line at a time.
 */
export class Redactor {
  readonly #values = new Set<string>();
  #sorted: string[] = [];

  add(value: string): void {
    const parts = [value, ...value.split(/\r?\n/)]
      .map((v) => (v.trim() === '' ? '' : v))
      .filter((v) => v.length >= 3 || v === value);
    for (const p of parts) if (p !== '') this.#values.add(p);
    this.#sorted = [...this.#values].sort((a, b) => b.length - a.length);
  }

  get size(): number {
    return this.#values.size;
  }

  redact(text: string): string {
    let out = text;
    for (const v of this.#sorted) if (out.includes(v)) out = out.split(v).join(REDACTED);
    return out;
  }
}
