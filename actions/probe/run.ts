import { probeSpec } from '../../src/config/actions/probe.js';
import { runAction } from '../../src/github/action-runner.js';
import { probeFailure, runProbeInputs } from '../../src/probe/run.js';

/** The action's logic as an exported `run()` (the shape @github/local-action imports); main.ts calls it. */
export async function run(): Promise<void> {
  await runAction(probeSpec, {
    async main(inputs, reporter) {
      const result = await runProbeInputs(inputs, reporter);
      if (!result.success) throw probeFailure(result);
    },
  });
}
