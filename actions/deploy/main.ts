import '../../src/util/cjs-globals.js';
import { deployRules, deploySpec } from '../../src/config/actions/deploy.js';
import { deployMain, deployPost } from '../../src/deploy/action.js';
import { runAction } from '../../src/github/action-runner.js';

await runAction(deploySpec, { main: deployMain, post: deployPost, rules: deployRules });
