import type { Reporter } from '../github/reporter.js';
import { Redactor } from '../util/secret.js';

/**
 * The CLI's reporter. Outside Actions, core.setSecret would print `::add-mask::<value>` to stdout,
 * which is the opposite of masking; so the CLI keeps its own Redactor and filters everything it writes,
 * including whatever other code writes to process.stdout / process.stderr.
 */
export class CliReporter implements Reporter {
  readonly redactor = new Redactor();
  /** The outputs as the engine gave them (booleans, numbers, objects): `--json` prints them typed. */
  readonly outputs: Record<string, unknown> = {};
  readonly summaries: string[] = [];
  readonly #quiet: boolean;
  #restore: (() => void) | undefined;

  constructor(opts: { quiet?: boolean } = {}) {
    this.#quiet = opts.quiet ?? false;
  }

  /** Wraps process.stdout/stderr so that nothing printed by this process can show a registered secret. */
  install(): this {
    const wrap = (stream: NodeJS.WriteStream) => {
      const original = stream.write.bind(stream);
      stream.write = ((chunk: unknown, ...rest: unknown[]) => {
        const text =
          typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk);
        return (original as (c: string, ...r: unknown[]) => boolean)(this.redactor.redact(text), ...rest);
      }) as typeof stream.write;
      return () => {
        stream.write = original as typeof stream.write;
      };
    };
    const a = wrap(process.stdout);
    const b = wrap(process.stderr);
    this.#restore = () => {
      a();
      b();
    };
    return this;
  }

  uninstall(): void {
    this.#restore?.();
  }

  secret(value: string): void {
    if (value !== '') this.redactor.add(value);
  }
  info(message: string): void {
    if (!this.#quiet) process.stderr.write(`${message}\n`);
  }
  warning(message: string, where?: { file?: string; line?: number }): void {
    process.stderr.write(`warning: ${loc(where)}${message}\n`);
  }
  error(message: string, where?: { file?: string; line?: number }): void {
    process.stderr.write(`error: ${loc(where)}${message}\n`);
  }
  debug(message: string): void {
    if (process.env.DYCE_DEBUG) process.stderr.write(`debug: ${message}\n`);
  }
  async group<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.info(`== ${name}`);
    return fn();
  }
  output(name: string, value: string | number | boolean | object): void {
    this.outputs[name] = value;
  }
  summary(markdown: string): void {
    this.summaries.push(markdown);
  }
}

function loc(where?: { file?: string; line?: number }): string {
  if (!where?.file) return '';
  return where.line ? `${where.file}:${where.line}: ` : `${where.file}: `;
}
