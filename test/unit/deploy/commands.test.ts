import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  dockerLogin,
  dockerPluginInstall,
  dockerPullMissing,
  dockerRm,
  dockerRun,
  dockerStop,
  type RunSpec,
} from '../../../src/commands/docker.js';
import {
  finishDeploy,
  lockRelease,
  lockTake,
  observeHost,
  writeFileFromStdin,
} from '../../../src/commands/host-state.js';
import { shellQuote } from '../../../src/commands/quote.js';
import { runLocal } from '../../../src/remote/local.js';

const spec: RunSpec = {
  name: 'melton-app1',
  image: '127.0.0.1:5000/dyce/sample-app:v1',
  labels: { 'dyce.app': 'melton-app', 'dyce.replica': '1', team: `it's $(id)` },
  env: { PORT: '8001', HOSTILE: 'a"b `id` $(whoami)' },
  envFile: '/var/lib/dyce/apps/melton-app/secret-abc.env',
  network: 'host',
  volumes: ['/root/melton-app/staticfiles:/code/api/static/', '/var/lib/dyce/s/tls.key:/run/secrets/tls.key:ro'],
  restart: 'unless-stopped',
  logDriver: 'loki',
  logOptions: { 'loki-url': 'http://localhost:3100/loki/api/v1/push', mode: 'non-blocking' },
  command: ['gunicorn', '-b', '0.0.0.0:8001'],
};

