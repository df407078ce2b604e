import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  type Exchange,
  examinePeer,
  onceEvent,
  type Phase,
  ProbeError,
  startTls as startTlsOn,
  type TlsOptions,
  toExchangeError,
} from './http.js';
import type { GoRegexp } from './regex.js';

/** One step of blackbox's tcp `query_response`: wait for a line matching `expect`, send a line, or start TLS. */
export type QueryStep = { expect: GoRegexp } | { send: string } | { starttls: true };

export interface TcpOptions {
  address: string;
  /** TLS right after connecting (blackbox tcp `tls: true`); also the settings `starttls` uses. */
  tls?: TlsOptions;
  tlsAtStart: boolean;
  steps: QueryStep[];
  signal: AbortSignal;
  onPhase(phase: Phase | 'waiting for a line' | 'sending'): void;
}

export type TcpExchange = Exchange & { regexFailed: boolean };

/**
 * blackbox_exporter's tcp prober: connect (and TLS), then the query/response steps, line by line as Go's
 * bufio.Scanner reads them. Never throws.
 */
export async function tcpExchange(url: URL, o: TcpOptions): Promise<TcpExchange> {
  const t0 = performance.now();
  const result: TcpExchange = {
    connected: false,
    bodyRead: false,
    rawBodyBytes: 0,
    bodyBytes: 0,
    contentLength: -1,
    tls: false,
    timings: { dns: 0, connect: 0, tls: 0, processing: 0, transfer: 0 },
    totalMs: 0,
    regexFailed: false,
  };
  const sockets: net.Socket[] = [];
  let socket: net.Socket;
  let buffered = '';
  let ended = false;
  const listen = (s: net.Socket) => {
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buffered += d;
      s.emit('dyce-line');
    });
    s.on('end', () => {
      ended = true;
      s.emit('dyce-line');
    });
  };
  const startTls = async (raw: net.Socket) => {
    o.onPhase('in the TLS handshake');
    const t1 = performance.now();
    const t = o.tls!;
    raw.removeAllListeners('data');
    const secure = startTlsOn(raw, t);
    sockets.push(secure);
    await onceEvent(secure, 'secureConnect', o.signal);
    result.timings.tls += performance.now() - t1;
    result.tls = true;
    const peer = examinePeer(secure, t);
    // As blackbox: the TLS metrics exist once the handshake and the verification passed.
    if (peer.error) throw peer.error;
    result.tlsInfo = peer.info;
    buffered = '';
    ended = false;
    listen(secure);
    return secure;
  };
  try {
    o.onPhase('connecting');
    const raw = net.connect({ host: o.address, port: Number(url.port) });
    sockets.push(raw);
    raw.on('error', () => {});
    await onceEvent(raw, 'connect', o.signal);
    result.connected = true;
    if (raw.remoteAddress) result.ip = raw.remoteAddress;
    result.timings.connect = performance.now() - t0;
    socket = raw;
    listen(raw);
    if (o.tlsAtStart) socket = await startTls(raw);
    for (const step of o.steps) {
      if ('expect' in step) {
        o.onPhase('waiting for a line');
        for (;;) {
          const nl = buffered.indexOf('\n');
          if (nl >= 0) {
            const line = buffered.slice(0, nl).replace(/\r$/, '');
            buffered = buffered.slice(nl + 1);
            if (step.expect.test(line)) break;
            continue;
          }
          if (ended) {
            // The last line without a newline is still a line for Go's scanner.
            if (buffered !== '' && step.expect.test(buffered)) {
              buffered = '';
              break;
            }
            result.regexFailed = true;
            throw new ProbeError(
              'EEXPECT',
              `no line matched \`${step.expect.source}\` before the server closed the connection (query-response)`,
            );
          }
          await onceEvent(socket, 'dyce-line', o.signal);
        }
      } else if ('send' in step) {
        o.onPhase('sending');
        socket.write(`${step.send}\n`);
      } else socket = await startTls(socket);
    }
    return result;
  } catch (e) {
    result.error = toExchangeError(e, o.signal, sockets);
    return result;
  } finally {
    result.totalMs = performance.now() - t0;
    for (const s of sockets.reverse()) s.destroy();
  }
}
