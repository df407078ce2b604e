import { UserError } from '../util/errors.js';
import type { DesiredReplica, DesiredState } from './desired.js';
import type { ObservedContainer } from './observed.js';

/**
 * How a changed replica is replaced. Without a proxy in front, the old container must free its name and port
 * first: stop, then start (a short outage of that replica, said so in the summary). A proxy-driven rollout
 * (start the new one on the slot's alternate port, gate, switch, drain, stop) adds its own strategy here.
 */
export type ReplaceStrategy = 'stop-then-start' | 'rolling';

export type Step =
  | { kind: 'create'; replica: DesiredReplica }
  | {
      kind: 'replace';
      replica: DesiredReplica;
      old: ObservedContainer;
      strategy: ReplaceStrategy;
      reason: string;
    }
  | { kind: 'start'; replica: DesiredReplica; container: ObservedContainer }
  | { kind: 'remove'; container: ObservedContainer; reason: string }
  | { kind: 'keep'; replica: DesiredReplica; container: ObservedContainer };

export interface Plan {
  app: string;
  version: string;
  /** Removes first (a scale-down frees ports), then each replica in order. `keep` steps change nothing. */
  steps: Step[];
  /** True when any step changes a container. */
  changed: boolean;
  /** Versions running before, by replica (for "old -> new" in the summary). */
  previousVersions: string[];
}

/** Containers in the way of a replica name: refused by name, never touched. */
export class PlanConflict extends UserError {
  override readonly name = 'PlanConflict';
}

export interface PlanOptions {
  /** Take over containers that hold a replica name but carry no Dyce labels. */
  adopt: boolean;
  host: string;
  /** How a changed replica is replaced (default stop-then-start; `rolling` behind a proxy, see rollout.ts). */
  strategy?: ReplaceStrategy;
  /**
   * With `pull: always`: the ID of the image the tag names right after the pull. A replica with the desired spec
   * whose container runs another image (the tag was rebuilt and pushed again) is replaced; one whose image ID is
   * unknown is kept.
   */
  imageId?: string;
}

/** Pure: desired replicas + observed containers -> ordered steps. */
export function planReplicas(desired: DesiredState, observed: readonly ObservedContainer[], opts: PlanOptions): Plan {
  const byName = new Map(observed.map((c) => [c.name, c]));
  const wanted = new Set(desired.replicas.map((r) => r.name));
  const conflicts: string[] = [];
  const replicaSteps: Step[] = [];

  for (const r of desired.replicas) {
    const c = byName.get(r.name);
    if (!c) {
      replicaSteps.push({ kind: 'create', replica: r });
    } else if (c.app === desired.app) {
      const rebuilt = opts.imageId !== undefined && c.imageId !== undefined && c.imageId !== opts.imageId;
      if (c.specHash === r.specHash && !rebuilt) {
        replicaSteps.push(
          c.running ? { kind: 'keep', replica: r, container: c } : { kind: 'start', replica: r, container: c },
        );
      } else {
        replicaSteps.push({
          kind: 'replace',
          replica: r,
          old: c,
          strategy: opts.strategy ?? 'stop-then-start',
          reason: c.specHash === r.specHash ? rebuiltReason(c, r, opts.imageId!) : changeReason(c, r),
        });
      }
    } else if (c.app === undefined) {
      if (opts.adopt)
        replicaSteps.push({
          kind: 'replace',
          replica: r,
          old: c,
          strategy: opts.strategy ?? 'stop-then-start',
          reason: `adopted (was ${c.image}, not made by Dyce)`,
        });
      else conflicts.push(`${r.name} (${shortId(c.id)}, ${c.image}, ${c.status}) has no Dyce labels`);
    } else {
      conflicts.push(`${r.name} (${shortId(c.id)}) belongs to Dyce app "${c.app}"`);
    }
  }
  if (conflicts.length) {
    throw new PlanConflict(
      `${opts.host}: containers are in the way of ${desired.app}'s replicas; nothing was changed`,
      {
        details: [
          ...conflicts.map((c) => `  - ${c}`),
          'Remove them, or set adopt: true to replace containers without Dyce labels (e.g. ones Ansible made).',
        ],
      },
    );
  }

  const removes: Step[] = observed
    .filter((c) => c.app === desired.app && !wanted.has(c.name))
    .sort((a, b) => (a.replica ?? 0) - (b.replica ?? 0) || (a.name < b.name ? -1 : 1))
    .map((c) => ({
      kind: 'remove' as const,
      container: c,
      reason: c.replica !== undefined && c.replica > desired.replicas.length ? 'surplus replica' : 'not a replica name',
    }));

  const steps = [...removes, ...replicaSteps];
  const previousVersions = [
    ...new Set(
      observed
        .filter((c) => c.app === desired.app && c.version !== undefined)
        .sort((a, b) => (a.replica ?? 0) - (b.replica ?? 0))
        .map((c) => c.version!),
    ),
  ];
  return {
    app: desired.app,
    version: desired.version,
    steps,
    changed: steps.some((s) => s.kind !== 'keep'),
    previousVersions,
  };
}

function changeReason(c: ObservedContainer, r: DesiredReplica): string {
  if (c.version !== r.version) return `version ${c.version ?? '?'} -> ${r.version}`;
  if (c.image !== r.run.image) return `image ${c.image} -> ${r.run.image}`;
  return 'spec changed';
}

function rebuiltReason(c: ObservedContainer, r: DesiredReplica, imageId: string): string {
  return `image ${r.run.image} was rebuilt: ${shortId(c.imageId!.replace(/^sha256:/, ''))} -> ${shortId(imageId.replace(/^sha256:/, ''))}`;
}

function shortId(id: string): string {
  return id.slice(0, 12);
}

/** One line per step, for logs, dry runs and the summary. */
export function describeStep(s: Step): string {
  switch (s.kind) {
    case 'create':
      return `${s.replica.name}: create ${s.replica.version}${port(s.replica)}`;
    case 'replace':
      return `${s.replica.name}: replace ${s.old.version ?? s.old.image} -> ${s.replica.version}${s.strategy === 'rolling' ? '' : port(s.replica)} (${s.reason}; ${s.strategy === 'rolling' ? 'rolling: the old replica serves until its successor passes its health gate' : `${s.strategy}: this replica is down while it restarts`})`;
    case 'start':
      return `${s.replica.name}: start (was ${s.container.status})`;
    case 'remove':
      return `${s.container.name}: remove (${s.reason})`;
    case 'keep':
      return `${s.replica.name}: unchanged`;
  }
}

function port(r: DesiredReplica): string {
  return r.hostPort === undefined ? '' : ` on port ${r.hostPort}`;
}

export function describePlan(plan: Plan, host: string): string[] {
  if (!plan.changed) return [`${host}: ${plan.app} is up to date (${plan.steps.length} replicas unchanged)`];
  return [`${host}: ${plan.app} plan:`, ...plan.steps.map((s) => `  ${describeStep(s)}`)];
}
