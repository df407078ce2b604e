import { probeSpec } from '../../src/config/actions/probe.js';
import { runAction } from '../../src/github/action-runner.js';
import { probeFailure, runProbeInputs } from '../../src/probe/run.js';

await runAction(probeSpec, {
  async main(inputs, reporter) {
    const run = await runProbeInputs(inputs, reporter);
    if (!run.success) throw probeFailure(run);
  },
});
