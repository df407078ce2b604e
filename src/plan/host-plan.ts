import type { Plan, Step } from './plan.js';
import { describeStep } from './plan.js';
import {
  describeNginxRepair,
  describeRolloutStep,
  type NginxRepair,
  type Rollout,
  type RolloutStep,
} from './rollout.js';

/**
 * One host's whole plan, as `dyce plan` prints it and apply executes it: the preparation (registry login, log
 * plugin, pull, secret files), then the strategy's steps (stop-then-start replica steps, or the rollout's batches
 * with their alternate ports, gates, switches, drain and stop), then the nginx files a run repairs. Pure data.
 */
export interface HostPlan {
  replicas: Plan;
  prep: PrepStep[];
  /** Without a proxy: the replica steps that change something, in the order apply runs them. */
  replicaSteps: Exclude<Step, { kind: 'keep' }>[];
  /** Behind nginx: the rolling sequence and the nginx repairs. */
  rollout?: Rollout;
  repairs: NginxRepair[];
}

export type PrepStep =
  | { kind: 'login'; registry: string; username: string }
  | { kind: 'plugin'; action: 'install' | 'enable'; ref: string; alias: string }
  | { kind: 'pull'; image: string; mode: 'missing' | 'always'; login: boolean }
  | { kind: 'secrets'; paths: string[] };

export interface PrepFacts {
  image: string;
  pull: 'missing' | 'always';
  /** The registry login, when credentials are given. */
  login?: { registry: string; username: string };
  /** The Loki plugin's state on the host, when the app logs through it (undefined: not needed). */
  plugin?: { state: 'true' | 'false' | 'missing' | undefined; ref: string; alias: string };
  /** Paths of the secret files the replicas mount. */
  secretPaths: string[];
}

/** Pure: what must be on the host before any container is created. */
export function planPrep(replicas: Plan, f: PrepFacts): PrepStep[] {
  const creates = replicas.steps.some((s) => s.kind === 'create' || s.kind === 'replace');
  const steps: PrepStep[] = [];
  if (f.plugin && f.plugin.state !== 'true') {
    // A plugin may come from the same private registry as the image.
    if (f.login) steps.push({ kind: 'login', ...f.login });
    steps.push({
      kind: 'plugin',
      action: f.plugin.state === 'false' ? 'enable' : 'install',
      ref: f.plugin.ref,
      alias: f.plugin.alias,
    });
  }
  // With pull: always the image was pulled before planning (the plan compares image IDs).
  if (creates && f.pull !== 'always') steps.push({ kind: 'pull', image: f.image, mode: f.pull, login: !!f.login });
  if (creates && f.secretPaths.length) steps.push({ kind: 'secrets', paths: f.secretPaths });
  return steps;
}

/** Pure: the replica steps without a proxy, in apply's order: removes (one docker stop), starts, replaces, creates. */
export function orderReplicaSteps(plan: Plan): Exclude<Step, { kind: 'keep' }>[] {
  const changing = plan.steps.filter((s): s is Exclude<Step, { kind: 'keep' }> => s.kind !== 'keep');
  const rank = (s: Step) => (s.kind === 'remove' ? 0 : s.kind === 'create' ? 2 : 1);
  return changing
    .map((s, i) => ({ s, i }))
    .sort((a, b) => rank(a.s) - rank(b.s) || a.i - b.i)
    .map(({ s }) => s);
}

export function describePrepStep(s: PrepStep): string {
  switch (s.kind) {
    case 'login':
      return `docker login ${s.registry} as ${s.username} (password on stdin)`;
    case 'plugin':
      return s.action === 'enable'
        ? `enable the Docker plugin ${s.alias}`
        : `install the Docker plugin ${s.ref} as ${s.alias}`;
    case 'pull':
      return `pull ${s.image}${s.mode === 'missing' ? ' (if missing)' : ''}`;
    case 'secrets':
      return `write ${s.paths.length} secret file${s.paths.length > 1 ? 's' : ''} (0600, through stdin)`;
  }
}

/** A step of the plan, for `dyce plan` and `--json`: its kind and one line. */
export interface PlannedStep {
  kind: string;
  description: string;
}

/** Pure: the host plan as the ordered steps a run takes. */
export function hostPlanSteps(p: HostPlan): PlannedStep[] {
  return [
    ...p.prep.map((s) => ({ kind: s.kind, description: describePrepStep(s) })),
    ...(p.rollout
      ? p.rollout.steps.map((s: RolloutStep) => ({ kind: s.kind, description: describeRolloutStep(s) }))
      : p.replicaSteps.map((s) => ({ kind: s.kind, description: describeStep(s) }))),
    ...p.repairs.map((r) => ({ kind: r.kind, description: describeNginxRepair(r) })),
  ];
}
