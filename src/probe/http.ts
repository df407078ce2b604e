import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import * as http from 'node:http';
import * as https from 'node:https';
import type { LookupFunction, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  type DetailedPeerCertificate,
  type PeerCertificate,
  rootCertificates,
  type TLSSocket,
  checkServerIdentity as tlsCheckServerIdentity,
} from 'node:tls';

/**
 * One HTTP exchange over a fresh connection (no keep-alive agent), so that every phase of it can be timed the
 * way blackbox_exporter reports them: resolve, connect, tls, processing (request sent -> first byte), transfer.
 * node:http is used directly: fetch() hides the socket and therefore the phases and the peer certificate.
 */
export interface PhaseTimings {
  dns: number;
  connect: number;
  tls: number;
  processing: number;
  transfer: number;
}

export interface TlsOptions {
  /** Extra CA certificates (PEM), trusted in addition to the system store. */
  ca?: string[];
  insecureSkipVerify?: boolean;
  serverName?: string;
}

export type IpProtocol = 'auto' | 'ip4' | 'ip6';

export interface ExchangeOptions {
  method: string;
  headers: Record<string, string>;
  body?: string;
  tls: TlsOptions;
  ipProtocol: IpProtocol;
  signal: AbortSignal;
  /** Bytes of body kept for matching; the rest is read and counted, not kept. */
  maxBodyBytes?: number;
}

export interface CertificateInfo {
  /** Earliest notAfter in the chain the server sent. */
  earliestExpiry?: Date;
  subject?: string;
  /** Set when verification failed or was skipped and the certificate would not have been trusted. */
  verifyError?: string;
}

export interface Exchange {
  connected: boolean;
  ip?: string;
  status?: number;
  httpVersion?: string;
  headers?: http.IncomingHttpHeaders;
  body?: string;
  bodyBytes: number;
  tls: boolean;
  cert?: CertificateInfo;
  timings: PhaseTimings;
  totalMs: number;
  /** Why no complete response came back. */
  error?: ExchangeError;
}

export interface ExchangeError {
  code: string;
  message: string;
}

const MAX_BODY = 4 * 1024 * 1024;

function lookupFor(protocol: IpProtocol): LookupFunction | undefined {
  if (protocol === 'auto') return undefined;
  const want = protocol === 'ip4' ? 4 : 6;
  // A preference, as blackbox's preferred_ip_protocol with fallback: the other family is used when the
  // name has no address of the preferred one.
  return ((hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    dnsLookup(hostname, { all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err);
      const pick = addresses.find((a) => a.family === want) ?? addresses[0];
      if (!pick) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }));
      if (options.all) callback(null, [pick]);
      else callback(null, pick.address, pick.family);
    });
  }) as unknown as LookupFunction;
}

function certInfo(socket: TLSSocket): CertificateInfo | undefined {
  let cert: DetailedPeerCertificate | undefined;
  try {
    cert = socket.getPeerCertificate(true);
  } catch {
    return undefined;
  }
  if (!cert || Object.keys(cert).length === 0) return undefined;
  let earliest: Date | undefined;
  const seen = new Set<string>();
  for (let c: DetailedPeerCertificate | undefined = cert; c?.valid_to && !seen.has(c.fingerprint256); ) {
    seen.add(c.fingerprint256);
    const t = new Date(c.valid_to);
    if (!Number.isNaN(t.getTime()) && (!earliest || t < earliest)) earliest = t;
    c = c.issuerCertificate;
  }
  const info: CertificateInfo = {};
  if (earliest) info.earliestExpiry = earliest;
  if (cert.subject?.CN) info.subject = String(cert.subject.CN);
  return info;
}

