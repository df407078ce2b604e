/**
 * Batches log entries and pushes them to Loki, with the promtail client's semantics that the docker driver inherits:
 * one batch at a time, sent when it would grow past `batchSizeBytes` or when it is `batchWaitMs` old; a failed send
 * (connection error, timeout, 429, 5xx) is retried with jittered exponential backoff up to `maxRetries` attempts.
 *
 * While a batch is being sent or retried, `push()` does not return. The driver awaits it before reading the next
 * frame from the FIFO, so a Loki that does not answer stops the FIFO from draining and, in blocking mode, the
 * container's writes block: the behaviour of the real driver that this lab exists to reproduce.
 */
import http from 'node:http';
import https from 'node:https';

export interface PushEntry {
  labels: Record<string, string>;
  timeNano: bigint;
  line: string;
}

export interface PushClientConfig {
  url: URL;
  batchWaitMs: number;
  batchSizeBytes: number;
  timeoutMs: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  maxRetries: number;
  tenantId?: string | undefined;
  tls?: https.RequestOptions;
}

/** The answer of one push: an HTTP status, or -1 with the error of a connection that failed or timed out. */
export interface SendResult {
  status: number;
  error?: string;
}

export type PushLog = (msg: string) => void;

/** dskit's backoff: delays drawn from [min, 2·min), doubling each time, capped at max; a cancel ends it early. */
export class Backoff {
  private retries = 0;
  private nextMin: number;
  private nextMax: number;
  private wake: (() => void) | undefined;

  constructor(
    private readonly cfg: { minBackoffMs: number; maxBackoffMs: number; maxRetries: number },
    private readonly isCancelled: () => boolean,
    private readonly random: () => number = Math.random,
  ) {
    this.nextMin = cfg.minBackoffMs;
    this.nextMax = Math.min(cfg.minBackoffMs * 2, cfg.maxBackoffMs);
  }

  ongoing(): boolean {
    return !this.isCancelled() && (this.cfg.maxRetries === 0 || this.retries < this.cfg.maxRetries);
  }

  nextDelay(): number {
    if (this.nextMin >= this.nextMax) {
      const d = this.nextMax;
      this.nextMin = Math.min(this.nextMin * 2, this.cfg.maxBackoffMs);
      this.nextMax = Math.min(this.nextMax * 2, this.cfg.maxBackoffMs);
      return d;
    }
    const d = this.nextMin + Math.floor(this.random() * (this.nextMax - this.nextMin));
    this.nextMin = Math.min(this.nextMin * 2, this.cfg.maxBackoffMs);
    this.nextMax = Math.min(this.nextMax * 2, this.cfg.maxBackoffMs);
    return d;
  }

  /** Counts a retry and sleeps before the next attempt, unless the retries are used up. */
  async wait(): Promise<void> {
    this.retries++;
    if (!this.ongoing()) return;
    const ms = this.nextDelay();
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.wake = undefined;
  }

  /** Ends a sleep at once (after a cancel). */
  interrupt(): void {
    this.wake?.();
  }
}

class Batch {
  readonly streams = new Map<string, { labels: Record<string, string>; values: [string, string][] }>();
  bytes = 0;
  entries = 0;
  readonly created = Date.now();

  constructor(first: PushEntry) {
    this.add(first);
  }

  sizeAfter(e: PushEntry): number {
    return this.bytes + Buffer.byteLength(e.line);
  }

  add(e: PushEntry): void {
    const key = streamKey(e.labels);
    let s = this.streams.get(key);
    if (!s) {
      s = { labels: e.labels, values: [] };
      this.streams.set(key, s);
    }
    s.values.push([e.timeNano.toString(), e.line]);
    this.bytes += Buffer.byteLength(e.line);
    this.entries++;
  }

  /** Loki's JSON push body. */
  encode(): Buffer {
    return Buffer.from(
      JSON.stringify({ streams: [...this.streams.values()].map((s) => ({ stream: s.labels, values: s.values })) }),
    );
  }
}

