import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseInventory } from '../../../src/config/inventory.js';
import { RecordingReporter } from '../../../src/github/reporter.js';
import { JsonCollector } from '../../../src/playbook/output.js';
import { parsePlaybook } from '../../../src/playbook/parse.js';
import { runPlaybook } from '../../../src/playbook/run.js';
import { type ExecResult, RecordingExecutor } from '../../../src/remote/executor.js';
import { UserError } from '../../../src/util/errors.js';
import { MELTON_DIR } from '../../support/melton.js';
import { mutatePlaybook } from '../../support/playbook-mutations.js';

const melton = readFileSync(join(MELTON_DIR, 'playbook.yml'), 'utf8');
const inventory = parseInventory(readFileSync(join(MELTON_DIR, 'hosts'), 'utf8'), { source: 'hosts' });

function answer(argv: readonly string[]): ExecResult {
  if (argv[0] === 'dpkg-query') return { code: 0, stdout: 'curl ii 1\nca-certificates ii 1\n', stderr: '' };
  if (argv[0] === 'sh' && String(argv[2]).includes('container inspect'))
    return { code: 0, stdout: '[]\n--dyce--\n', stderr: '' };
  return { code: 0, stdout: '', stderr: '' };
}

const MUTATING = /\b(run|create|rm|stop|start|restart|kill|login|pull|install|remove|update)\b/;

describe('fuzzing the Melton playbook (--check, recording executor)', () => {
  const mutations = mutatePlaybook(melton, 240);

  it('generates at least 200 distinct mutations', () => {
    expect(new Set(mutations.map((m) => m.text)).size).toBeGreaterThanOrEqual(200);
  });

  it('each mutation plans or is refused cleanly, with no uncaught exception and nothing changed', async () => {
    const crashes: string[] = [];
    const changedHosts: string[] = [];
    let planned = 0;
    let refused = 0;
    for (const m of mutations) {
      const calls: string[][] = [];
      try {
        const pb = parsePlaybook(m.text, 'playbook.yml');
        const r = await runPlaybook(pb, {
          inventory,
          extraVars: { REGISTRY: 'r:5000', DOCKER_TAG: 'v1', DOCKER_USERNAME: 'u', DOCKER_PASSWORD: 'p' },
          check: true,
          reporter: new RecordingReporter(),
          events: new JsonCollector(),
          connect: async (h) => {
            const e = new RecordingExecutor(h.name, (argv) => answer(argv));
            const run = e.run.bind(e);
            e.run = (argv, o) => {
              calls.push([...argv]);
              return run(argv, o);
            };
            return e;
          },
        });
        expect([0, 2, 4]).toContain(r.exitCode);
        planned++;
      } catch (error) {
        if (error instanceof UserError) refused++;
        else crashes.push(`${m.name}: ${(error as Error).stack?.split('\n').slice(0, 3).join(' | ')}`);
      }
      // --check never runs a command that changes the host (reads only: inspect, dpkg-query, cat, id).
      const bad = calls.filter(
        (c) => c[0] !== 'sh' && c[0] !== 'dpkg-query' && c[0] !== 'cat' && MUTATING.test(c.join(' ')),
      );
      if (bad.length) changedHosts.push(`${m.name}: ${bad.map((c) => c.join(' ')).join('; ')}`);
    }
    expect(crashes).toEqual([]);
    expect(changedHosts).toEqual([]);
    expect(planned + refused).toBe(mutations.length);
    // Both outcomes occur, so the fuzzer really explores both sides.
    expect(planned).toBeGreaterThan(20);
    expect(refused).toBeGreaterThan(20);
  }, 120_000);
});
