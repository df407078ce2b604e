import * as core from '@actions/core';
import { buildPush, type CleanupState, cleanupAfterRun } from '../../src/build/build-push.js';
import { buildPushRules, buildPushSpec } from '../../src/config/actions/build-push.js';
import { runAction } from '../../src/github/action-runner.js';

const STATE = 'cleanup';

await runAction(buildPushSpec, {
  rules: buildPushRules,
  async main(inputs, reporter) {
    await buildPush(inputs, {
      reporter,
      env: process.env,
      track: (state) => core.saveState(STATE, JSON.stringify(state)),
    });
  },
  async post(reporter) {
    const raw = core.getState(STATE);
    if (raw) await cleanupAfterRun(JSON.parse(raw) as CleanupState, reporter, process.env);
  },
});
