/**
 * A Loki-compatible receiver for the lab: Loki's push API (`POST /loki/api/v1/push`, JSON), its query API for stream
 * selectors (`GET /loki/api/v1/query_range`, `/labels`, `/label/<name>/values`), `GET /ready`, and two controls:
 * `POST /lab/hang` (from then on accept and never answer, as a Loki that is down behind a live socket) and
 * `POST /lab/resume`. What it receives is kept in memory and appended to `<dataDir>/pushes.jsonl` for inspection.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { streamKey } from './push-client.js';
import { type DecodedStream, decodePushRequest, snappyDecompress } from './push-proto.js';
import { matchesLabels, matchesLine, parseSelector, SelectorError } from './selector.js';

export interface LokiReceiverOptions {
  host?: string;
  port?: number;
  /** When set, every accepted push is appended to <dataDir>/pushes.jsonl. */
  dataDir?: string;
  /** Largest push body accepted (Loki's default distributor limit is in this range). */
  maxBodyBytes?: number;
}

export interface ReceivedStream {
  labels: Record<string, string>;
  values: [bigint, string][];
}

export interface LokiReceiver {
  url: string;
  pushUrl: string;
  port: number;
  /** Streams received so far (live view). */
  readonly streams: ReadonlyMap<string, ReceivedStream>;
  /** Requests received and never answered while hung. */
  readonly held: number;
  readonly pushes: number;
  hang(): void;
  resume(): void;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Loki's time parameters: integer = Unix nanoseconds, decimal = Unix seconds, else RFC 3339. */
export function parseLokiTime(raw: string): bigint {
  if (/^\d+$/.test(raw)) return BigInt(raw);
  if (/^\d+\.\d*$/.test(raw)) {
    const [s, f = ''] = raw.split('.');
    return BigInt(s!) * 1_000_000_000n + BigInt(f.padEnd(9, '0').slice(0, 9));
  }
  const ms = Date.parse(raw);
  if (Number.isNaN(ms)) throw new HttpError(400, `cannot parse "${raw}" to a valid timestamp`);
  return BigInt(ms) * 1_000_000n;
}

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

export async function runLokiReceiver(opts: LokiReceiverOptions = {}): Promise<LokiReceiver> {
  const streams = new Map<string, ReceivedStream>();
  const heldResponses = new Set<http.ServerResponse>();
  let hung = false;
  let pushes = 0;
  const maxBody = opts.maxBodyBytes ?? 16 * 1024 * 1024;
  const logFile = opts.dataDir ? join(opts.dataDir, 'pushes.jsonl') : undefined;
  if (opts.dataDir) mkdirSync(opts.dataDir, { recursive: true });

  const readBody = async (req: http.IncomingMessage): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of req) {
      n += (c as Buffer).length;
      if (n > maxBody) throw new HttpError(413, `request body larger than ${maxBody} bytes`);
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks);
  };

  const decodeJson = (body: Buffer): DecodedStream[] => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch (error) {
      throw new HttpError(400, `invalid JSON: ${(error as Error).message}`);
    }
    const list = (parsed as { streams?: unknown }).streams;
    if (!Array.isArray(list)) throw new HttpError(400, 'push body: "streams" must be an array');
    const out: DecodedStream[] = [];
    for (const [i, s] of list.entries()) {
      const labels = (s as { stream?: unknown }).stream;
      const values = (s as { values?: unknown }).values;
      if (!labels || typeof labels !== 'object' || !Object.values(labels).every((v) => typeof v === 'string')) {
        throw new HttpError(400, `streams[${i}].stream: label values must be strings`);
      }
      if (!Array.isArray(values)) throw new HttpError(400, `streams[${i}].values must be an array`);
      const vals: [string, string][] = [];
      for (const [j, v] of values.entries()) {
        if (!Array.isArray(v) || typeof v[0] !== 'string' || !/^\d+$/.test(v[0]) || typeof v[1] !== 'string') {
          throw new HttpError(400, `streams[${i}].values[${j}] must be ["<unix epoch in nanoseconds>", "<line>"]`);
        }
        vals.push([v[0], v[1]]);
      }
      out.push({ stream: labels as Record<string, string>, values: vals });
    }
    return out;
  };

  const ingest = (raw: Buffer, contentType: string, contentEncoding: string) => {
    let body = raw;
    if (contentEncoding === 'gzip') {
      try {
        body = gunzipSync(raw);
      } catch (error) {
        throw new HttpError(400, `invalid gzip body: ${(error as Error).message}`);
      }
    }
    let accepted: DecodedStream[];
    if (contentType.includes('json')) accepted = decodeJson(body);
    else if (contentType.includes('protobuf') || contentType === '') {
      // Loki's default: snappy-compressed protobuf, what promtail and grafana's docker driver send.
      try {
        accepted = decodePushRequest(snappyDecompress(body));
      } catch (error) {
        throw new HttpError(400, `invalid protobuf push: ${(error as Error).message}`);
      }
    } else throw new HttpError(415, `unsupported content type ${contentType}`);
    for (const [i, s] of accepted.entries()) {
      if (Object.keys(s.stream).length === 0) {
        throw new HttpError(400, `streams[${i}]: at least one label pair is required per stream`);
      }
    }
    for (const s of accepted) {
      const key = streamKey(s.stream);
      let st = streams.get(key);
      if (!st) {
        st = { labels: { ...s.stream }, values: [] };
        streams.set(key, st);
      }
      for (const [ts, line] of s.values) st.values.push([BigInt(ts), line]);
    }
    pushes++;
    if (logFile)
      appendFileSync(logFile, `${JSON.stringify({ received: new Date().toISOString(), streams: accepted })}\n`);
  };

  const queryRange = (params: URLSearchParams) => {
    const query = params.get('query');
    if (!query) throw new HttpError(400, 'query parameter is required');
    let sel: ReturnType<typeof parseSelector>;
    try {
      sel = parseSelector(query);
    } catch (error) {
      if (error instanceof SelectorError) throw new HttpError(400, `parse error: ${error.message}`);
      throw error;
    }
    const end = params.get('end') ? parseLokiTime(params.get('end')!) : nowNs();
    const start = params.get('start') ? parseLokiTime(params.get('start')!) : end - 3_600_000_000_000n;
    const limit = Number.parseInt(params.get('limit') ?? '100', 10);
    if (!Number.isInteger(limit) || limit <= 0) throw new HttpError(400, 'limit must be a positive integer');
    const direction = (params.get('direction') ?? 'backward').toLowerCase();
    if (direction !== 'backward' && direction !== 'forward')
      throw new HttpError(400, 'direction must be forward or backward');

    const hits: { s: ReceivedStream; ts: bigint; line: string }[] = [];
    for (const s of streams.values()) {
      if (!matchesLabels(sel, s.labels)) continue;
      for (const [ts, line] of s.values) {
        if (ts >= start && ts < end && matchesLine(sel, line)) hits.push({ s, ts, line });
      }
    }
    hits.sort((a, b) => (a.ts === b.ts ? 0 : a.ts < b.ts === (direction === 'forward') ? -1 : 1));
    const byStream = new Map<ReceivedStream, [string, string][]>();
    for (const h of hits.slice(0, limit)) {
      const v = byStream.get(h.s) ?? [];
      v.push([h.ts.toString(), h.line]);
      byStream.set(h.s, v);
    }
    return {
      status: 'success',
      data: {
        resultType: 'streams',
        result: [...byStream].map(([s, values]) => ({ stream: s.labels, values })),
        stats: { summary: { totalEntriesReturned: Math.min(hits.length, limit) } },
      },
    };
  };

  const matchingStreams = (params: URLSearchParams): ReceivedStream[] => {
    const q = params.get('query');
    if (!q) return [...streams.values()];
    const sel = parseSelector(q);
    return [...streams.values()].filter((s) => matchesLabels(sel, s.labels));
  };

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://receiver');
    const send = (status: number, body?: unknown) => {
      if (body === undefined) {
        res.writeHead(status);
        res.end();
        return;
      }
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json' });
      res.end(text);
    };
    try {
      if (url.pathname.startsWith('/lab/')) {
        if (req.method === 'POST' && url.pathname === '/lab/hang') {
          hung = true;
          return send(200, { hung });
        }
        if (req.method === 'POST' && url.pathname === '/lab/resume') {
          resume();
          return send(200, { hung });
        }
        if (req.method === 'GET' && url.pathname === '/lab/status') {
          let entries = 0;
          for (const s of streams.values()) entries += s.values.length;
          return send(200, { hung, held: heldResponses.size, pushes, streams: streams.size, entries });
        }
        return send(404, 'not found\n');
      }
      if (hung) {
        // Accept, read nothing more, answer never: what a client sees when Loki is wedged.
        heldResponses.add(res);
        res.on('close', () => heldResponses.delete(res));
        return;
      }
      if (url.pathname === '/ready' && req.method === 'GET') return send(200, 'ready\n');
      if (url.pathname === '/loki/api/v1/push' || url.pathname === '/api/prom/push') {
        if (req.method !== 'POST') return send(405, 'method not allowed\n');
        ingest(
          await readBody(req),
          String(req.headers['content-type'] ?? ''),
          String(req.headers['content-encoding'] ?? ''),
        );
        return send(204);
      }
      if (req.method !== 'GET') return send(405, 'method not allowed\n');
      if (url.pathname === '/loki/api/v1/query_range') return send(200, queryRange(url.searchParams));
      if (url.pathname === '/loki/api/v1/labels') {
        const names = new Set<string>();
        for (const s of matchingStreams(url.searchParams)) for (const k of Object.keys(s.labels)) names.add(k);
        return send(200, { status: 'success', data: [...names].sort() });
      }
      const lv = /^\/loki\/api\/v1\/label\/([^/]+)\/values$/.exec(url.pathname);
      if (lv) {
        const name = decodeURIComponent(lv[1]!);
        const values = new Set<string>();
        for (const s of matchingStreams(url.searchParams)) if (s.labels[name] !== undefined) values.add(s.labels[name]);
        return send(200, { status: 'success', data: [...values].sort() });
      }
      return send(404, '404 page not found\n');
    } catch (error) {
      if (error instanceof HttpError) return send(error.status, `${error.message}\n`);
      if (error instanceof SelectorError) return send(400, `parse error: ${error.message}\n`);
      return send(500, `${(error as Error).message}\n`);
    }
  });
  server.keepAliveTimeout = 5000;

  const resume = () => {
    hung = false;
    // The held requests were never answered; drop their connections, as a restarted Loki would.
    for (const r of heldResponses) r.socket?.destroy();
    heldResponses.clear();
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 3100, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const hostPart = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const base = `http://${hostPart}:${addr.port}`;
  return {
    url: base,
    pushUrl: `${base}/loki/api/v1/push`,
    port: addr.port,
    streams,
    get held() {
      return heldResponses.size;
    },
    get pushes() {
      return pushes;
    },
    hang() {
      hung = true;
    },
    resume,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * `dyce lab serve-loki [--host 127.0.0.1] [--port 3100] [--dir DIR]`: runs the receiver in the foreground until
 * SIGTERM/SIGINT, printing one JSON line `{"url":...,"pushUrl":...}` once it listens.
 */
export async function lokiReceiverMain(argv: string[]): Promise<number> {
  const opts: LokiReceiverOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const [name, inline] = flag.includes('=')
      ? [flag.slice(0, flag.indexOf('=')), flag.slice(flag.indexOf('=') + 1)]
      : [flag, undefined];
    const value = () => inline ?? argv[++i] ?? '';
    if (name === '--host') opts.host = value();
    else if (name === '--port') {
      const v = value();
      const port = Number(v);
      if (!/^\d+$/.test(v) || port > 65535) {
        process.stderr.write(`serve-loki: --port must be a port number, got "${v}"\n`);
        return 2;
      }
      opts.port = port;
    } else if (name === '--dir') opts.dataDir = value();
    else {
      process.stderr.write(`serve-loki: unknown flag ${flag}\nusage: serve-loki [--host H] [--port P] [--dir DIR]\n`);
      return 2;
    }
  }
  const r = await runLokiReceiver(opts);
  process.stdout.write(`${JSON.stringify({ url: r.url, pushUrl: r.pushUrl, pid: process.pid })}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await r.close();
  return 0;
}
