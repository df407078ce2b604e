import { describe, expect, it } from 'vitest';
import { ACCEPTED_LOG_OPTS, parseDriverConfig, parseGoDuration } from '../../../src/lab/loki/driver-config.js';
import { decodeLogEntry, encodeLogEntryFrame, FrameError, FrameSplitter } from '../../../src/lab/loki/log-entry.js';
import { dockerArgv, lokiPluginConfig, parseLdd, pluginArgv } from '../../../src/lab/loki/plugin.js';
import { Backoff } from '../../../src/lab/loki/push-client.js';
import { matchesLabels, matchesLine, parseSelector } from '../../../src/lab/loki/selector.js';
import { LOKI_LOG_DEFAULTS } from '../../../src/plan/desired.js';

const ID = 'c0ffee'.padEnd(64, '0');

describe('LogEntry frames', () => {
  it('decodes a protobuf LogEntry written by hand, byte for byte as the daemon encodes it', () => {
    // source="stdout" (field 1), time_nano=1795399345225248225 (field 2), line="hi" (field 3), partial=true (4)
    const msg = Buffer.from([
      0x0a,
      6,
      ...Buffer.from('stdout'),
      0x10,
      0xe1,
      0xdb,
      0xfa,
      0xd0,
      0x92,
      0xc6,
      0xa2,
      0xf5,
      0x18,
      0x1a,
      2,
      ...Buffer.from('hi'),
      0x20,
      1,
    ]);
    const e = decodeLogEntry(msg);
    expect(e.source).toBe('stdout');
    expect(e.timeNano).toBe(1795399345225248225n);
    expect(e.line.toString()).toBe('hi');
    expect(e.partial).toBe(true);
  });

  it('round-trips through the encoder and splits frames across arbitrary chunk boundaries', () => {
    const entries = [
      { source: 'stdout', timeNano: 1795399345225248225n, line: Buffer.from('first line'), partial: false },
      { source: 'stderr', timeNano: 1n, line: Buffer.from('x'.repeat(300)), partial: true },
      { source: 'stdout', timeNano: 2n ** 62n, line: Buffer.from('ünïcødé'), partial: false },
    ];
    const stream = Buffer.concat(entries.map(encodeLogEntryFrame));
    for (const size of [1, 3, 7, 64, stream.length]) {
      const s = new FrameSplitter();
      const out = [];
      for (let i = 0; i < stream.length; i += size) out.push(...s.push(stream.subarray(i, i + size)));
      expect(out).toEqual(entries);
      expect(s.buffered).toBe(0);
    }
  });

  it('refuses a frame longer than the daemon would ever write', () => {
    const s = new FrameSplitter();
    const len = Buffer.alloc(4);
    len.writeUInt32BE(2_000_000);
    expect(() => s.push(len)).toThrow(FrameError);
  });
});

describe('driver options (as grafana/loki-docker-driver validates them)', () => {
  const info = (Config: Record<string, string>) => ({
    Config,
    ContainerID: ID,
    ContainerName: '/melton-app1',
    ContainerImageName: 'registry/app:v1',
    ContainerLabels: { 'com.docker.compose.service': 'web', team: 'api' },
    ContainerEnv: ['STAGE=prod', 'SECRET_TOKEN=x'],
    LogPath: `/var/log/docker/${ID}/json.log`,
  });

  it("refuses an unknown option with the real driver's text, naming the option and the container", () => {
    expect(() => parseDriverConfig(info({ 'loki-url': 'http://l/', 'loki-retires': '2' }), 'h')).toThrow(
      `loki: wrong log-opt: 'loki-retires' - ${ID}`,
    );
    expect(() => parseDriverConfig(info({}), 'h')).toThrow('loki: loki-url is required in the config');
    expect(() => parseDriverConfig(info({ 'loki-url': 'http://l/', 'loki-timeout': '1 sec' }), 'h')).toThrow(
      'loki: invalid option loki-timeout format: 1 sec',
    );
  });

  it("accepts every one of Dyce's defaults, and Melton's options", () => {
    const dyce = parseDriverConfig(info({ 'loki-url': 'http://l/', ...LOKI_LOG_DEFAULTS }), 'h');
    expect(dyce).toMatchObject({ timeoutMs: 1000, maxBackoffMs: 800, maxRetries: 2, keepFile: true, maxFile: 3 });
    expect(dyce.maxSizeBytes).toBe(10 * 1024 * 1024);
    for (const k of Object.keys(LOKI_LOG_DEFAULTS)) expect(ACCEPTED_LOG_OPTS).toContain(k);
    const melton = parseDriverConfig(
      info({
        'loki-url': 'http://l/',
        'loki-retries': '5',
        'loki-batch-size': '400',
        'loki-external-labels': 'tag=melton',
      }),
      'vps1',
    );
    // The real defaults for what Melton leaves out.
    expect(melton).toMatchObject({ maxRetries: 5, batchSizeBytes: 400, timeoutMs: 10_000, minBackoffMs: 500 });
    expect(melton.maxBackoffMs).toBe(300_000);
    expect(melton.batchWaitMs).toBe(1000);
  });

  it('sets container_name (by default), host, filename, compose labels and the selected labels/env', () => {
    const c = parseDriverConfig(info({ 'loki-url': 'http://l/', labels: 'team', env: 'STAGE' }), 'vps1');
    expect(c.labels).toEqual({
      container_name: 'melton-app1',
      host: 'vps1',
      filename: `/var/log/docker/${ID}/json.log`,
      compose_service: 'web',
      team: 'api',
      STAGE: 'prod',
    });
    // As in the real driver, explicit external labels replace the default container_name one.
    const ext = parseDriverConfig(
      info({ 'loki-url': 'http://l/', 'loki-external-labels': 'tag=melton,app={{.Name}}-{{.ID}}' }),
      'vps1',
    );
    expect(ext.labels).toMatchObject({ tag: 'melton', app: `melton-app1-${ID.slice(0, 12)}` });
    expect(ext.labels.container_name).toBeUndefined();
    expect(() => parseDriverConfig(info({ 'loki-url': 'http://l/', 'loki-external-labels': 'nolabel' }), 'h')).toThrow(
      'loki: invalid external labels: nolabel',
    );
  });

  it('parses Go durations like time.ParseDuration', () => {
    expect(parseGoDuration('800ms')).toBe(800);
    expect(parseGoDuration('1m30s')).toBe(90_000);
    expect(parseGoDuration('1.5s')).toBe(1500);
    expect(parseGoDuration('0')).toBe(0);
    expect(parseGoDuration('10')).toBeUndefined();
    expect(parseGoDuration('5 m')).toBeUndefined();
  });
});

