import * as core from '@actions/core';
import { buildPush, type CleanupState, cleanupAfterRun } from '../../src/build/build-push.js';
import { buildPushRules, buildPushSpec } from '../../src/config/actions/build-push.js';
import { runAction } from '../../src/github/action-runner.js';

/** What the main step leaves for the post step: the run's docker config dir and temp paths (JSON). */
const STATE = 'cleanup';

/** The action's logic as an exported `run()` (the shape @github/local-action imports); main.ts calls it. */
export async function run(): Promise<void> {
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
}
