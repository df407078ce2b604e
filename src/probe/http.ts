import { X509Certificate } from 'node:crypto';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import * as tls from 'node:tls';
import * as zlib from 'node:zlib';

/**
 * One HTTP exchange over a fresh connection to an address resolved beforehand (as blackbox_exporter does: it resolves
 * the name with its preferred IP protocol, then dials the IP), timed by phase the way blackbox reports them:
 * connect, tls, processing (connection ready -> first byte), transfer (first byte -> body read).
 * The connection is made here, so that TLS (ALPN h2 or http/1.1, client certificates, versions) and a proxy's
 * CONNECT are in one place, and the request then runs over it with node:http or node:http2.
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
  cert?: string;
  key?: string;
  passphrase?: string;
  insecureSkipVerify?: boolean;
  /** Name sent as SNI and checked against the certificate. */
  serverName: string;
  minVersion?: tls.SecureVersion;
  maxVersion?: tls.SecureVersion;
}

export interface ProxyRoute {
  host: string;
  port: number;
  /** `Proxy-Authorization` value, from the proxy URL's user info. */
  authorization?: string;
  connectHeaders: Array<[string, string]>;
}

export type Compression = 'gzip' | 'br' | 'deflate' | 'identity';

export interface ExchangeOptions {
  method: string;
  /** Header lines in order, as sent (Host included). */
  headers: Array<[string, string]>;
  body?: Buffer;
  /** The address to connect to (the URL's host is only used for Host and TLS). */
  address: string;
  tls: TlsOptions;
  http2: boolean;
  proxy?: ProxyRoute;
  signal: AbortSignal;
  compression?: Compression;
  /** Bytes of decompressed body read at most; 0: no limit. */
  bodySizeLimit: number;
  /** Keep the body text (for regexps and conditions). */
  keepBody: boolean;
  /** Called with the status and headers: false leaves the body unread (a redirect that is followed or refused). */
  wantBody(status: number, headers: HeaderValues): boolean;
  /** Tells the caller which phase is running, for timeout messages. */
  onPhase(phase: Phase): void;
}

export type Phase =
  | 'resolving the host name'
  | 'connecting'
  | 'connecting through the proxy'
  | 'in the TLS handshake'
  | 'waiting for the response headers'
  | 'reading the body';

/** Header name (lower case) -> every value, one per header line, as Go's http.Header keeps them. */
export type HeaderValues = Record<string, string[]>;

export interface CertSummary {
  subject: string;
  issuer: string;
  /** SHA-256 of the DER, hex. */
  fingerprint: string;
  /** subjectAltName DNS names. */
  dnsNames: string[];
  names: string;
  validFrom: Date;
  validTo: Date;
}

export interface TlsInfo {
  /** `TLS 1.3`, as blackbox labels probe_tls_version_info. */
  version: string;
  /** Earliest notAfter among the certificates the server sent (blackbox's probe_ssl_earliest_cert_expiry). */
  earliestExpiry?: Date;
  /** Earliest notAfter in the verified chain, up to the trusted root; absent when not verified. */
  lastChainExpiry?: Date;
  leaf?: CertSummary;
  alpn?: string;
}

export interface Exchange {
  connected: boolean;
  ip?: string;
  status?: number;
  /** `HTTP/1.1`, `HTTP/2.0`, as Go's resp.Proto. */
  httpVersion?: string;
  headers?: HeaderValues;
  /** The body as text (decompressed), when kept. */
  body?: string;
  /** Whether the body was read. */
  bodyRead: boolean;
  /** Bytes on the wire. */
  rawBodyBytes: number;
  /** Bytes after decompression (blackbox's probe_http_uncompressed_body_length). */
  bodyBytes: number;
  /** Content-Length as Go reads it: -1 when unknown. */
  contentLength: number;
  tls: boolean;
  tlsInfo?: TlsInfo;
  timings: PhaseTimings;
  totalMs: number;
  /** Why no complete response came back. */
  error?: ExchangeError;
  /** The response came, but its body could not be read whole (size limit, decompression, reset). */
  bodyError?: string;
  /** The body failed before any of it could be read: a gzip header that is not one (Go's gzip.NewReader). */
  bodyErrorAtStart?: boolean;
}

