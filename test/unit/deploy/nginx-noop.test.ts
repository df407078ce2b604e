import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { lockTake } from '../../../src/commands/host-state.js';
import { nginxLayout, renderSite, renderUpstream, sitePath, upstreamPath } from '../../../src/commands/nginx.js';
import { deployRules, deploySpec, imageDeployInputs } from '../../../src/config/actions/deploy.js';
import { parseInputs } from '../../../src/config/input-spec.js';
import { parseInventory } from '../../../src/config/inventory.js';
import { assembleDeployConfig } from '../../../src/deploy/config.js';
import { runLocal } from '../../../src/remote/local.js';

// The host's own no-op verdict behind nginx: besides the containers, the upstream must list exactly the running
// replicas' ports and the site file must be the rendered one. Run by a real sh, with a stand-in for the docker CLI.

const dir = `/tmp/dyce-unit-nginx-noop-${process.pid}-${Date.now()}`;
const layout = nginxLayout(`${dir}/nginx`);
const site = renderSite({ app: 'web', serverNames: ['web.test'] });

/** The no-op check of the one host, as assembleDeployConfig derives it from the inputs and the inventory. */
function noopCheck(extra: Record<string, string> = { 'nginx-server-name': 'web.test' }) {
  const inputs = imageDeployInputs(
    parseInputs(
      deploySpec,
      {
        hosts: 'h ansible_host=127.0.0.1',
        'insecure-skip-host-key-check': 'true',
        image: 'img:v1',
        name: 'web',
        port: '8001',
        proxy: 'nginx',
        ...extra,
      },
      deployRules,
    ),
  );
  const inventory = parseInventory(`h ansible_host=127.0.0.1 dyce_nginx_prefix=${dir}/nginx`, { source: 'hosts' });
  return assembleDeployConfig(inputs, inventory).hosts[0]!.nginx!.noop;
}
const row = (name: string, port: string) =>
  [
    `${'a'.repeat(63)}${name.slice(-1)}`,
    name,
    'running',
    'img:v1',
    'web',
    name.slice(-1),
    'v1',
    `h${name.slice(-1)}`,
    port,
  ].join('\t');
const lines = [row('web1', '8001'), row('web2', '8002')];

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function verdict(check = noopCheck()): Promise<{ noop: boolean; held: boolean }> {
  const lock = `${dir}/state/locks/web.lock`;
  const r = await runLocal(
    lockTake(
      lock,
      { stateDir: `${dir}/state`, app: 'web' },
      { expect: ['web1=h1', 'web2=h2'], auditLog: `${dir}/state/audit.log`, nginx: check },
    ),
    {
      stdin: '{"id":"me"}\n{"result":"unchanged"}\n',
      env: { ...process.env, PATH: `${dir}/bin:${process.env.PATH}`, PS_LINES: lines.map((l) => `${l}\n`).join('') },
    },
  );
  expect(r.code, r.stderr).toBe(0);
  const held = (await runLocal(['test', '-d', lock])).code === 0;
  await runLocal(['rm', '-rf', lock]);
  return { noop: /^verdict noop$/m.test(r.stdout), held };
}

describe('the no-op verdict behind nginx', () => {
  it('the assembled config names both files and the rendered site hash', () => {
    expect(noopCheck()).toEqual({
      upstream: upstreamPath(layout, 'web'),
      site: { path: sitePath(layout, 'web'), sha256: createHash('sha256').update(site).digest('hex') },
    });
    expect(noopCheck({})).toEqual({ upstream: upstreamPath(layout, 'web') });
  });

  it('is noop only with the site intact and the upstream listing exactly the replicas ports', async () => {
    await runLocal(['mkdir', '-p', `${dir}/bin`, `${dir}/state`, layout.confDir]);
    writeFileSync(`${dir}/bin/docker`, '#!/bin/sh\nprintf "%s" "$PS_LINES"\n', { mode: 0o755 });
    const up = upstreamPath(layout, 'web');
    const st = sitePath(layout, 'web');
    const intact = () => {
      writeFileSync(up, renderUpstream({ app: 'web', ports: [8001, 8002] }));
      writeFileSync(st, site);
    };

    intact();
    expect(await verdict()).toEqual({ noop: true, held: false });
    // The order of the servers does not matter, their set does.
    writeFileSync(up, renderUpstream({ app: 'web', ports: [8002, 8001] }));
    expect(await verdict()).toEqual({ noop: true, held: false });

    const broken: [string, () => void][] = [
      ['site deleted', () => rmSync(st)],
      ['site edited', () => writeFileSync(st, site.replace('web.test', 'other.test'))],
      ['upstream deleted', () => rmSync(up)],
      ['upstream emptied', () => writeFileSync(up, '')],
      ['upstream on a wrong port', () => writeFileSync(up, renderUpstream({ app: 'web', ports: [8001, 9002] }))],
      ['upstream missing a replica', () => writeFileSync(up, renderUpstream({ app: 'web', ports: [8001] }))],
      [
        'upstream with an extra port',
        () => writeFileSync(up, renderUpstream({ app: 'web', ports: [8001, 8002, 8003] })),
      ],
    ];
    for (const [what, breakIt] of broken) {
      intact();
      breakIt();
      expect(await verdict(), what).toEqual({ noop: false, held: true });
    }

    // Without a site of Dyce's, only the upstream is checked.
    intact();
    rmSync(st);
    expect(await verdict({ upstream: up })).toEqual({ noop: true, held: false });
  });
});
