import type { DeployResult, HostOutcome } from '../deploy/engine.js';
import { formatDuration } from '../util/duration.js';

/**
 * The job summary: one table, a row per host (replicas, versions, action taken, time, result); below it, why
 * each failed or skipped host ended as it did.
 */
export function deploySummary(r: DeployResult): string {
  const lines = [`### Dyce deploy: ${r.app} ${r.version}${r.dryRun ? ' (dry run: nothing changed)' : ''}`, ''];
  lines.push('| host | replicas | versions | action | time | result |', '|---|---|---|---|---|---|');
  let stopThenStart = false;
  for (const h of r.hosts) {
    if (h.plan?.steps.some((s) => s.kind === 'replace' && s.strategy === 'stop-then-start')) stopThenStart = true;
    const time = h.state === 'skipped' ? '' : formatDuration(h.ms);
    lines.push(
      `| ${h.host} | ${replicasCell(h, r.dryRun)} | ${versionsCell(h, r.version)} | ${actionCell(h, r.dryRun)} | ${time} | ${resultCell(h)} |`,
    );
  }
  lines.push('');
  if (stopThenStart)
    lines.push(
      'Changed replicas were replaced stop-then-start: each was down while it restarted. Zero-downtime rollouts need a proxy in front.',
      '',
    );
  const changed = r.hosts.some((h) => h.changed);
  const counts = countStates(r.hosts);
  lines.push(
    `${changed ? 'Changed' : r.dryRun ? 'Planned' : 'Nothing changed'} in ${formatDuration(r.ms)}${counts ? ` (${counts})` : ''}.`,
  );
  for (const h of r.hosts) {
    const why = h.error ?? h.skipReason;
    if (why) lines.push('', `**${h.host}** ${h.state}: ${why.split('\n')[0]}`);
  }
  const steps = r.hosts.flatMap((h) => h.steps.map((s) => `- ${h.host}: ${s.description} (${formatDuration(s.ms)})`));
  if (steps.length) lines.push('', '<details><summary>Steps</summary>', '', ...steps, '', '</details>');
  return lines.join('\n');
}

function replicasCell(h: HostOutcome, dryRun: boolean): string {
  const names = h.replicas.map((x) => x.name);
  if (names.length) return `${names.length} (${names.join(', ')})`;
  const planned = dryRun ? h.plan?.steps.filter((s) => s.kind !== 'remove').length : undefined;
  return planned ? `${planned} planned` : '';
}

function versionsCell(h: HostOutcome, version: string): string {
  if (h.state === 'skipped') return '';
  const before = [...new Set(h.plan?.previousVersions ?? [])].filter(Boolean);
  if (!h.plan) return '';
  if (before.length === 0) return `→ ${version}`;
  if (before.length === 1 && before[0] === version && !h.plan.changed) return version;
  const after = h.state === 'failed' || h.state === 'rolled-back' ? `${version} (not reached)` : version;
  return `${before.join(', ')} → ${after}`;
}

function actionCell(h: HostOutcome, dryRun: boolean): string {
  if (h.state === 'skipped') return 'not started';
  if (!h.plan) return h.error ? 'none (failed before planning)' : '';
  const counts = new Map<string, number>();
  for (const s of h.plan.steps) {
    if (s.kind === 'keep') continue;
    const k = s.kind === 'replace' ? `replace (${s.strategy})` : s.kind;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  if (counts.size === 0) return 'none';
  const text = [...counts].map(([k, n]) => `${k} ×${n}`).join(', ');
  return dryRun ? `planned: ${text}` : text;
}

function resultCell(h: HostOutcome): string {
  return h.state === 'failed' || h.state === 'rolled-back' ? `**${h.state}**` : h.state;
}

function countStates(hosts: HostOutcome[]): string {
  if (hosts.length < 2) return '';
  const counts = new Map<string, number>();
  for (const h of hosts) counts.set(h.state, (counts.get(h.state) ?? 0) + 1);
  return [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
}