export interface ExchangeError {
  code: string;
  message: string;
}

export class ProbeError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const TLS_NAMES: Record<string, string> = {
  'TLSv1.3': 'TLS 1.3',
  'TLSv1.2': 'TLS 1.2',
  'TLSv1.1': 'TLS 1.1',
  TLSv1: 'TLS 1.0',
};

/** The chain as Node reports it: the certificates the server sent, completed from the context's trust store. */
function peerChain(socket: tls.TLSSocket): X509Certificate[] {
  let cert: tls.DetailedPeerCertificate | undefined;
  try {
    cert = socket.getPeerCertificate(true);
  } catch {}
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  // Copies from the DER: getPeerX509Certificate's object, tied to the connection, crashed Node 20 here.
  for (let c = cert; c?.raw && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
    seen.add(c.fingerprint256);
    chain.push(new X509Certificate(c.raw));
  }
  return chain;
}

let systemRoots: Set<string> | undefined;
/** SHA-256 fingerprints (Node's colon form) of the system's trusted roots. */
function systemRootFingerprints(): Set<string> {
  if (systemRoots) return systemRoots;
  systemRoots = new Set();
  for (const pem of tls.rootCertificates)
    try {
      systemRoots.add(new X509Certificate(pem).fingerprint256);
    } catch {}
  return systemRoots;
}

export function parsePemCertificates(pems: readonly string[]): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const pem of pems)
    for (const one of pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [])
      out.push(new X509Certificate(one));
  return out;
}

const selfIssued = (c: X509Certificate) => c.checkIssued(c);
const issues = (issuer: X509Certificate, c: X509Certificate) => {
  try {
    return c.checkIssued(issuer) && c.verify(issuer.publicKey);
  } catch {
    return false;
  }
};
const minExpiry = (cs: readonly X509Certificate[]) =>
  cs.map((c) => new Date(c.validTo)).reduce<Date | undefined>((a, b) => (!a || b < a ? b : a), undefined);
const when = (d: Date) => d.toISOString().replace('.000Z', 'Z');
const daysAgo = (d: Date) => {
  const days = Math.floor((Date.now() - d.getTime()) / 86_400_000);
  return days >= 1 ? `, ${days} day${days === 1 ? '' : 's'} ago` : '';
};
const cnOf = (c: X509Certificate) => /(?:^|\n)CN=([^\n]*)/.exec(c.subject)?.[1] ?? c.subject.replace(/\n/g, ', ');

function dateError(path: readonly X509Certificate[], now: number): ProbeError | undefined {
  for (const [i, c] of path.entries()) {
    const who = i === 0 ? 'the certificate' : `the CA certificate "${cnOf(c)}"`;
    const to = new Date(c.validTo);
    const from = new Date(c.validFrom);
    if (to.getTime() < now)
      return new ProbeError('CERT_HAS_EXPIRED', `TLS: ${who} expired on ${when(to)}${daysAgo(to)} (CERT_HAS_EXPIRED)`);
    if (from.getTime() > now)
      return new ProbeError('CERT_NOT_YET_VALID', `TLS: ${who} is not valid before ${when(from)} (CERT_NOT_YET_VALID)`);
  }
  return undefined;
}

/**
 * Go's verification against `tls-ca` alone (as blackbox's ca_file: the system roots are then not trusted): a path
 * from the leaf through the certificates the server sent to one of the CAs, every certificate on it within its dates.
 */
