import type { ActionSpec } from '../input-spec.js';
import { buildPushSpec } from './build-push.js';
import { deploySpec } from './deploy.js';
import { probeSpec } from './probe.js';

/** Every action Dyce ships; the build renders one action.yml and one bundle for each. */
export const actionSpecs: ActionSpec[] = [
  buildPushSpec as ActionSpec,
  probeSpec as ActionSpec,
  deploySpec as ActionSpec,
];