describe('docker command builders', () => {
  it('logs in with the password on stdin and its own config dir', () => {
    expect(shellQuote(dockerLogin('/var/lib/dyce/docker-config', '127.0.0.1:5000', 'dyce'))).toBe(
      'docker --config /var/lib/dyce/docker-config login 127.0.0.1:5000 --username dyce --password-stdin',
    );
  });

  it('builds docker run with every option, each value one quoted word', () => {
    expect(shellQuote(dockerRun('/c', spec))).toBe(
      [
        'docker --config /c run --detach --name melton-app1 --restart unless-stopped',
        "--label dyce.app=melton-app --label dyce.replica=1 --label 'team=it'\\''s $(id)'",
        '--network host',
        "--env 'HOSTILE=a\"b `id` $(whoami)' --env PORT=8001",
        '--env-file /var/lib/dyce/apps/melton-app/secret-abc.env',
        '--volume /root/melton-app/staticfiles:/code/api/static/ --volume /var/lib/dyce/s/tls.key:/run/secrets/tls.key:ro',
        '--log-driver loki --log-opt loki-url=http://localhost:3100/loki/api/v1/push --log-opt mode=non-blocking',
        '127.0.0.1:5000/dyce/sample-app:v1 gunicorn -b 0.0.0.0:8001',
      ].join(' '),
    );
  });

  it('publishes on the given address only', () => {
    const bridge = dockerRun('/c', {
      ...spec,
      network: 'bridge',
      publish: { ip: '127.0.0.1', hostPort: 8001, containerPort: 8000 },
    });
    expect(shellQuote(bridge)).toContain('--publish 127.0.0.1:8001:8000');
    expect(bridge).not.toContain('--network');
    const v6 = dockerRun('/c', {
      ...spec,
      network: 'bridge',
      publish: { ip: '::1', hostPort: 8001, containerPort: 8000 },
    });
    expect(v6).toContain('[::1]:8001:8000');
  });

  it('stops and removes many containers in one command', () => {
    expect(shellQuote(dockerStop(['a1', 'a2'], 10))).toBe('docker stop --time 10 a1 a2');
    expect(shellQuote(dockerRm(['a1', 'a2'], { force: true }))).toBe('docker rm --force a1 a2');
  });

  it('installs the plugin under an alias with its permissions granted', () => {
    expect(shellQuote(dockerPluginInstall('/c', 'grafana/loki-docker-driver:3.3.2-amd64', 'loki'))).toBe(
      'docker --config /c plugin install grafana/loki-docker-driver:3.3.2-amd64 --alias loki --grant-all-permissions',
    );
  });

  it('pulls only a missing image, with the ref as an argument of a constant script', () => {
    const argv = dockerPullMissing('/c', 'img:v1');
    expect(argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(argv.slice(3)).toEqual(['sh', '/c', 'img:v1']);
  });
});

describe('host state scripts', () => {
  it('never splice a path into the script text', () => {
    const evil = `/tmp/x'; touch /tmp/pwned; '`;
    for (const argv of [
      writeFileFromStdin(evil),
      lockTake(evil),
      lockRelease(evil, 'id'),
      observeHost({ stateDir: evil, app: 'a' }),
    ]) {
      expect(argv[2]).not.toContain('pwned');
      expect(argv).toContain(evil);
    }
  });

  it('writeFileFromStdin writes 0600 through stdin', async () => {
    const dir = `/tmp/dyce-unit-${process.pid}-${Date.now()}`;
    const path = `${dir}/sub/secret.env`;
    const r = await runLocal(writeFileFromStdin(path), { stdin: 'A=1\n' });
    expect(r.code).toBe(0);
    const st = await runLocal(['stat', '-c', '%a %s', path, `${dir}/sub`]);
    expect(st.stdout.split('\n').slice(0, 2)).toEqual(['600 4', '700 4096']);
    await runLocal(['rm', '-rf', dir]);
  });

  it('lockTake is atomic: a second take reports the holder; release removes only our lock', async () => {
    const dir = `/tmp/dyce-unit-lock-${process.pid}-${Date.now()}`;
    const lock = `${dir}/locks/app.lock`;
    expect((await runLocal(lockTake(lock), { stdin: '{"id":"one","who":"a"}\n' })).code).toBe(0);
    const second = await runLocal(lockTake(lock), { stdin: '{"id":"two"}\n' });
    expect(second.code).toBe(3);
    expect(second.stdout.split('\n')[0]).toBe('{"id":"one","who":"a"}');
    expect(Number(second.stdout.split('\n')[1])).toBeGreaterThanOrEqual(0);
    expect((await runLocal(lockRelease(lock, 'two'))).stdout).toBe('');
    expect((await runLocal(['test', '-d', lock])).code).toBe(0);
    expect((await runLocal(lockRelease(lock, 'one'))).stdout).toBe('released\n');
    expect((await runLocal(['test', '-d', lock])).code).toBe(1);
    await runLocal(['rm', '-rf', dir]);
  });

  it('finishDeploy prunes old secret dirs, appends the audit line and releases only our lock, in one command', async () => {
    const dir = `/tmp/dyce-unit-finish-${process.pid}-${Date.now()}`;
    const lock = `${dir}/locks/app.lock`;
    await runLocal(['mkdir', '-p', `${dir}/secrets/old1`, `${dir}/secrets/keep`, `${dir}/secrets/.hidden`, lock]);
    await runLocal(['sh', '-c', `echo '{"id":"me"}' > ${lock}/holder.json`]);
    const r = await runLocal(
      finishDeploy({
        auditLog: `${dir}/audit.log`,
        lockDir: lock,
        holderId: 'me',
        prune: { dir: `${dir}/secrets`, keep: 'keep' },
      }),
      { stdin: '{"result":"success"}\n' },
    );
    expect(r).toMatchObject({ code: 0, stdout: 'released\n' });
    expect((await runLocal(['ls', '-A', `${dir}/secrets`])).stdout).toBe('keep\n');
    expect((await runLocal(['cat', `${dir}/audit.log`])).stdout).toBe('{"result":"success"}\n');
    expect((await runLocal(['stat', '-c', '%a', `${dir}/audit.log`])).stdout).toBe('600\n');
    expect((await runLocal(['test', '-e', lock])).code).toBe(1);
    await runLocal(['rm', '-rf', dir]);
  });

  it('the host judges a no-op deploy itself: audits and releases at once, and keeps the lock otherwise', async () => {
    const dir = `/tmp/dyce-unit-noop-${process.pid}-${Date.now()}`;
    await runLocal(['mkdir', '-p', `${dir}/bin`, `${dir}/state`]);
    // A stand-in for the docker CLI on the host: prints the `docker ps` lines of $PS_LINES.
    writeFileSync(`${dir}/bin/docker`, '#!/bin/sh\nprintf "%s" "$PS_LINES"\n', { mode: 0o755 });
    const row = (name: string, state: string, app: string, hash: string) =>
      [`${'a'.repeat(63)}${name.slice(-1)}`, name, state, 'img:v1', app, name.slice(-1), 'v1', hash, ''].join('\t');
    const expect2 = ['web1=h1', 'web2=h2'];
    const attempt = async (lines: string[]) => {
      const lock = `${dir}/state/locks/web.lock`;
      const r = await runLocal(
        lockTake(
          lock,
          { stateDir: `${dir}/state`, app: 'web' },
          { expect: expect2, auditLog: `${dir}/state/audit.log` },
        ),
        {
          stdin: '{"id":"me"}\n{"result":"unchanged"}\n',
          env: {
            ...process.env,
            PATH: `${dir}/bin:${process.env.PATH}`,
            PS_LINES: lines.map((l) => `${l}\n`).join(''),
          },
        },
      );
      const held = (await runLocal(['test', '-d', lock])).code === 0;
      await runLocal(['rm', '-rf', lock]);
      return {
        noop: /^verdict noop$/m.test(r.stdout),
        held,
        code: r.code,
        containers: r.stdout.split('containers\n')[1],
      };
    };
    const same = [row('web1', 'running', 'web', 'h1'), row('web2', 'running', 'web', 'h2')];
    expect(await attempt(same)).toMatchObject({ noop: true, held: false, code: 0 });
    expect((await runLocal(['cat', `${dir}/state/audit.log`])).stdout).toBe('{"result":"unchanged"}\n');
    for (const lines of [
      [row('web1', 'running', 'web', 'h1'), row('web2', 'running', 'web', 'hX')],
      [row('web1', 'running', 'web', 'h1'), row('web2', 'exited', 'web', 'h2')],
      [row('web1', 'running', 'web', 'h1')],
      [...same, row('web3', 'running', 'web', 'h3')],
      [row('web1', 'running', 'web', 'h1'), row('web2', 'running', '', '')],
    ]) {
      const r = await attempt(lines);
      expect(r, lines.join(' | ')).toMatchObject({ noop: false, held: true, code: 0 });
      expect(r.containers).toBe(lines.map((l) => `${l}\n`).join(''));
    }
    expect(await attempt([...same, row('other1', 'running', '', '')])).toMatchObject({ noop: true });
    await runLocal(['rm', '-rf', dir]);
  });
});