function verifyAgainst(sent: readonly X509Certificate[], roots: readonly X509Certificate[]): X509Certificate[] {
  const leaf = sent[0]!;
  const path = [leaf];
  let cur = leaf;
  for (let depth = 0; depth < 10; depth++) {
    if (roots.some((r) => r.fingerprint256 === cur.fingerprint256)) break;
    const root = roots.find((r) => issues(r, cur));
    if (root) {
      path.push(root);
      break;
    }
    const next = sent.find((c) => c !== cur && c.ca && !path.includes(c) && issues(c, cur));
    if (!next) {
      const code =
        sent.length === 1 && selfIssued(leaf) ? 'DEPTH_ZERO_SELF_SIGNED_CERT' : 'UNABLE_TO_VERIFY_LEAF_SIGNATURE';
      const issuer = /(?:^|\n)CN=([^\n]*)/.exec(cur.issuer)?.[1] ?? cur.issuer;
      throw new ProbeError(
        code,
        `TLS: ${cur === leaf ? 'the certificate' : `the CA certificate "${cnOf(cur)}"`} is issued by "${issuer}", which is not in tls-ca nor sent by the server (${code})`,
      );
    }
    path.push(next);
    cur = next;
  }
  const late = dateError(path, Date.now());
  if (late) throw late;
  return path;
}

/**
 * Reads the TLS facts blackbox reports and verifies the peer as Go does. The earliest expiry is over the
 * certificates the server sent (Go's PeerCertificates); Node completes the sent chain from the trust store, so a
 * trailing self-signed system root is taken as added, not sent.
 */
