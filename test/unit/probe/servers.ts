import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { probeSpec } from '../../../src/config/actions/probe.js';
import { parseInputs, type RawInputs } from '../../../src/config/input-spec.js';
import { RecordingReporter } from '../../../src/github/reporter.js';
import { type ProbeRun, runProbeInputs } from '../../../src/probe/run.js';

export interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface TestServer {
  /** http(s)://127.0.0.1:PORT */
  origin: string;
  port: number;
  /** Every request received, with its body. */
  seen: Seen[];
  close(): Promise<void>;
}

export type Handler = (req: Seen, res: http.ServerResponse) => void | Promise<void>;

/** A real local HTTP or HTTPS server on 127.0.0.1 and a free port. */
export async function serve(handler: Handler, tls?: { key: string; cert: string }): Promise<TestServer> {
  const seen: Seen[] = [];
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      seen.push(s);
      Promise.resolve(handler(s, res)).catch((e) => {
        res.statusCode = 599;
        res.end(String(e));
      });
    });
  };
  const server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, onRequest) : http.createServer(onRequest);
  // A TLS handshake the client rejects is not an error of the server under test.
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    origin: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port nothing listens on (bound once, then released). */
export async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** Runs the probe engine as the action does: raw inputs -> parse -> run; records everything it reports. */
export async function probe(raw: RawInputs): Promise<{ run: ProbeRun; reporter: RecordingReporter; text: string }> {
  const reporter = new RecordingReporter();
  const inputs = parseInputs(probeSpec, raw);
  const run = await runProbeInputs(inputs, reporter, { env: {} });
  const text = [...reporter.lines, ...Object.values(reporter.outputs), ...reporter.summaries].join('\n');
  return { run, reporter, text };
}
