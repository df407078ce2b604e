import { execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningLokiDriver, runLokiDriver } from '../../../src/lab/loki/driver.js';
import { encodeLogEntryFrame } from '../../../src/lab/loki/log-entry.js';
import { type LokiReceiver, runLokiReceiver } from '../../../src/lab/loki/receiver.js';

/** The real daemon and the real receiver are exercised in test/lab/loki.test.ts; here the plugin runs in-process,
 * fed through a real FIFO and driven over its real unix socket, as the daemon would. */

function request(
  target: { socketPath?: string; port?: number },
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 5000,
  // biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field with expect
): Promise<{ status: number; text: string; json: () => any }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = http.request(
      {
        ...(target.socketPath ? { socketPath: target.socketPath } : { host: '127.0.0.1', port: target.port }),
        method,
        path,
        agent: false,
        headers: data ? { 'content-type': 'application/json' } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          resolve({ status: res.statusCode ?? 0, text, json: () => JSON.parse(text) });
        });
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs}ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

async function until<T>(fn: () => Promise<T | undefined> | T | undefined, what: string, ms = 8000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

let tick = 0n;
const frame = (line: string, source = 'stdout') =>
  encodeLogEntryFrame({
    source,
    timeNano: BigInt(Date.now()) * 1_000_000n + ++tick,
    line: Buffer.from(line),
    partial: false,
  });

let dir: string;
let receiver: LokiReceiver;
let driver: RunningLokiDriver;
let sock: { socketPath: string };
const driverLog: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dyce-loki-unit-'));
  receiver = await runLokiReceiver({ port: 0, dataDir: join(dir, 'receiver') });
  driver = await runLokiDriver({
    socketPath: join(dir, 'plugins', 'loki.sock'),
    logDir: join(dir, 'logs'),
    pollMs: 5,
    log: (m) => driverLog.push(m),
  });
  sock = { socketPath: driver.socketPath };
});