export function examinePeer(socket: tls.TLSSocket, t: TlsOptions): { info: TlsInfo; error?: ProbeError } {
  const info: TlsInfo = { version: TLS_NAMES[socket.getProtocol() ?? ''] ?? String(socket.getProtocol()) };
  if (socket.alpnProtocol) info.alpn = socket.alpnProtocol;
  const chain = peerChain(socket);
  if (chain.length === 0) return { info, error: new ProbeError('ERR_TLS_CERT', 'TLS: the server sent no certificate') };
  const leaf = chain[0]!;
  info.leaf = {
    subject: leaf.subject.split('\n').join(','),
    issuer: leaf.issuer.split('\n').join(','),
    fingerprint: leaf.fingerprint256.replace(/:/g, '').toLowerCase(),
    dnsNames: (leaf.subjectAltName ?? '')
      .split(', ')
      .filter((n) => n.startsWith('DNS:'))
      .map((n) => n.slice(4)),
    names: leaf.subjectAltName ?? '',
    validFrom: new Date(leaf.validFrom),
    validTo: new Date(leaf.validTo),
  };
  const sent = [...chain];
  const roots = systemRootFingerprints();
  while (sent.length > 1 && selfIssued(sent.at(-1)!) && roots.has(sent.at(-1)!.fingerprint256)) sent.pop();
  const earliest = minExpiry(sent);
  if (earliest) info.earliestExpiry = earliest;
  if (t.insecureSkipVerify) return { info };
  try {
    let path: X509Certificate[];
    if (t.ca) path = verifyAgainst(sent, parsePemCertificates(t.ca));
    else if (!socket.authorized) {
      const code = String(socket.authorizationError ?? 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      throw (
        ((code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') && dateError(chain, Date.now())) ||
        new ProbeError(code, `TLS: ${TLS_CODES[code] ?? code.toLowerCase().replace(/_/g, ' ')} (${code})`)
      );
    } else path = chain;
    const last = minExpiry(path);
    if (last) info.lastChainExpiry = last;
    checkName(leaf, t.serverName);
    return { info };
  } catch (e) {
    return { info, error: e as ProbeError };
  }
}

/** Go checks the subjectAltName only (no fallback to the subject's CN since Go 1.15). */
function checkName(leaf: X509Certificate, serverName: string): void {
  const ok = net.isIP(serverName)
    ? leaf.checkIP(serverName) !== undefined
    : leaf.checkHost(serverName, { subject: 'never', partialWildcards: false }) !== undefined;
  if (ok) return;
  const names = leaf.subjectAltName ?? '';
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(leaf.subject)?.[1];
  throw new ProbeError(
    'ERR_TLS_CERT_ALTNAME_INVALID',
    `TLS: the certificate is not valid for ${serverName}: it covers ${names ? names : 'no subjectAltName at all'}${cn ? ` (CN=${cn}, which Go and Dyce do not read as a name)` : ''} (set tls-server-name, or fix the certificate)`,
  );
}

const TLS_CODES: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the certificate is self-signed and not trusted (set tls-ca)',
  SELF_SIGNED_CERT_IN_CHAIN: 'the certificate chain ends in an untrusted self-signed CA (set tls-ca)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the certificate is signed by an unknown CA (set tls-ca)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the certificate is signed by an unknown CA (set tls-ca)',
  UNABLE_TO_GET_ISSUER_CERT: 'the certificate is signed by an unknown CA (set tls-ca)',
  CERT_REVOKED: 'the certificate is revoked',
  CERT_SIGNATURE_FAILURE: 'the certificate signature is invalid',
};

export function onceEvent<T extends unknown[]>(
  emitter: NodeJS.EventEmitter,
  ok: string,
  signal: AbortSignal,
  errorEvents: string[] = ['error'],
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cleanup = () => {
      emitter.removeListener(ok, onOk);
      for (const e of errorEvents) emitter.removeListener(e, onErr);
      signal.removeEventListener('abort', onAbort);
    };
    const onOk = (...args: unknown[]) => {
      cleanup();
      resolve(args as T);
    };
    const onErr = (e: unknown) => {
      cleanup();
      reject(e ?? new ProbeError('ECONNRESET', 'the connection closed'));
    };
    const onAbort = () => {
      cleanup();
      reject(signal.reason);
    };
    if (signal.aborted) return onAbort();
    emitter.once(ok, onOk);
    for (const e of errorEvents) emitter.once(e, onErr);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Sends CONNECT host:port on a socket to the proxy and waits for its 2xx. */
async function proxyConnect(socket: net.Socket, target: string, proxy: ProxyRoute, signal: AbortSignal): Promise<void> {
  const lines = [`CONNECT ${target} HTTP/1.1`, `Host: ${target}`];
  if (proxy.authorization) lines.push(`Proxy-Authorization: ${proxy.authorization}`);
  for (const [k, v] of proxy.connectHeaders) lines.push(`${k}: ${v}`);
  socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  let buf = Buffer.alloc(0);
  for (;;) {
    const [chunk] = await onceEvent<[Buffer]>(socket, 'data', signal, ['error', 'end']);
    buf = Buffer.concat([buf, chunk]);
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) {
      if (buf.length > 65536) throw new ProbeError('EPROXY', 'the proxy answered CONNECT with an endless header');
      continue;
    }
    socket.pause();
    const rest = buf.subarray(end + 4);
    if (rest.length) socket.unshift(rest);
    const status = /^HTTP\/\d(?:\.\d)? (\d{3})(.*)/.exec(buf.subarray(0, end).toString('latin1'));
    if (!status) throw new ProbeError('EPROXY', 'the proxy did not answer CONNECT with HTTP');
    const code = Number(status[1]);
    if (code < 200 || code > 299)
      throw new ProbeError('EPROXY', `the proxy refused CONNECT ${target}: ${code}${status[2]!.trimEnd()}`);
    return;
  }
}

/** Go's resp.ContentLength: the header when valid, 0 when no body can follow, else -1. */
function contentLength(method: string, status: number, headers: HeaderValues): number {
  if (method !== 'HEAD' && (status === 204 || status === 304 || (status >= 100 && status < 200))) return 0;
  if (headers['transfer-encoding']?.some((v) => /chunked/i.test(v))) return -1;
  const v = headers['content-length']?.[0];
  return v !== undefined && /^\d+$/.test(v.trim()) ? Number(v.trim()) : -1;
}

function decompressor(c: Compression | undefined): zlib.Gunzip | zlib.BrotliDecompress | zlib.InflateRaw | undefined {
  switch (c) {
    case 'gzip':
      return zlib.createGunzip();
    case 'br':
      return zlib.createBrotliDecompress();
    case 'deflate':
      // Go's compress/flate, which blackbox uses, reads raw DEFLATE (no zlib header).
      return zlib.createInflateRaw();
    default:
      return undefined;
  }
}

const HOP_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);

/**
 * Starts TLS on a connected socket with the probe's settings. Verification is left to examinePeer, which does it as
 * Go does (tls-ca alone when given, names from the subjectAltName only) and says what is wrong.
 */
export function startTls(raw: net.Socket, t: TlsOptions, alpn?: string[]): tls.TLSSocket {
  const secure = tls.connect({
    socket: raw,
    ...(net.isIP(t.serverName) ? {} : { servername: t.serverName }),
    ...(alpn ? { ALPNProtocols: alpn } : {}),
    ...(t.cert ? { cert: t.cert } : {}),
    ...(t.key ? { key: t.key } : {}),
    ...(t.passphrase ? { passphrase: t.passphrase } : {}),
    ...(t.minVersion ? { minVersion: t.minVersion } : {}),
    ...(t.maxVersion ? { maxVersion: t.maxVersion } : {}),
    rejectUnauthorized: false,
    checkServerIdentity: () => undefined,
  });
  // Errors reach the caller through the awaited events; a late one must not throw.
  secure.on('error', () => {});
  return secure;
}

/** Performs one request/response on `url` and never throws: failures come back in `error` or `bodyError`. */
export async function exchange(url: URL, opts: ExchangeOptions): Promise<Exchange> {
  const isTls = url.protocol === 'https:';
  const t0 = performance.now();
  let tConnect: number | undefined;
  let tTlsStart: number | undefined;
  let tTls: number | undefined;
  let tFirstByte: number | undefined;
  let tEnd: number | undefined;
  const result: Exchange = {
    connected: false,
    bodyRead: false,
    rawBodyBytes: 0,
    bodyBytes: 0,
    contentLength: -1,
    tls: isTls,
    timings: { dns: 0, connect: 0, tls: 0, processing: 0, transfer: 0 },
    totalMs: 0,
  };
  const sockets: net.Socket[] = [];
  let session: http2.ClientHttp2Session | undefined;
  const port = Number(url.port || (isTls ? 443 : 80));
  const hostPort = net.isIPv6(opts.address) ? `[${opts.address}]:${port}` : `${opts.address}:${port}`;
  try {
    // Connect: to the proxy, or to the address.
    opts.onPhase(opts.proxy ? 'connecting through the proxy' : 'connecting');
    const raw = opts.proxy
      ? net.connect({ host: opts.proxy.host, port: opts.proxy.port })
      : net.connect({ host: opts.address, port });
    sockets.push(raw);
    // Errors reach the caller through the awaited events; a late one (after the listener is gone) must not throw.
    raw.on('error', () => {});
    raw.setNoDelay(true);
    await onceEvent(raw, 'connect', opts.signal);
    result.connected = true;
    if (raw.remoteAddress && !opts.proxy) result.ip = raw.remoteAddress;
    if (opts.proxy) {
      result.ip = opts.address;
      if (isTls) await proxyConnect(raw, hostPort, opts.proxy, opts.signal);
    }
    tConnect = performance.now();

    let socket: net.Socket = raw;
    let useH2 = false;
    if (isTls) {
      opts.onPhase('in the TLS handshake');
      tTlsStart = performance.now();
      const t = opts.tls;
      const secure = startTls(raw, t, opts.http2 ? ['h2', 'http/1.1'] : ['http/1.1']);
      sockets.push(secure);
      await onceEvent(secure, 'secureConnect', opts.signal);
      tTls = performance.now();
      const peer = examinePeer(secure, t);
      result.tlsInfo = peer.info;
      if (peer.error) throw peer.error;
      useH2 = secure.alpnProtocol === 'h2';
      socket = secure;
    }

    opts.onPhase('waiting for the response headers');
    const tReady = performance.now();
    const host = opts.headers.find(([k]) => k.toLowerCase() === 'host')?.[1] ?? url.host;
    const path = `${url.pathname}${url.search}`;
    let status: number;
    let headers: HeaderValues;
    let stream: Readable;
    if (useH2) {
      session = http2.connect(`https://${host}`, { createConnection: () => socket });
      session.on('error', () => {});
      const h: http2.OutgoingHttpHeaders = {
        ':method': opts.method,
        ':path': path || '/',
        ':scheme': 'https',
        ':authority': host,
      };
      for (const [k, v] of opts.headers) {
        const n = k.toLowerCase();
        if (HOP_HEADERS.has(n)) continue;
        const prev = h[n];
        h[n] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [String(prev)]), v];
      }
      const req = session.request(h, { endStream: !opts.body });
      req.on('error', () => {});
      if (opts.body) req.end(opts.body);
      const [rh, , raw] = await onceEvent<[http2.IncomingHttpHeaders, number, string[] | undefined]>(
        req,
        'response',
        opts.signal,
        ['error', 'close'],
      );
      tFirstByte = performance.now();
      status = Number(rh[':status']);
      headers = {};
      if (raw) {
        // One value per header field, as Go keeps them (the headers object joins repeated fields with ", ").
        for (let i = 0; i + 1 < raw.length; i += 2) {
          const k = raw[i]!.toLowerCase();
          if (!k.startsWith(':')) headers[k] = [...(headers[k] ?? []), raw[i + 1]!];
        }
      } else
        for (const [k, v] of Object.entries(rh)) {
          if (k.startsWith(':') || v === undefined) continue;
          headers[k] = Array.isArray(v) ? v : [String(v)];
        }
      result.httpVersion = 'HTTP/2.0';
      stream = req;
    } else {
      const lines: Array<[string, string]> = [['Host', host]];
      for (const [k, v] of opts.headers) if (k.toLowerCase() !== 'host') lines.push([k, v]);
      lines.push(['Connection', 'close']);
      if (opts.body) lines.push(['Content-Length', String(opts.body.length)]);
      if (opts.proxy?.authorization && !isTls) lines.push(['Proxy-Authorization', opts.proxy.authorization]);
      const req = http.request({
        method: opts.method,
        // Through a proxy, a plain http:// request carries the absolute URL.
        path: opts.proxy && !isTls ? `http://${hostPort}${path}` : path || '/',
        headers: lines.flat() as unknown as http.OutgoingHttpHeaders,
        setHost: false,
        // Go reads up to 10 MiB of response headers; Node's default is 16 KiB.
        maxHeaderSize: 10 * 1024 * 1024,
        createConnection: () => socket,
      });
      req.on('error', () => {});
      req.end(opts.body);
      const [res] = await onceEvent<[http.IncomingMessage]>(req, 'response', opts.signal);
      tFirstByte = performance.now();
      status = res.statusCode ?? 0;
      headers = {};
      for (const [k, v] of Object.entries(res.headersDistinct)) if (v) headers[k] = v;
      result.httpVersion = `HTTP/${res.httpVersion}`;
      stream = res;
    }
    result.status = status;
    result.headers = headers;
    result.contentLength = contentLength(opts.method, status, headers);
    result.timings.processing = tFirstByte - tReady;

    if (!opts.wantBody(status, headers)) {
      stream.destroy();
      return result;
    }
    opts.onPhase('reading the body');
    const bodyError = await readBody(stream, opts, result);
    tEnd = performance.now();
    result.bodyRead = true;
    if (bodyError) result.bodyError = bodyError;
    return result;
  } catch (e) {
    result.error = toExchangeError(e, opts.signal, sockets);
    return result;
  } finally {
    const now = performance.now();
    result.timings.connect = tConnect !== undefined ? tConnect - t0 : 0;
    result.timings.tls = tTls !== undefined && tTlsStart !== undefined ? tTls - tTlsStart : 0;
    if (tFirstByte === undefined) result.timings.processing = 0;
    result.timings.transfer = tEnd !== undefined && tFirstByte !== undefined ? tEnd - tFirstByte : 0;
    result.totalMs = now - t0;
    session?.destroy();
    // The TLS socket first, then the TCP one under it: the other order lets OpenSSL read freed memory (Node 20).
    for (const s of sockets.reverse()) s.destroy();
  }
}

