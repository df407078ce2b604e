import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { nginxLayout, upstreamPath } from '../../src/commands/nginx.js';
import { type CliRun, labSecrets, nginxAppFlags, removeNginxApp, runDyce } from '../support/dyce-cli.js';
import { host, hostDocker, lab, uniqueName } from '../support/lab.js';
import { describeLoad, type LoadResult, startLoad } from '../support/load.js';

// Zero-downtime rolling replacement behind vps1's real nginx, through `dyce deploy` (the source): a load of
// ~200 requests per second, each on a new connection, runs through nginx for the whole of each rollout.

const env = lab();
const vps1 = host(env);
const image = (tag: string) => `${env.sampleApp.image}:${tag}`;
const app = uniqueName('roll');
const serverName = `${app}.lab.test`;
// Below the ephemeral port range (32768+), where a client socket's local port could make a replica's bind fail.
const hostPort = 21_000 + 10 * Math.floor(Math.random() * 500);
const layout = nginxLayout(vps1.nginx.prefix);
// The load is ~200 requests per second. The lab's busybox sample app forks ~10 processes per request; on a
// small shared machine it can fall behind (nginx then answers 504 after 60 s of no answer), so the rate can be
// lowered to tell app capacity from routing errors: DYCE_ROLLOUT_RATE=100.
const RATE = Number(process.env.DYCE_ROLLOUT_RATE ?? 200);

function deploy(tag: string, over: Record<string, string> = {}): Promise<CliRun> {
  const flags: Record<string, string> = {
    // Melton's shape: host networking, each replica told its port through PORT.
    ...nginxAppFlags(env, vps1, { name: app, serverName, hostPort }),
    image: image(tag),
    replicas: '4',
    // Drains end when no connection is left to the old replicas; the bound only matters on a very busy machine.
    'drain-timeout': '60s',
    ...over,
  };
  return runDyce('deploy', flags, labSecrets(env));
}

/** Deploys while the load runs through nginx; the load starts before and stops after the deploy. */
async function deployUnderLoad(
  tag: string,
  over: Record<string, string> = {},
): Promise<{ run: CliRun; load: LoadResult }> {
  const load = startLoad({
    port: vps1.nginx.httpPort,
    hostHeader: serverName,
    rate: RATE,
    durationMs: 240_000,
    // A request slowed down by a busy machine is not a failed one: only errors and non-200 answers count.
    timeoutMs: 120_000,
  });
  await new Promise((r) => setTimeout(r, 1000));
  const run = await deploy(tag, over);
  await new Promise((r) => setTimeout(r, 1000));
  return { run, load: await load.stop() };
}

async function containers(): Promise<{ name: string; version: string; port: string }[]> {
  const r = await hostDocker(vps1, [
    'ps',
    '-a',
    '--filter',
    `label=dyce.app=${app}`,
    '--format',
    '{{.Names}} {{.Label "dyce.version"}} {{.Label "dyce.port"}}',
  ]);
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [name, version, port] = l.split(' ') as [string, string, string];
      return { name, version, port };
    })
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

afterAll(() => removeNginxApp(vps1, app));

describe('rolling replacement behind nginx', () => {
  it('first deploy of v1: 4 replicas gated and put in the upstream, with the site', async () => {
    const r = await deploy('v1');
    expect(r.code, r.stderr).toBe(0);
    expect(r.outputs).toMatchObject({ success: 'true', changed: 'true', 'rolled-back': 'false' });
    expect((await containers()).map((c) => c.version)).toEqual(['v1', 'v1', 'v1', 'v1']);
    const upstream = readFileSync(upstreamPath(layout, app), 'utf8');
    for (let i = 0; i < 4; i++) expect(upstream).toContain(`server 127.0.0.1:${hostPort + i} max_fails=0;`);
  });

  it('v1 -> v2 under load: 0 failed requests, answers move from v1 to v2, old replicas gone', {
    timeout: 400_000,
  }, async () => {
    const { run, load } = await deployUnderLoad('v2');
    expect(run.code, run.stderr).toBe(0);
    expect(run.outputs).toMatchObject({ success: 'true', changed: 'true', version: 'v2', 'rolled-back': 'false' });
    expect(load.failed, describeLoad(load)).toBe(0);
    expect(load.byKind.echo).toBeGreaterThan(0);
    expect(load.byKind.sleep).toBeGreaterThan(0);
    expect(load.versionRuns[0]?.version).toBe('v1');
    expect(load.versionRuns.at(-1)?.version).toBe('v2');
    expect(load.versions).toEqual(['v1', 'v2']);
    const after = await containers();
    expect(after.map((c) => [c.name, c.version, c.port])).toEqual(
      [1, 2, 3, 4].map((i) => [`${app}${i}`, 'v2', String(hostPort + 4 + i - 1)]),
    );
  });

  it('never-healthy rolls back by itself: 0 failed requests, v2 serves throughout, the step says why', {
    timeout: 400_000,
  }, async () => {
    const { run, load } = await deployUnderLoad('never-healthy', { 'health-deadline': '4s' });
    expect(run.code).not.toBe(0);
    expect(run.outputs['rolled-back']).toBe('true');
    expect(run.outputs.success).toBe('false');
    expect(run.stderr).toContain(`${app}1 did not become healthy`);
    expect(run.stderr).toContain('HTTP 503: "unhealthy never-healthy"');
    expect(run.stderr).toMatch(/last lines of .*log/);
    expect(run.stderr).toContain('sample app never-healthy');
    expect(load.failed, describeLoad(load)).toBe(0);
    expect(load.versions).toEqual(['v2']);
    expect((await containers()).map((c) => c.version)).toEqual(['v2', 'v2', 'v2', 'v2']);
  });

  it('slow-start beyond the deadline is rolled back; within it, it succeeds', { timeout: 300_000 }, async () => {
    const late = await deploy('slow-start', { 'health-deadline': '3s' });
    expect(late.code).not.toBe(0);
    expect(late.outputs['rolled-back']).toBe('true');
    expect(late.stderr).toContain('did not become healthy within 3s');
    expect((await containers()).map((c) => c.version)).toEqual(['v2', 'v2', 'v2', 'v2']);

    // All four in one batch, so the 8 s start delays overlap instead of adding up.
    const inTime = await deploy('slow-start', { 'health-deadline': '60s', 'max-unavailable': '4' });
    expect(inTime.code, inTime.stderr).toBe(0);
    expect(inTime.outputs['rolled-back']).toBe('false');
    expect((await containers()).map((c) => c.version)).toEqual([
      'slow-start',
      'slow-start',
      'slow-start',
      'slow-start',
    ]);
  });
});
