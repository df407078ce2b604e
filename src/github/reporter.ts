/**
 * Where an engine reports to: the Actions runner (through @actions/core) or a terminal (the CLI).
 * Engines never call @actions/core or console directly, so the same engine serves both.
 */
export interface Reporter {
  /** Registers a secret value: masked in everything printed afterwards. Call before any output. */
  secret(value: string): void;
  info(message: string): void;
  warning(message: string, where?: { file?: string; line?: number; title?: string }): void;
  error(message: string, where?: { file?: string; line?: number; title?: string }): void;
  debug(message: string): void;
  group<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** Sets a step output. Values are strings; objects are written as JSON. */
  output(name: string, value: string | number | boolean | object): void;
  /** Appends Markdown to the job summary. */
  summary(markdown: string): void;
}

/** A reporter that records everything, for unit tests of pure logic. */
export class RecordingReporter implements Reporter {
  readonly lines: string[] = [];
  readonly outputs: Record<string, string> = {};
  readonly secrets: string[] = [];
  readonly summaries: string[] = [];
  secret(value: string): void {
    this.secrets.push(value);
  }
  info(message: string): void {
    this.lines.push(message);
  }
  warning(message: string): void {
    this.lines.push(`warning: ${message}`);
  }
  error(message: string): void {
    this.lines.push(`error: ${message}`);
  }
  debug(): void {}
  async group<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.lines.push(`## ${name}`);
    return fn();
  }
  output(name: string, value: string | number | boolean | object): void {
    this.outputs[name] = typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
  summary(markdown: string): void {
    this.summaries.push(markdown);
  }
}

export function outputText(value: string | number | boolean | object): string {
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}