describe('backoff (dskit semantics)', () => {
  it('draws delays in [min, 2·min), doubles them, caps at max, and stops after maxRetries attempts', async () => {
    const b = new Backoff(
      { minBackoffMs: 500, maxBackoffMs: 5000, maxRetries: 5 },
      () => false,
      () => 0.5,
    );
    expect([b.nextDelay(), b.nextDelay(), b.nextDelay(), b.nextDelay(), b.nextDelay()]).toEqual([
      750, 1500, 3000, 4500, 5000,
    ]);
    const capped = new Backoff(
      { minBackoffMs: 500, maxBackoffMs: 800, maxRetries: 2 },
      () => false,
      () => 0,
    );
    expect([capped.nextDelay(), capped.nextDelay()]).toEqual([500, 800]);
    const quick = new Backoff({ minBackoffMs: 1, maxBackoffMs: 1, maxRetries: 2 }, () => false);
    expect(quick.ongoing()).toBe(true);
    await quick.wait();
    expect(quick.ongoing()).toBe(true);
    await quick.wait();
    expect(quick.ongoing()).toBe(false);
    let cancelled = false;
    const c = new Backoff({ minBackoffMs: 1, maxBackoffMs: 1, maxRetries: 0 }, () => cancelled);
    expect(c.ongoing()).toBe(true);
    cancelled = true;
    expect(c.ongoing()).toBe(false);
  });
});

describe('LogQL stream selectors', () => {
  it('parses =, !=, =~, !~ and line filters, and matches like Loki (absent label = empty string)', () => {
    const sel = parseSelector(
      '{container_name="web", host!="b", source=~"std(out|err)", tag!~"x.*"} |= "GET" != "health"',
    );
    expect(sel.matchers).toHaveLength(4);
    expect(matchesLabels(sel, { container_name: 'web', host: 'a', source: 'stdout' })).toBe(true);
    expect(matchesLabels(sel, { container_name: 'web', host: 'b', source: 'stdout' })).toBe(false);
    expect(matchesLabels(sel, { container_name: 'web', host: 'a', source: 'stdoutx' })).toBe(false);
    expect(matchesLabels(sel, { container_name: 'web', host: 'a', source: 'stderr', tag: 'xy' })).toBe(false);
    expect(matchesLine(sel, 'GET /api')).toBe(true);
    expect(matchesLine(sel, 'GET /health')).toBe(false);
    expect(() => parseSelector('{x=~".*"}')).toThrow(/does not match the empty string/);
    expect(() => parseSelector('container_name="web"')).toThrow(/stream selector/);
    expect(() => parseSelector('{a="b"} | json')).toThrow(/only line filters/);
  });
});

describe('plugin packaging', () => {
  it('declares a docker.logdriver/1.0 plugin on the host network, socket loki.sock', () => {
    const c = lokiPluginConfig() as { interface: { types: string[]; socket: string }; network: { type: string } };
    expect(c.interface).toEqual({ types: ['docker.logdriver/1.0'], socket: 'loki.sock' });
    expect(c.network.type).toBe('host');
  });

  it('builds docker argv with global flags, never environment', () => {
    const t = { bin: '/usr/bin/docker', host: 'unix:///run/h2/docker.sock', config: '/cfg' };
    expect(pluginArgv.install(t, '127.0.0.1:5000/dyce/loki-docker-driver:latest', 'loki')).toEqual([
      '/usr/bin/docker',
      '--config',
      '/cfg',
      '-H',
      'unix:///run/h2/docker.sock',
      'plugin',
      'install',
      '--grant-all-permissions',
      '--alias',
      'loki',
      '127.0.0.1:5000/dyce/loki-docker-driver:latest',
    ]);
    expect(dockerArgv({}, 'ps')).toEqual(['docker', 'ps']);
  });

  it('reads the libraries and the ELF interpreter from ldd output', () => {
    const out = `\tlinux-vdso.so.1 (0x00007ffd)\n\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n`;
    expect(parseLdd(out)).toEqual([
      '/lib/x86_64-linux-gnu/libdl.so.2',
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/lib64/ld-linux-x86-64.so.2',
    ]);
  });
});