/** Reads the body through the decompressor and the size limit; returns why it could not be read whole. */
function readBody(stream: Readable, opts: ExchangeOptions, result: Exchange): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const dec = decompressor(opts.compression);
    const limit = opts.bodySizeLimit;
    let settled = false;
    const finish = (why?: string) => {
      if (settled) return;
      settled = true;
      opts.signal.removeEventListener('abort', onAbort);
      if (opts.keepBody) result.body = Buffer.concat(chunks).toString('utf8');
      resolve(why);
    };
    const onAbort = () => {
      stream.destroy();
      dec?.destroy();
      finish(abortMessage(opts.signal));
    };
    opts.signal.addEventListener('abort', onAbort, { once: true });
    if (opts.signal.aborted) return onAbort();
    const onData = (chunk: Buffer) => {
      if (settled) return;
      let part = chunk;
      if (limit > 0 && result.bodyBytes + part.length > limit) {
        part = part.subarray(0, limit - result.bodyBytes);
        result.bodyBytes += part.length;
        if (opts.keepBody) chunks.push(part);
        stream.destroy();
        dec?.destroy();
        return finish(`the body is larger than body-size-limit (${limit} bytes)`);
      }
      result.bodyBytes += part.length;
      if (opts.keepBody) chunks.push(part);
    };
    stream.on('data', (c: Buffer) => {
      result.rawBodyBytes += c.length;
      if (dec) dec.write(c);
      else onData(c);
    });
    const broken = (e?: Error) =>
      finish(
        opts.signal.aborted
          ? abortMessage(opts.signal)
          : `the connection broke while reading the body${e?.message ? ` (${e.message})` : ''}`,
      );
    stream.on('error', broken);
    stream.on('aborted', () => broken());
    if (dec) {
      dec.on('data', onData);
      dec.on('error', (e) => {
        if (opts.compression === 'gzip' && (result.rawBodyBytes < 10 || /header/i.test(e.message)))
          result.bodyErrorAtStart = true;
        finish(
          `cannot decompress the body as ${opts.compression}${opts.compression === 'deflate' ? ' (raw DEFLATE)' : ''}: ${e.message}${result.rawBodyBytes === 0 ? ' (the body is empty)' : ''}`,
        );
      });
      dec.on('end', () => finish());
      stream.on('end', () => dec.end());
    } else stream.on('end', () => finish());
  });
}

