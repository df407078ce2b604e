import type { DeployResult, HostOutcome } from '../deploy/engine.js';
import { hostPlanSteps } from '../plan/host-plan.js';
import { describeStep } from '../plan/plan.js';
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
  reporter.output('plan', planOutput(result.hosts));
  reporter.summary(deploySummary(result));
}

/**
 * Each host's plan as data, not the engine's internal objects: `steps`, the replica steps (kind, replica, container,
 * why, how, the line `dyce plan` prints), and `sequence`, the ordered steps a run takes (preparation, the replica
 * steps or the rollout's batches with their ports, gates and switches, and the nginx repairs).
 */
function planOutput(hosts: readonly HostOutcome[]) {
  return hosts.map(({ host, plan, hostPlan }) => ({
    host,
    changed: plan?.changed ?? false,
    steps: (plan?.steps ?? []).map((s) => ({
      kind: s.kind,
      ...('replica' in s ? { replica: s.replica.name, version: s.replica.version } : {}),
      ...('container' in s ? { container: s.container.name } : 'old' in s ? { container: s.old.name } : {}),
      ...('reason' in s ? { reason: s.reason } : {}),
      ...('strategy' in s ? { strategy: s.strategy } : {}),
      description: describeStep(s),
    })),
    sequence: hostPlan ? hostPlanSteps(hostPlan) : [],
  }));
}
