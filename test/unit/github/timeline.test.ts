import mermaid from 'mermaid';
import { describe, expect, it } from 'vitest';
import { rolloutGantt, type TimelineEvent } from '../../../src/github/timeline.js';

const T = 1_760_000_000_000;

/** The block's tasks as Mermaid's own gantt parser reads them: row, step, start, end, drawn red. */
async function tasksOf(block: string): Promise<[string, string, number, number, boolean][]> {
  const text = block.replace(/^```mermaid\n/, '').replace(/\n```$/, '');
  expect(await mermaid.parse(text)).toMatchObject({
    diagramType: 'gantt',
    config: { gantt: { displayMode: 'compact' } },
  });
  const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
  const db = diagram.db as unknown as {
    getTasks(): { section: string; task: string; startTime: Date; endTime: Date; crit?: boolean }[];
  };
  return db.getTasks().map((t) => [t.section, t.task.trim(), +t.startTime, +t.endTime, t.crit === true]);
}

describe('rolloutGantt', () => {
  it("parses with Mermaid's parser, one row per replica, one bar per step that ran, the rollback in red", async () => {
    const events: TimelineEvent[] = [
      { row: 'vps1 web1', step: 'start', start: T, end: T + 800 },
      { row: 'vps1 web1', step: 'gate', start: T + 800, end: T + 2_300 },
      { row: 'vps1 web1', step: 'switch', start: T + 2_300, end: T + 2_340 },
      { row: 'vps1 web1', step: 'drain', start: T + 2_340, end: T + 4_340 },
      { row: 'vps1 web1', step: 'stop', start: T + 4_340, end: T + 4_600 },
      { row: 'vps1 web2', step: 'start', start: T + 4_600, end: T + 5_000 },
      { row: 'vps1 web2', step: 'gate', start: T + 5_000, end: T + 9_000, failed: true },
      { row: 'vps1 web2', step: 'rollback', start: T + 9_000, end: T + 9_000 },
    ];
    const block = rolloutGantt(events);
    expect(block.startsWith('```mermaid\n')).toBe(true);
    expect(await tasksOf(block)).toEqual([
      ['vps1 web1', 'start', T, T + 800, false],
      ['vps1 web1', 'gate', T + 800, T + 2_300, false],
      ['vps1 web1', 'switch', T + 2_300, T + 2_340, false],
      ['vps1 web1', 'drain', T + 2_340, T + 4_340, false],
      ['vps1 web1', 'stop', T + 4_340, T + 4_600, false],
      ['vps1 web2', 'start', T + 4_600, T + 5_000, false],
      ['vps1 web2', 'gate', T + 5_000, T + 9_000, true],
      ['vps1 web2', 'rollback', T + 9_000, T + 9_001, true],
    ]);
  });

  it('keeps names that would break the block out of its syntax, and sorts bars by start', async () => {
    const block = rolloutGantt([
      { row: 'web:1 #x', step: 'gate; late', start: T + 10, end: T + 20 },
      { row: 'web:1 #x', step: 'start\nnow', start: T, end: T + 10 },
    ]);
    expect(await tasksOf(block)).toEqual([
      ['web 1 x', 'start now', T, T + 10, false],
      ['web 1 x', 'gate late', T + 10, T + 20, false],
    ]);
  });

  it('the parser refuses what it must: the check can fail', async () => {
    const good = rolloutGantt([{ row: 'r', step: 'gate', start: T, end: T + 1 }]);
    // A bar without its ":" and data is no task line.
    await expect(tasksOf(good.replace('gate :', 'gate '))).rejects.toThrow();
    // A raw colon in a name breaks the task (hence label()).
    await expect(tasksOf(good.replace('gate :', 'ga:te :'))).rejects.toThrow();
    await expect(tasksOf(good)).resolves.toEqual([['r', 'gate', T, T + 1, false]]);
  });
});
