import { readFileSync, rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { nginxLayout, upstreamPath } from '../../src/commands/nginx.js';
import { type CliRun, labSecrets, nginxAppFlags, removeNginxApp, runDyce } from '../support/dyce-cli.js';
import { host, lab, uniqueName } from '../support/lab.js';

// The plan `dyce plan` prints is the plan `dyce deploy` executes, behind nginx: over a first deploy, a version
// change (batches on alternate ports, gates, switches, drain, stop), a deleted upstream file (a repair) and a rerun,
// each scenario is planned, then applied, and what the host's audit says was executed is checked against the plan.

const env = lab();
const vps2 = host(env, 'vps2');
const app = uniqueName('plan');
const serverName = `${app}.lab.test`;
const hostPort = 24_000 + 10 * Math.floor(Math.random() * 300);
const upstream = upstreamPath(nginxLayout(vps2.nginx.prefix), app);

interface Planned {
  kind: string;
  description: string;
}

function dyce(command: 'plan' | 'deploy', tag: string): Promise<CliRun> {
  return runDyce(
    command,
    { ...nginxAppFlags(env, vps2, { name: app, serverName, hostPort }), image: `${env.sampleApp.image}:${tag}` },
    labSecrets(env),
  );
}

function planOf(r: CliRun): Planned[] {
  expect(r.code, r.stderr).toBe(0);
  const plan = JSON.parse(r.outputs.plan ?? '[]') as { host: string; sequence: Planned[] }[];
  return plan.find((h) => h.host === 'vps2')?.sequence ?? [];
}

/** What the run executed, as the host's audit recorded it (one line per step taken). */
function executed(): string[] {
  const lines = readFileSync(`${vps2.stateDir}/audit.log`, 'utf8').trim().split('\n');
  const last = JSON.parse(lines.filter((l) => l.includes(`"app":"${app}"`)).at(-1) ?? '{}') as { steps?: string[] };
  return last.steps ?? [];
}

/** Plans, then deploys; checks that every step executed was planned and every planned step ran. */
async function planThenDeploy(tag: string): Promise<Planned[]> {
  const planned = planOf(await dyce('plan', tag));
  const deployed = await dyce('deploy', tag);
  // The run's own plan is the one `dyce plan` printed.
  expect(planOf(deployed)).toEqual(planned);
  const ran = executed();
  if (planned.length === 0) return planned;
  // Each executed step is a planned one (a start record also names the old replica it renamed).
  for (const step of ran)
    expect(
      planned.some((p) => step.startsWith(p.description)),
      step,
    ).toBe(true);
  // Each planned step ran: a retire runs with its start, and the final stop in the drain's round trip.
  for (const p of planned.filter((x) => !['retire', 'stop-old'].includes(x.kind)))
    expect(
      ran.some((step) => step.startsWith(p.description)),
      `${p.description} not in ${JSON.stringify(ran)}`,
    ).toBe(true);
  return planned;
}

afterAll(() => removeNginxApp(vps2, app));

describe('dyce plan behind nginx is what dyce deploy executes', { timeout: 240_000 }, () => {
  it('first deploy: the pull, each replica started on its port, gated and switched in, the site installed', async () => {
    const planned = await planThenDeploy('v1');
    expect(planned.map((s) => s.kind)).toEqual([
      'pull',
      'start',
      'gate',
      'switch',
      'start',
      'gate',
      'switch',
      'install-site',
    ]);
    expect(planned[1]!.description).toContain(`on port ${hostPort}`);
  });

  it('v1 -> v2: batches on the alternate ports, each gated and switched, then one drain and one stop', async () => {
    const planned = await planThenDeploy('v2');
    expect(planned.map((s) => s.kind)).toEqual([
      'pull',
      'retire',
      'start',
      'gate',
      'switch',
      'retire',
      'start',
      'gate',
      'switch',
      'drain',
      'stop-old',
    ]);
    expect(planned[2]!.description).toContain(`start v2 on port ${hostPort + 2}`);
    expect(planned[6]!.description).toContain(`start v2 on port ${hostPort + 3}`);
    expect(planned[8]!.description).toContain(`upstream -> ${hostPort + 2}, ${hostPort + 3}`);
  });

  it('a deleted upstream file: the plan shows the repair, and the run makes it', async () => {
    rmSync(upstream);
    const planned = await planThenDeploy('v2');
    expect(planned).toEqual([{ kind: 'write-upstream', description: `upstream -> ${hostPort + 2}, ${hostPort + 3}` }]);
    expect(executed()).toEqual([`upstream -> ${hostPort + 2}, ${hostPort + 3}`]);
  });

  it('a rerun: nothing planned, nothing executed', async () => {
    expect(await planThenDeploy('v2')).toEqual([]);
    expect(executed()).toEqual([]);
  });
});