afterAll(async () => {
  receiver.resume();
  await driver?.close();
  await receiver?.close();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
/** A FIFO held open read-write and non-blocking, as the daemon holds it. */
function daemonFifo(): { path: string; fd: number } {
  const path = join(dir, `fifo-${++n}`);
  execFileSync('mkfifo', [path]);
  return { path, fd: openSync(path, constants.O_RDWR | constants.O_NONBLOCK) };
}

const query = async (q: string) =>
  (await request({ port: receiver.port }, 'GET', `/loki/api/v1/query_range?query=${encodeURIComponent(q)}`)).json();

describe('Loki-compatible receiver', () => {
  it('stores JSON pushes and answers query_range in Loki’s shape, newest first', async () => {
    const t = BigInt(Date.now()) * 1_000_000n;
    const push = await request({ port: receiver.port }, 'POST', '/loki/api/v1/push', {
      streams: [
        {
          stream: { container_name: 'api', host: 'h1' },
          values: [
            [String(t), 'one'],
            [String(t + 1n), 'two'],
          ],
        },
        { stream: { container_name: 'other' }, values: [[String(t), 'nope']] },
      ],
    });
    expect(push.status).toBe(204);
    const r = await query('{container_name="api"}');
    expect(r).toEqual({
      status: 'success',
      data: {
        resultType: 'streams',
        result: [
          {
            stream: { container_name: 'api', host: 'h1' },
            values: [
              [String(t + 1n), 'two'],
              [String(t), 'one'],
            ],
          },
        ],
        stats: expect.anything(),
      },
    });
    expect((await query('{container_name=~"api|other"}')).data.result).toHaveLength(2);
    expect((await query('{container_name="api"} |= "tw"')).data.result[0].values).toEqual([[String(t + 1n), 'two']]);
    const bad = await request({ port: receiver.port }, 'POST', '/loki/api/v1/push', {
      streams: [{ stream: {}, values: [] }],
    });
    expect(bad.status).toBe(400);
    expect(readFileSync(join(dir, 'receiver', 'pushes.jsonl'), 'utf8')).toContain('"one"');
    expect((await request({ port: receiver.port }, 'GET', '/ready')).status).toBe(200);
  });

  it('when hung, accepts connections and never answers, until resumed', async () => {
    await request({ port: receiver.port }, 'POST', '/lab/hang');
    await expect(request({ port: receiver.port }, 'GET', '/ready', undefined, 300)).rejects.toThrow(/no answer/);
    const status = (await request({ port: receiver.port }, 'GET', '/lab/status')).json();
    expect(status.hung).toBe(true);
    await request({ port: receiver.port }, 'POST', '/lab/resume');
    expect((await request({ port: receiver.port }, 'GET', '/ready')).status).toBe(200);
  });
});

describe('loki log-driver plugin protocol', () => {
  it('activates as a LogDriver and reports its capabilities in the shape the daemon decodes', async () => {
    expect((await request(sock, 'POST', '/Plugin.Activate', {})).json()).toEqual({ Implements: ['LogDriver'] });
    expect((await request(sock, 'POST', '/LogDriver.Capabilities', {})).json()).toEqual({
      Cap: { ReadLogs: false },
      Err: '',
    });
  });

  it('refuses an unknown log-opt at StartLogging, naming it', async () => {
    const f = daemonFifo();
    const r = await request(sock, 'POST', '/LogDriver.StartLogging', {
      File: f.path,
      Info: { ContainerID: 'abc123', ContainerName: '/x', Config: { 'loki-url': receiver.pushUrl, 'loki-nope': '1' } },
    });
    expect(r.json().Err).toBe("error creating loki logger: loki: wrong log-opt: 'loki-nope' - abc123");
    closeSync(f.fd);
  });

  it('drains FIFO frames into Loki pushes labelled with container_name, host and source', async () => {
    const f = daemonFifo();
    const id = 'a1'.repeat(32);
    const start = await request(sock, 'POST', '/LogDriver.StartLogging', {
      File: f.path,
      Info: {
        ContainerID: id,
        ContainerName: '/web-1',
        Config: { 'loki-url': receiver.pushUrl, 'loki-batch-wait': '50ms', 'keep-file': 'true', 'max-size': '1m' },
      },
    });
    expect(start.json()).toEqual({ Err: '' });
    writeSync(f.fd, Buffer.concat([frame('hello 1'), frame('   '), frame('oops', 'stderr'), frame('hello 2')]));
    const got = await until(async () => {
      const r = await query('{container_name="web-1"}');
      const lines = r.data.result.flatMap((s: { values: string[][] }) => s.values.map((v) => v[1]));
      return lines.length >= 3 ? r : undefined;
    }, 'the lines in the receiver');
    const bySource = Object.fromEntries(
      got.data.result.map((s: { stream: Record<string, string>; values: string[][] }) => [
        s.stream.source,
        { stream: s.stream, lines: s.values.map((v) => v[1]).reverse() },
      ]),
    );
    expect(bySource.stdout.lines).toEqual(['hello 1', 'hello 2']); // the whitespace-only line is not sent
    expect(bySource.stderr.lines).toEqual(['oops']);
    expect(bySource.stdout.stream).toMatchObject({ container_name: 'web-1', source: 'stdout' });
    expect(bySource.stdout.stream.host).toBeTruthy();
    expect((await request(sock, 'POST', '/LogDriver.StopLogging', { File: f.path })).json()).toEqual({ Err: '' });
    // keep-file: the json-file copy stays, with every line (the blank one too)
    const copy = readFileSync(join(dir, 'logs', id, 'json.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(copy.map((c) => c.log)).toEqual(['hello 1\n', '   \n', 'oops\n', 'hello 2\n']);
    closeSync(f.fd);
  });

  it('stops draining the FIFO while a batch is being retried, and drains again once Loki answers', async () => {
    const f = daemonFifo();
    const id = 'b2'.repeat(32);
    await request(sock, 'POST', '/LogDriver.StartLogging', {
      File: f.path,
      Info: {
        ContainerID: id,
        ContainerName: '/blocked',
        // retries=0 is "retry for ever" (dskit): the batch stays in flight for as long as the receiver hangs.
        Config: {
          'loki-url': receiver.pushUrl,
          'loki-batch-size': '100',
          'loki-timeout': '200ms',
          'loki-min-backoff': '50ms',
          'loki-max-backoff': '100ms',
          'loki-retries': '0',
          'no-file': 'true',
        },
      },
    });
    receiver.hang();
    const line = 'x'.repeat(1000);
    // Fill the batch so that it is sent (and hangs), then keep writing: the pipe must fill up and refuse writes.
    let written = 0;
    await until(
      async () => {
        try {
          writeSync(f.fd, frame(`${line} ${written}`));
          written++;
          return undefined;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'EAGAIN') return true;
          throw error;
        }
      },
      'the FIFO to fill while Loki hangs',
      20_000,
    );
    expect(written).toBeGreaterThan(0);
    await until(() => (receiver.held > 0 ? true : undefined), 'a push held by the hung receiver');
    await until(() => (driverLog.some((l) => l.includes('will retry')) ? true : undefined), 'a retry');
    // Several retry cycles later the pipe is still full: nothing is read while the batch is in flight.
    await new Promise((r) => setTimeout(r, 1000));
    expect(() => writeSync(f.fd, frame(`${line} again`))).toThrow(/EAGAIN/);
    receiver.resume();
    // Once Loki answers, the FIFO drains: writes are accepted again and every line arrives.
    await until(async () => {
      try {
        writeSync(f.fd, frame('after resume'));
        return true;
      } catch {
        return undefined;
      }
    }, 'the FIFO to drain after resume');
    await until(async () => {
      const r = await query('{container_name="blocked"} |= "after resume"');
      return r.data.result.length ? true : undefined;
    }, 'the line written after resume');
    await request(sock, 'POST', '/LogDriver.StopLogging', { File: f.path });
    expect(existsSync(join(dir, 'logs', id))).toBe(false); // no-file: no local copy
    closeSync(f.fd);
  });
});
