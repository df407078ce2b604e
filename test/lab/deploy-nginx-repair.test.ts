import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { nginxLayout, parseUpstreamPorts, sitePath, upstreamPath } from '../../src/commands/nginx.js';
import { runLocal } from '../../src/remote/local.js';
import { type CliRun, labSecrets, nginxAppFlags, removeNginxApp, runDyce, viaNginx } from '../support/dyce-cli.js';
import { host, lab, uniqueName } from '../support/lab.js';

// A rerun of the same deploy converges behind nginx: when the containers are unchanged but the site or upstream
// file Dyce owns was deleted or edited by hand, the rerun rewrites it (nginx -t, reload) and reports changed;
// with both files intact it stays a no-op.

const env = lab();
const vps3 = host(env, 'vps3');
const app = uniqueName('repair');
const serverName = `${app}.lab.test`;
// Below the ephemeral port range, apart from the other nginx lab apps' ports.
const hostPort = 27_000 + 10 * Math.floor(Math.random() * 300);
const layout = nginxLayout(vps3.nginx.prefix);
const site = sitePath(layout, app);
const upstream = upstreamPath(layout, app);

function deploy(): Promise<CliRun> {
  return runDyce(
    'deploy',
    { ...nginxAppFlags(env, vps3, { name: app, serverName, hostPort }), image: `${env.sampleApp.image}:v1` },
    labSecrets(env),
  );
}

/** What another reload of the host's nginx would do: load whatever the files say now. */
async function reloadNginx(): Promise<void> {
  const r = await runLocal(['nginx', '-s', 'reload', '-p', `${layout.prefix}/`, '-c', layout.conf]);
  expect(r.code, r.stderr).toBe(0);
}

/** Polls the site through nginx until PRED holds (a reload lands a moment after its signal); the last answer. */
async function answerUntil(pred: (status: number) => boolean): Promise<number> {
  let status = 0;
  for (let i = 0; i < 50; i++) {
    status = (await viaNginx(vps3, serverName, '/')).status;
    if (pred(status)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return status;
}

/** The host's last audit line for the app. One written by the host's own no-op verdict (one round trip) has no `ms`. */
function lastAudit(): Record<string, unknown> {
  const lines = readFileSync(`${vps3.stateDir}/audit.log`, 'utf8').trim().split('\n');
  return JSON.parse(lines.filter((l) => l.includes(`"app":"${app}"`)).at(-1) ?? '{}') as Record<string, unknown>;
}

afterAll(() => removeNginxApp(vps3, app));

describe('a rerun repairs the nginx files Dyce owns', { timeout: 180_000 }, () => {
  let siteText = '';
  let ports: number[] = [];

  it('deploys behind nginx; the same deploy again is a no-op', async () => {
    const first = await deploy();
    expect(first.code, first.stderr).toBe(0);
    expect(first.outputs).toMatchObject({ success: 'true', changed: 'true' });
    siteText = readFileSync(site, 'utf8');
    ports = parseUpstreamPorts(readFileSync(upstream, 'utf8'));
    expect(ports).toHaveLength(2);
    expect(await answerUntil((s) => s === 200)).toBe(200);
    const again = await deploy();
    expect(again.code, again.stderr).toBe(0);
    expect(again.outputs).toMatchObject({ success: 'true', changed: 'false' });
    expect(lastAudit()).toMatchObject({ result: 'unchanged', steps: [] });
    expect(lastAudit()).not.toHaveProperty('ms');
  });

  it('a deleted site file is restored: changed, and the site answers again', async () => {
    rmSync(site);
    await reloadNginx();
    expect(await answerUntil((s) => s !== 200)).not.toBe(200);
    const r = await deploy();
    expect(r.code, r.stderr).toBe(0);
    expect(r.outputs).toMatchObject({ success: 'true', changed: 'true' });
    expect(readFileSync(site, 'utf8')).toBe(siteText);
    expect(lastAudit()).toMatchObject({ result: 'success', changed: true, steps: ['install the site config'] });
    expect(await answerUntil((s) => s === 200)).toBe(200);
  });

  it('an upstream edited to a wrong port is rewritten to the replicas ports', async () => {
    const wrong = ports[1]! + 7;
    writeFileSync(upstream, readFileSync(upstream, 'utf8').replace(`:${ports[1]} `, `:${wrong} `));
    expect(parseUpstreamPorts(readFileSync(upstream, 'utf8'))).toEqual([ports[0], wrong]);
    const r = await deploy();
    expect(r.code, r.stderr).toBe(0);
    expect(r.outputs).toMatchObject({ success: 'true', changed: 'true' });
    expect(parseUpstreamPorts(readFileSync(upstream, 'utf8'))).toEqual(ports);
    expect(lastAudit()).toMatchObject({ result: 'success', changed: true, steps: [`upstream -> ${ports.join(', ')}`] });
    expect(await answerUntil((s) => s === 200)).toBe(200);
  });

  it('with both files intact a final rerun is a no-op again', async () => {
    const before = readFileSync(upstream, 'utf8');
    const r = await deploy();
    expect(r.code, r.stderr).toBe(0);
    expect(r.outputs).toMatchObject({ success: 'true', changed: 'false' });
    expect(readFileSync(upstream, 'utf8')).toBe(before);
    expect(readFileSync(site, 'utf8')).toBe(siteText);
    expect(lastAudit()).toMatchObject({ result: 'unchanged', steps: [] });
    expect(lastAudit()).not.toHaveProperty('ms');
  });
});
