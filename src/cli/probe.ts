import { probeSpec } from '../config/actions/probe.js';
import { issuesOf } from '../config/input-spec.js';
import { assembleProbeConfig } from '../probe/config.js';
import { probeFailure, runProbeInputs } from '../probe/run.js';
import { checkInputs, parseFlags } from './flags.js';
import type { CliReporter } from './reporter.js';
import { EXTRA_FLAGS } from './usage.js';

export async function probeCommand(argv: string[], reporter: CliReporter): Promise<number> {
  const parsed = parseFlags(probeSpec, argv, {
    extra: EXTRA_FLAGS,
    positionals: { name: 'URL', max: Number.POSITIVE_INFINITY },
  });
  const { raw, positionals } = parsed;
  // Secrets first: nothing printed from here on may show them.
  for (const [name, f] of Object.entries(probeSpec.inputs)) if (f.meta.secret && raw[name]) reporter.secret(raw[name]!);
  if (positionals.length) raw.url = [raw.url, ...positionals].filter(Boolean).join('\n');
  // The probe's own checks (URLs, conditions, auth) join the inputs' in one report.
  const inputs = checkInputs(probeSpec, parsed, [(i) => issuesOf(() => assembleProbeConfig(i))]);
  const run = await runProbeInputs(inputs, reporter);
  if (!run.success) throw probeFailure(run);
  return 0;
}
