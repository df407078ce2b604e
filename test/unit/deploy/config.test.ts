import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { deployRules, deploySpec, imageDeployInputs } from '../../../src/config/actions/deploy.js';
import { parseInputs, type RawInputs } from '../../../src/config/input-spec.js';
import { parseInventory } from '../../../src/config/inventory.js';
import { assembleDeployConfig } from '../../../src/deploy/config.js';
import { runDeploy } from '../../../src/deploy/entry.js';
import { RecordingReporter } from '../../../src/github/reporter.js';
import { InputError } from '../../../src/util/errors.js';

function inputs(extra: RawInputs = {}) {
  return imageDeployInputs(
    parseInputs(
      deploySpec,
      {
        hosts: 'a ansible_host=127.0.0.1',
        'insecure-skip-host-key-check': 'true',
        image: 'reg/app:v1',
        name: 'web',
        port: '8000',
        replicas: '2',
        ...extra,
      },
      deployRules,
    ),
  );
}

const inventory = (text: string) => parseInventory(text, { source: 'hosts', format: 'ini' });

describe('assembleDeployConfig', () => {
  it('gives each host its nginx layout, rollout ports and no-op check; the engine reads nothing else', () => {
    const c = assembleDeployConfig(
      inputs({ proxy: 'nginx', 'max-unavailable': '2', 'health-deadline': '7s', 'nginx-server-name': 'x.test' }),
      inventory('a ansible_host=127.0.0.1\nb ansible_host=127.0.0.2 dyce_nginx_prefix=/srv/ngx dyce_port_base=1000'),
    );
    expect(c.strategy).toBe('rolling');
    expect(c.rollout?.health).toEqual({ path: '/health', timeoutMs: 5000, intervalMs: 1000, deadlineMs: 7000 });
    expect(c.rollout?.site).toContain('server_name x.test');
    expect(
      c.hosts.map((h) => [h.host.name, h.portBase, h.nginx?.layout.confDir, h.nginx?.settings.maxUnavailable]),
    ).toEqual([
      ['a', 0, '/etc/nginx/conf.d', 2],
      ['b', 1000, '/srv/ngx/conf.d', 2],
    ]);
    expect(c.hosts[1]!.nginx!.noop.upstream).toBe('/srv/ngx/conf.d/dyce-web.upstream.conf');
    expect(c.hosts[1]!.nginx!.noop.site?.path).toBe('/srv/ngx/conf.d/dyce-web.site.conf');
  });

  it('without a proxy: stop-then-start, no nginx anywhere, and the registry, lock and schedule settings', () => {
    const c = assembleDeployConfig(
      inputs({
        serial: '1, 50%',
        'lock-wait': '5s',
        'registry-username': 'u',
        'registry-password': 'p4ss',
        'keep-versions': '4',
      }),
      inventory('a ansible_host=127.0.0.1 dyce_nginx_prefix=relative'),
    );
    expect(c.strategy).toBe('stop-then-start');
    expect(c.hosts[0]!.nginx).toBeUndefined();
    expect(c.schedule.serial).toEqual([
      { kind: 'count', n: 1 },
      { kind: 'percent', p: 50 },
    ]);
    expect(c.lock.waitMs).toBe(5000);
    expect(c.retention.keepVersions).toBe(4);
    expect(c.registry.server).toBe('docker.io');
    expect(c.registry.login?.username).toBe('u');
    // A Secret: it prints as *** wherever the config is logged.
    expect(String(c.registry.login?.password)).not.toContain('p4ss');
  });

  it('reports every bad per-host value at once, naming host, variable and inventory line', () => {
    const bad = () =>
      assembleDeployConfig(
        inputs({ proxy: 'nginx' }),
        inventory(
          [
            'a ansible_host=127.0.0.1',
            'b ansible_host=127.0.0.2 dyce_port_base=64000',
            'c ansible_host=127.0.0.3 dyce_nginx_prefix=../etc',
          ].join('\n'),
        ),
      );
    expect(bad).toThrow(InputError);
    try {
      bad();
    } catch (e) {
      expect((e as InputError).issues).toEqual([
        'b (hosts:2): dyce_port_base 64000 puts host ports 72000..72003 past 65535',
        'c (hosts:3): dyce_nginx_prefix must be an absolute path of letters, digits and . _ / @ + -, got "../etc"',
      ]);
    }
  });
});

describe('a bad per-host value fails before any host is contacted', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  it('dyce_nginx_prefix on host 3 of 3: a listener standing in for host 1 counts zero connections', async () => {
    let connections = 0;
    server = createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const hosts = (prefix3: string) =>
      [
        `h1 ansible_host=127.0.0.1 ansible_port=${port}`,
        `h2 ansible_host=127.0.0.1 ansible_port=${port}`,
        `h3 ansible_host=127.0.0.1 ansible_port=${port} dyce_nginx_prefix=${prefix3}`,
      ].join('\n');
    const key = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
      publicKeyEncoding: { type: 'pkcs1', format: 'pem' },
    }).privateKey;
    const deploy = (prefix3: string) =>
      runDeploy(
        inputs({ hosts: hosts(prefix3), proxy: 'nginx', parallel: '1', 'ssh-private-key': key }),
        new RecordingReporter(),
      ).then(
        () => undefined,
        (e: unknown) => e as Error,
      );

    const refused = await deploy('nginx;evil');
    expect(refused).toBeInstanceOf(InputError);
    expect(refused?.message).toContain('h3 (hosts:3): dyce_nginx_prefix must be an absolute path');
    expect(connections).toBe(0);

    // The control: with a good prefix the same run does reach host 1 (and fails there: it is no SSH server).
    const reached = await deploy('/srv/nginx');
    expect(reached).toBeInstanceOf(Error);
    expect(connections).toBeGreaterThan(0);
  });
});
