import type { DeployResult } from '../deploy/engine.js';
import { hostPlanSteps } from '../plan/host-plan.js';
import { deploySummary } from './deploy-summary.js';
import type { Reporter } from './reporter.js';

/**
 * The one adapter from a deploy's result to what the user sees: the step outputs (version, changed, rolled-back,
 * replicas, failed-hosts, host-states) and the job summary. The action and the CLI (its --json and text) both
 * go through it, failed run or not.
 */
export function reportDeploy(result: DeployResult, reporter: Reporter): void {
  reporter.output('failed-hosts', result.failedHosts.join(','));
  reporter.output(
    'host-states',
    Object.fromEntries(
      result.hosts.map((h) => [
        h.host,
        { state: h.state, ...(h.error || h.skipReason ? { error: (h.error ?? h.skipReason)!.split('\n')[0] } : {}) },
      ]),
    ),
  );
  reporter.output('version', result.version);
  reporter.output('changed', result.changed);
  reporter.output(
    'rolled-back',
    result.hosts.some((h) => h.rolledBack === true),
  );
  reporter.output('replicas', Object.fromEntries(result.hosts.map((h) => [h.host, h.replicas.map((r) => ({ ...r }))])));
  // The plan of each host, step by step: what `dyce plan` would do, or what this run planned and executed.
  reporter.output(
    'plan',
    Object.fromEntries(result.hosts.flatMap((h) => (h.hostPlan ? [[h.host, hostPlanSteps(h.hostPlan)]] : []))),
  );
  reporter.summary(deploySummary(result));
}
