import { formatDuration } from '../util/duration.js';
import type { DeployResult } from './engine.js';

/** The job summary: per host, each replica's action, old -> new version, port and time. */
export function deploySummary(r: DeployResult): string {
  const lines = [`### Dyce deploy: ${r.app} ${r.version}${r.dryRun ? ' (dry run: nothing changed)' : ''}`, ''];
  lines.push('| host | replica | action | version | port | container | time |', '|---|---|---|---|---|---|---|');
  let stopThenStart = false;
  for (const h of r.hosts) {
    for (const s of h.plan?.steps ?? []) {
      const rec = h.steps.find(
        (x) =>
          (x.kind === s.kind || x.kind === 'rollout' || (s.kind === 'remove' && x.kind === 'remove-batch')) &&
          x.description.includes(`${nameOf(s)}:`),
      );
      const time = rec ? formatDuration(rec.ms) : s.kind === 'keep' ? '' : r.dryRun ? 'planned' : 'not done';
      if (s.kind === 'replace' && s.strategy === 'stop-then-start') stopThenStart = true;
      const replica = h.replicas.find((x) => x.name === nameOf(s));
      const version =
        s.kind === 'replace'
          ? `${s.old.version ?? s.old.image} → ${s.replica.version}`
          : s.kind === 'remove'
            ? `${s.container.version ?? s.container.image} → (removed)`
            : s.kind === 'create'
              ? `→ ${s.replica.version}`
              : s.replica.version;
      const port =
        replica?.port !== undefined
          ? String(replica.port)
          : 'replica' in s && s.replica.hostPort !== undefined
            ? String(s.replica.hostPort)
            : '';
      const action = s.kind === 'keep' ? 'unchanged' : s.kind === 'replace' ? `replace (${s.strategy})` : s.kind;
      lines.push(
        `| ${h.host} | ${nameOf(s)} | ${action} | ${version} | ${port} | ${replica?.id.slice(0, 12) ?? ''} | ${time} |`,
      );
    }
    if (h.error) lines.push(`| ${h.host} | | **failed** | | | | ${formatDuration(h.ms)} |`);
  }
  lines.push('');
  if (stopThenStart)
    lines.push(
      'Changed replicas were replaced stop-then-start: each was down while it restarted. Zero-downtime rollouts need a proxy in front.',
      '',
    );
  const changed = r.hosts.some((h) => h.changed);
  lines.push(`${changed ? 'Changed' : r.dryRun ? 'Planned' : 'Nothing changed'} in ${formatDuration(r.ms)}.`);
  for (const h of r.hosts) if (h.error) lines.push('', `**${h.host}:** ${h.error.split('\n')[0]}`);
  return lines.join('\n');
}

function nameOf(s: { kind: string } & ({ replica: { name: string } } | { container: { name: string } })): string {
  return 'replica' in s ? s.replica.name : s.container.name;
}