export function streamKey(labels: Record<string, string>): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** POSTs a body, giving up (and destroying the connection) after timeoutMs, like Go's http.Client.Timeout. */
export function postJson(cfg: PushClientConfig, body: Buffer): Promise<SendResult> {
  return new Promise((resolve) => {
    const mod = cfg.url.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'content-length': String(body.length),
      'user-agent': 'dyce-lab-loki-driver',
    };
    if (cfg.tenantId) headers['x-scope-orgid'] = cfg.tenantId;
    let done = false;
    const finish = (r: SendResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    const req = mod.request(cfg.url, { method: 'POST', headers, agent: false, ...(cfg.tls ?? {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => {
        if (chunks.length < 4) chunks.push(d);
      });
      res.on('end', () => {
        const status = res.statusCode ?? -1;
        const text = Buffer.concat(chunks).toString('utf8').slice(0, 1024).split('\n')[0] ?? '';
        finish(
          status >= 200 && status < 300
            ? { status }
            : { status, error: `server returned HTTP status ${status}: ${text}` },
        );
      });
      res.on('error', (e) => finish({ status: -1, error: e.message }));
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`timeout after ${cfg.timeoutMs}ms (Client.Timeout exceeded while awaiting headers)`));
    }, cfg.timeoutMs);
    req.on('error', (e) => finish({ status: -1, error: e.message }));
    req.end(body);
  });
}

/** A mutex as a promise chain: the run loop's single thread of control in the Go client. */
class Serial {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => {});
    return next;
  }
}

export class LokiPushClient {
  private batch: Batch | undefined;
  private readonly serial = new Serial();
  private readonly ticker: NodeJS.Timeout;
  private cancelled = false;
  private stopped = false;
  private backoff: Backoff | undefined;
  /** Counters for logs and tests. */
  readonly stats = { sentBatches: 0, sentEntries: 0, droppedBatches: 0, droppedEntries: 0, attempts: 0 };

  constructor(
    private readonly cfg: PushClientConfig,
    private readonly log: PushLog = () => {},
    private readonly send: (body: Buffer) => Promise<SendResult> = (body) => postJson(cfg, body),
  ) {
    // Batches are checked for age ten times per batch-wait (at most every 10ms), as the Go client does.
    const every = Math.max(10, Math.floor(cfg.batchWaitMs / 10));
    this.ticker = setInterval(() => {
      if (this.batch && Date.now() - this.batch.created >= this.cfg.batchWaitMs) {
        void this.serial.run(async () => {
          const b = this.batch;
          if (!b || Date.now() - b.created < this.cfg.batchWaitMs) return;
          this.batch = undefined;
          await this.sendBatch(b);
        });
      }
    }, every);
    this.ticker.unref();
  }

  /** Resolves once the entry is in a batch; waits while a batch is being sent or retried. */
  push(e: PushEntry): Promise<void> {
    return this.serial.run(async () => {
      if (this.stopped) throw new Error('client closed');
      if (!this.batch) {
        this.batch = new Batch(e);
        return;
      }
      if (this.batch.sizeAfter(e) > this.cfg.batchSizeBytes) {
        const full = this.batch;
        this.batch = new Batch(e);
        await this.sendBatch(full);
        return;
      }
      this.batch.add(e);
    });
  }

  /**
   * Waits for the batch in flight (with all its retries, as the real driver's Close does), then sends what is left
   * with a single attempt: after the stop, the backoff is cancelled.
   */
  stop(): Promise<void> {
    return this.serial.run(async () => {
      if (this.stopped) return;
      this.stopped = true;
      this.cancelled = true;
      clearInterval(this.ticker);
      const b = this.batch;
      this.batch = undefined;
      if (b) await this.sendBatch(b);
    });
  }

  /** Abandons retries at once (used when the plugin itself shuts down). */
  cancel(): void {
    this.cancelled = true;
    this.backoff?.interrupt();
  }

  private async sendBatch(b: Batch): Promise<void> {
    const body = b.encode();
    const backoff = new Backoff(this.cfg, () => this.cancelled);
    this.backoff = backoff;
    let last: SendResult = { status: -1 };
    for (;;) {
      this.stats.attempts++;
      last = await this.send(body);
      if (!last.error) {
        this.stats.sentBatches++;
        this.stats.sentEntries += b.entries;
        this.backoff = undefined;
        return;
      }
      // Only 429, 5xx and connection-level errors are retried.
      if (last.status > 0 && last.status !== 429 && Math.floor(last.status / 100) !== 5) break;
      this.log(`error sending batch, will retry: status=${last.status} error=${last.error}`);
      await backoff.wait();
      if (!backoff.ongoing()) break;
    }
    this.backoff = undefined;
    this.stats.droppedBatches++;
    this.stats.droppedEntries += b.entries;
    this.log(`final error sending batch, dropped ${b.entries} entries: status=${last.status} error=${last.error}`);
  }
}
