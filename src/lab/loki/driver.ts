/**
 * The `loki` Docker log-driver plugin: an HTTP server on a unix socket speaking the daemon's plugin protocol
 * (`/Plugin.Activate`, `/LogDriver.StartLogging`, `/LogDriver.StopLogging`, `/LogDriver.Capabilities`), one FIFO
 * reader and one Loki push client per container. It runs inside the plugin's rootfs, started by the daemon.
 */
import {
  closeSync,
  constants,
  mkdirSync,
  openSync,
  read,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import http from 'node:http';
import type https from 'node:https';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { type DockerLogInfo, DriverConfigError, type LokiDriverConfig, parseDriverConfig } from './driver-config.js';
import { FrameSplitter, type LogEntry } from './log-entry.js';
import { LokiPushClient } from './push-client.js';

export interface LokiDriverOptions {
  /** Where the daemon looks for the plugin's socket: /run/docker/plugins/<interface.socket>. */
  socketPath: string;
  /** Root of the local json-file copies (the real driver: /var/log/docker/<container id>/json.log). */
  logDir: string;
  /** Idle FIFO poll interval. */
  pollMs?: number;
  log?: (msg: string) => void;
}

export interface RunningLokiDriver {
  socketPath: string;
  /** Containers being logged, by FIFO path. */
  readonly active: ReadonlyMap<string, ContainerLogger>;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function readAsync(fd: number, buf: Buffer): Promise<number> {
  return new Promise((resolve, reject) =>
    read(fd, buf, 0, buf.length, null, (err, n) => (err ? reject(err) : resolve(n))),
  );
}

/** RFC 3339 with nanoseconds, as Go's json-file writes `time`. */
function rfc3339Nano(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${new Date(ms).toISOString().slice(0, 19)}${frac ? `.${frac}` : ''}Z`;
}

/** The local copy of a container's logs in json-file format, rotated on max-size/max-file like json-file does. */
class JsonFileCopy {
  private fd: number;
  private size: number;
  constructor(
    readonly path: string,
    private readonly maxSize: number | undefined,
    private readonly maxFile: number,
  ) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'a', 0o640);
    this.size = statSync(path).size;
  }

  write(e: LogEntry): void {
    const line = e.line.toString('utf8') + (e.partial ? '' : '\n');
    const rec = Buffer.from(`${JSON.stringify({ log: line, stream: e.source, time: rfc3339Nano(e.timeNano) })}\n`);
    if (this.maxSize !== undefined && this.size + rec.length > this.maxSize && this.size > 0) this.rotate();
    writeSync(this.fd, rec);
    this.size += rec.length;
  }

  private rotate(): void {
    closeSync(this.fd);
    if (this.maxFile <= 1) {
      unlinkSync(this.path);
    } else {
      for (let i = this.maxFile - 1; i >= 1; i--) {
        const from = i === 1 ? this.path : `${this.path}.${i - 1}`;
        try {
          renameSync(from, `${this.path}.${i}`);
        } catch {
          // a generation that does not exist yet
        }
      }
    }
    this.fd = openSync(this.path, 'a', 0o640);
    this.size = 0;
  }

  close(): void {
    closeSync(this.fd);
  }
}

function tlsOptions(cfg: LokiDriverConfig): https.RequestOptions {
  const t = cfg.tls;
  return {
    ...(t.caFile ? { ca: readFileSync(t.caFile) } : {}),
    ...(t.certFile ? { cert: readFileSync(t.certFile) } : {}),
    ...(t.keyFile ? { key: readFileSync(t.keyFile) } : {}),
    ...(t.serverName ? { servername: t.serverName } : {}),
    ...(t.insecureSkipVerify ? { rejectUnauthorized: false } : {}),
  };
}

export class ContainerLogger {
  private closing = false;
  private splitter = new FrameSplitter();
  private readonly loop: Promise<void>;
  readonly client: LokiPushClient;
  private readonly copy: JsonFileCopy | undefined;
  readonly startedAt = Date.now();

  constructor(
    readonly fifo: string,
    private readonly fd: number,
    readonly containerId: string,
    readonly cfg: LokiDriverConfig,
    readonly folder: string,
    private readonly log: (msg: string) => void,
    private readonly pollMs: number,
  ) {
    this.client = new LokiPushClient({ ...cfg, tls: tlsOptions(cfg) }, (m) => log(`${containerId.slice(0, 12)}: ${m}`));
    this.copy = cfg.noFile ? undefined : new JsonFileCopy(join(folder, 'json.log'), cfg.maxSizeBytes, cfg.maxFile);
    this.loop = this.consume();
  }

  private async handle(e: LogEntry): Promise<void> {
    // As the real driver: Loki first, and lines that are only whitespace are not sent to Loki.
    if (e.line.toString('utf8').trim() !== '') {
      const labels = e.source ? { ...this.cfg.labels, source: e.source } : { ...this.cfg.labels };
      try {
        await this.client.push({ labels, timeNano: e.timeNano, line: e.line.toString('utf8') });
      } catch (error) {
        this.log(`${this.containerId.slice(0, 12)}: error pushing message to loki: ${(error as Error).message}`);
      }
    }
    try {
      this.copy?.write(e);
    } catch (error) {
      this.log(`${this.containerId.slice(0, 12)}: error writing log message: ${(error as Error).message}`);
    }
  }

  /** Reads frames and hands each to the push client, awaiting it: no read happens while a batch is being retried. */
  private async consume(): Promise<void> {
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      let n: number;
      try {
        n = await readAsync(this.fd, buf);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') {
          if (this.closing) return;
          await sleep(this.pollMs);
          continue;
        }
        this.log(`${this.containerId.slice(0, 12)}: fifo read failed: ${(error as Error).message}`);
        return;
      }
      if (n === 0) return; // every writer is gone
      let entries: LogEntry[];
      try {
        entries = this.splitter.push(Buffer.from(buf.subarray(0, n)));
      } catch (error) {
        // As the real driver, start decoding afresh rather than stay stuck on a bad frame.
        this.log(`${this.containerId.slice(0, 12)}: dropping undecodable fifo data: ${(error as Error).message}`);
        this.splitter = new FrameSplitter();
        continue;
      }
      for (const e of entries) await this.handle(e);
    }
  }

  /**
   * StopLogging: finish what the FIFO already holds, wait for the batch in flight (with its retries, as the real
   * driver does), flush the rest once, close.
   */
  async stop(): Promise<void> {
    this.closing = true;
    await this.loop;
    await this.client.stop();
    this.copy?.close();
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
    if (!this.cfg.keepFile && this.copy) rmSync(this.folder, { recursive: true, force: true });
  }
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text.trim() ? JSON.parse(text) : {};
}

export async function runLokiDriver(opts: LokiDriverOptions): Promise<RunningLokiDriver> {
  const log = opts.log ?? ((m: string) => process.stdout.write(`loki-driver: ${m}\n`));
  const pollMs = opts.pollMs ?? 20;
  const active = new Map<string, ContainerLogger>();
  // The real driver labels lines with os.Hostname(). Lab hosts share one kernel, hence one hostname: the plugin
  // setting LOKI_HOST_LABEL (`docker plugin install ... LOKI_HOST_LABEL=vps2`) gives each its own.
  const host = process.env.LOKI_HOST_LABEL || hostname();

  const startLogging = (file: string, info: DockerLogInfo): string => {
    if (!info?.ContainerID) return 'must provide container id in log context';
    if (active.has(file)) return `logger for "${file}" already exists`;
    const folder = join(opts.logDir, info.ContainerID);
    let cfg: LokiDriverConfig;
    try {
      cfg = parseDriverConfig({ ...info, LogPath: join(folder, 'json.log') }, host);
    } catch (error) {
      if (error instanceof DriverConfigError) return `error creating loki logger: ${error.message}`;
      return `error creating loki logger: ${(error as Error).message}`;
    }
    let fd: number;
    try {
      // Non-blocking: a read never parks a libuv thread; an empty FIFO answers EAGAIN and is polled.
      fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (error) {
      return `error opening logger fifo: "${file}": ${(error as Error).message}`;
    }
    try {
      active.set(file, new ContainerLogger(file, fd, info.ContainerID, cfg, folder, log, pollMs));
    } catch (error) {
      closeSync(fd);
      return `error creating jsonfile logger: ${(error as Error).message}`;
    }
    log(`start logging ${info.ContainerID.slice(0, 12)} (${info.ContainerName ?? ''}) to ${cfg.url.href}`);
    return '';
  };

  const stopLogging = async (file: string): Promise<void> => {
    const lf = active.get(file);
    if (!lf) return;
    const t0 = Date.now();
    await lf.stop();
    active.delete(file);
    log(`stopped logging ${lf.containerId.slice(0, 12)} in ${Date.now() - t0}ms (${JSON.stringify(lf.client.stats)})`);
  };

  const server = http.createServer(async (req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/vnd.docker.plugins.v1+json' });
      res.end(`${JSON.stringify(body)}\n`);
    };
    try {
      const body = (await readJson(req)) as Record<string, unknown>;
      switch (req.url) {
        case '/Plugin.Activate':
          return reply(200, { Implements: ['LogDriver'] });
        case '/LogDriver.Capabilities':
          // The daemon decodes {"Cap":{"ReadLogs":...},"Err":""}. `docker logs` is served by the daemon's own
          // local cache (dual logging) when a driver cannot read.
          return reply(200, { Cap: { ReadLogs: false }, Err: '' });
        case '/LogDriver.StartLogging':
          return reply(200, { Err: startLogging(String(body.File ?? ''), body.Info as DockerLogInfo) });
        case '/LogDriver.StopLogging':
          await stopLogging(String(body.File ?? ''));
          return reply(200, { Err: '' });
        case '/LogDriver.ReadLogs':
          return reply(500, { Err: 'loki: this driver cannot read logs; docker uses its local cache' });
        default:
          return reply(404, { Err: `unknown endpoint ${req.url}` });
      }
    } catch (error) {
      reply(400, { Err: (error as Error).message });
    }
  });
  server.keepAliveTimeout = 0;
  server.requestTimeout = 0;

  mkdirSync(dirname(opts.socketPath), { recursive: true });
  try {
    unlinkSync(opts.socketPath);
  } catch {
    // no stale socket
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.socketPath, () => resolve());
  });
  log(`listening on ${opts.socketPath}`);

  return {
    socketPath: opts.socketPath,
    active,
    async close() {
      for (const lf of active.values()) lf.client.cancel();
      await Promise.all([...active.keys()].map((f) => stopLogging(f)));
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
