import { probeSpec } from '../../src/config/actions/probe.js';
import { runAction } from '../../src/github/action-runner.js';

await runAction(probeSpec, {
  async main(inputs, reporter) {
    reporter.info(`probing ${inputs.url.join(', ')}`);
  },
});
