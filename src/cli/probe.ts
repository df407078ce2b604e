import { probeSpec } from '../config/actions/probe.js';
import { parseInputs } from '../config/input-spec.js';
import { probeFailure, runProbeInputs } from '../probe/run.js';
import { parseFlags } from './flags.js';
import type { CliReporter } from './reporter.js';

export const PROBE_USAGE = `usage: dyce probe URL... [--<input> value]... [--json]

Probes each URL (blackbox http_2xx semantics, conditions, retries) with the inputs of the probe action as flags:
  dyce probe https://example.com/health --valid-status-codes 200-299,204 --attempts 10 --interval 3s
  dyce probe https://example.com/api/ --conditions '[BODY].status == UP' --conditions '[RESPONSE_TIME] < 300'
Secrets (telegram-bot-token, bearer-token, client-secret, basic-auth-password, webhook-url) come from
DYCE_<NAME> or --<name>-file PATH|-.  --json prints the result per URL on standard output.
Exit status: 0 passed, 1 failed or bad input.`;

export async function probeCommand(argv: string[], reporter: CliReporter): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${PROBE_USAGE}\n`);
    return 0;
  }
  const { raw, extra, positionals } = parseFlags(probeSpec, argv, { extraBooleans: ['json'] });
  // Secrets first: nothing printed from here on may show them.
  for (const [name, f] of Object.entries(probeSpec.inputs)) if (f.meta.secret && raw[name]) reporter.secret(raw[name]!);
  if (positionals.length) raw.url = [raw.url, ...positionals].filter(Boolean).join('\n');
  const inputs = parseInputs(probeSpec, raw);
  const run = await runProbeInputs(inputs, reporter);
  if (extra.json) process.stdout.write(`${reporter.outputs.results ?? '[]'}\n`);
  if (!run.success) {
    const e = probeFailure(run);
    reporter.error(`${e.message}\n${e.details.join('\n')}`);
    return 1;
  }
  return 0;
}