/** Performs one request/response on `url` and never throws: failures come back in `error`. */
export function exchange(url: URL, opts: ExchangeOptions): Promise<Exchange> {
  return new Promise((resolve) => {
    const isTls = url.protocol === 'https:';
    const t0 = performance.now();
    let tDns: number | undefined;
    let tConnect: number | undefined;
    let tTls: number | undefined;
    let tFirstByte: number | undefined;
    let socket: Socket | undefined;
    const result: Exchange = {
      connected: false,
      bodyBytes: 0,
      tls: isTls,
      timings: { dns: 0, connect: 0, tls: 0, processing: 0, transfer: 0 },
      totalMs: 0,
    };
    let done = false;
    const finish = (error?: ExchangeError) => {
      if (done) return;
      done = true;
      const tEnd = performance.now();
      const dnsEnd = tDns ?? t0;
      const connEnd = tConnect ?? dnsEnd;
      const tlsEnd = tTls ?? connEnd;
      result.timings = {
        dns: tDns !== undefined ? tDns - t0 : 0,
        connect: tConnect !== undefined ? tConnect - dnsEnd : 0,
        tls: tTls !== undefined ? tTls - connEnd : 0,
        processing: tFirstByte !== undefined ? tFirstByte - tlsEnd : 0,
        transfer: tFirstByte !== undefined ? tEnd - tFirstByte : 0,
      };
      result.totalMs = tEnd - t0;
      if (error) result.error = error;
      resolve(result);
    };

    const lookup = lookupFor(opts.ipProtocol);
    const common: http.RequestOptions = {
      method: opts.method,
      headers: opts.headers,
      agent: false,
      signal: opts.signal,
      ...(lookup ? { lookup, autoSelectFamily: false } : {}),
    };
    let req: http.ClientRequest;
    try {
      req = isTls
        ? https.request(url, {
            ...common,
            ...(opts.tls.ca ? { ca: [...rootCertificates, ...opts.tls.ca] } : {}),
            rejectUnauthorized: !opts.tls.insecureSkipVerify,
            ...(opts.tls.serverName ? { servername: opts.tls.serverName } : {}),
            // With a server name set, verify the certificate against it instead of the URL's host.
            ...(opts.tls.serverName
              ? {
                  checkServerIdentity: (_host: string, cert: PeerCertificate) =>
                    tlsCheckServerIdentity(opts.tls.serverName!, cert),
                }
              : {}),
          })
        : http.request(url, common);
    } catch (e) {
      finish(toExchangeError(e));
      return;
    }

    req.on('socket', (s: Socket) => {
      socket = s;
      s.once('lookup', () => {
        tDns = performance.now();
      });
      s.once('connect', () => {
        tConnect = performance.now();
        result.connected = true;
        if (s.remoteAddress) result.ip = s.remoteAddress;
      });
      if (isTls) {
        s.once('secureConnect', () => {
          tTls = performance.now();
          const tlsSocket = s as TLSSocket;
          const info = certInfo(tlsSocket);
          if (info) {
            if (!tlsSocket.authorized && tlsSocket.authorizationError)
              info.verifyError = String(tlsSocket.authorizationError);
            result.cert = info;
          }
        });
      }
    });

    req.on('response', (res) => {
      tFirstByte = performance.now();
      result.status = res.statusCode;
      result.httpVersion = `HTTP/${res.httpVersion}`;
      result.headers = res.headers;
      const max = opts.maxBodyBytes ?? MAX_BODY;
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on('data', (chunk: Buffer) => {
        result.bodyBytes += chunk.length;
        if (kept < max) {
          const part = chunk.subarray(0, max - kept);
          chunks.push(part);
          kept += part.length;
        }
      });
      res.on('end', () => {
        result.body = Buffer.concat(chunks).toString('utf8');
        finish();
      });
      res.on('error', (e) => finish(toExchangeError(e, opts.signal)));
      res.on('aborted', () =>
        finish(
          opts.signal.aborted
            ? toExchangeError(undefined, opts.signal)
            : { code: 'ECONNRESET', message: 'the connection closed before the body ended' },
        ),
      );
    });

    req.on('error', (e) => {
      // A failed verification never reaches secureConnect; keep what the certificate said (e.g. its expiry).
      if (isTls && socket && !result.cert) {
        const info = certInfo(socket as TLSSocket);
        if (info) result.cert = info;
      }
      finish(toExchangeError(e, opts.signal, result.cert));
    });

    if (opts.body !== undefined) req.end(opts.body);
    else req.end();
  });
}

const TLS_CODES: Record<string, string> = {
  CERT_HAS_EXPIRED: 'the certificate has expired',
  CERT_NOT_YET_VALID: 'the certificate is not valid yet',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the certificate is self-signed and not trusted (set tls-ca)',
  SELF_SIGNED_CERT_IN_CHAIN: 'the certificate chain ends in an untrusted self-signed CA (set tls-ca)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the certificate is signed by an unknown CA (set tls-ca)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the certificate is signed by an unknown CA (set tls-ca)',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the certificate does not name this host (see tls-server-name)',
};

export function toExchangeError(e: unknown, signal?: AbortSignal, cert?: CertificateInfo): ExchangeError {
  if (signal?.aborted) {
    const reason = signal.reason as { code?: string; message?: string } | undefined;
    return { code: reason?.code ?? 'ETIMEDOUT', message: reason?.message ?? 'timed out' };
  }
  const err = e as NodeJS.ErrnoException & { reason?: string };
  const code = err?.code ?? 'ERROR';
  if (code in TLS_CODES) {
    let msg = `TLS: ${TLS_CODES[code]} (${code})`;
    if (code === 'CERT_HAS_EXPIRED' && cert?.earliestExpiry)
      msg = `TLS: the certificate expired on ${cert.earliestExpiry.toISOString()} (${code})`;
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' && err.reason) msg += `: ${err.reason}`;
    return { code, message: msg };
  }
  switch (code) {
    case 'ECONNREFUSED':
      return { code, message: 'connection refused' };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { code, message: `cannot resolve the host name (${code})` };
    case 'ECONNRESET':
      return { code, message: 'the connection was reset' };
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return { code, message: `the host is unreachable (${code})` };
    default:
      return { code, message: err?.message ?? String(e) };
  }
}
