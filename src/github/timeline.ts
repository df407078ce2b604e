/**
 * A rollout as a picture: a Mermaid `gantt` block (GitHub renders it in a job summary), one row per replica, one
 * bar per step (start, gate, switch, drain, stop) and the rollback when there was one. Pure: events in, Markdown out.
 */
export interface TimelineEvent {
  /** The row: one replica, e.g. `vps1 web2` (or a host-wide row such as `vps1 pull`). */
  row: string;
  /** What ran: `start`, `gate`, `switch`, `drain`, `stop`, `rollback`, ... */
  step: string;
  /** Milliseconds since the epoch. */
  start: number;
  end: number;
  /** The step failed (drawn red). */
  failed?: boolean;
}

/** Mermaid gantt text may not hold `:` `;` `#` (separators, comments, entities) or line breaks in names. */
function label(text: string): string {
  return (
    text
      .replace(/[:;#\r\n]+/g, ' ')
      .replace(/\s+/g, ' ')
      .trim() || '-'
  );
}

/**
 * The ```mermaid block of a rollout. Rows keep the order of their first event; bars within a row, their start.
 * `compact` mode puts a replica's steps on one line. A step of no measurable length is drawn 1 ms long, so it shows.
 * (No `title` line: Mermaid sanitizes titles with a DOM; the summary's heading names the rollout.)
 */
export function rolloutGantt(events: readonly TimelineEvent[]): string {
  const rows = new Map<string, TimelineEvent[]>();
  for (const e of events) {
    const r = rows.get(e.row) ?? [];
    r.push(e);
    rows.set(e.row, r);
  }
  const lines = ['```mermaid', '---', 'displayMode: compact', '---', 'gantt', '  dateFormat x', '  axisFormat %M:%S'];
  let n = 0;
  for (const [row, list] of rows) {
    lines.push(`  section ${label(row)}`);
    for (const e of [...list].sort((a, b) => a.start - b.start)) {
      const start = Math.round(e.start);
      const end = Math.max(Math.round(e.end), start + 1);
      const tags = [e.failed || e.step === 'rollback' ? 'crit' : 'done', `t${n++}`];
      lines.push(`    ${label(e.step)} :${tags.join(', ')}, ${start}, ${end}`);
    }
  }
  lines.push('```');
  return lines.join('\n');
}
