import '../../src/util/cjs-globals.js';
import { deployRules, deploySpec } from '../../src/config/actions/deploy.js';
import { deployMain, deployPost } from '../../src/deploy/action.js';
import { runAction } from '../../src/github/action-runner.js';

/** The action's logic as an exported `run()` (the shape @github/local-action imports); main.ts calls it. */
export async function run(): Promise<void> {
  await runAction(deploySpec, { main: deployMain, post: deployPost, rules: deployRules });
}
