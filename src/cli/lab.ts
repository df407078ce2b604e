import type { CliReporter } from './reporter.js';

export async function labCommand(_argv: string[], reporter: CliReporter): Promise<number> {
  reporter.error('lab: not implemented yet');
  return 1;
}