function abortMessage(signal: AbortSignal): string {
  const reason = signal.reason as { message?: string } | undefined;
  return reason?.message ?? 'timed out';
}

export function toExchangeError(e: unknown, signal?: AbortSignal, sockets: net.Socket[] = []): ExchangeError {
  if (signal?.aborted) {
    const reason = signal.reason as { code?: string; message?: string } | undefined;
    return { code: reason?.code ?? 'ETIMEDOUT', message: reason?.message ?? 'timed out' };
  }
  if (e instanceof ProbeError) return { code: e.code, message: e.message };
  const err = e as NodeJS.ErrnoException & { reason?: string; bytesParsed?: number };
  const code = err?.code ?? 'ERROR';
  const received = sockets.reduce((n, s) => n + (s.bytesRead ?? 0), 0);
  if (code.startsWith('HPE_'))
    return { code, message: `the reply is not valid HTTP (${err.reason ?? err.message}: ${code})` };
  if (code.startsWith('ERR_SSL') || /SSL routines|alert/i.test(err?.message ?? ''))
    return { code, message: `TLS handshake failed: ${err.reason ?? err.message}` };
  switch (code) {
    case 'ECONNREFUSED':
      return { code, message: 'connection refused' };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { code, message: `cannot resolve the host name (${code})` };
    case 'ECONNRESET':
      if (err.message === 'socket hang up' && received === 0)
        return { code: 'EEMPTY', message: 'the server closed the connection without replying (empty reply)' };
      return {
        code,
        message:
          err.message === 'socket hang up'
            ? 'the server closed the connection before the response headers ended'
            : 'the connection was reset by the server',
      };
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return { code, message: `the host is unreachable (${code})` };
    default:
      return { code, message: err?.message ?? String(e) };
  }
}
