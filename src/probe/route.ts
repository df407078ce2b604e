import { lookup } from 'node:dns/promises';
import { BlockList, isIP, isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ProxySpec } from './config.js';
import type { ProxyRoute } from './http.js';

/**
 * Where a request goes: the address the name resolves to (blackbox_exporter's chooseProtocol: the preferred IP
 * protocol first, the other one only with ip-protocol-fallback) and the proxy, if any. Reads DNS and the environment.
 */
export interface Resolved {
  address: string;
  family: 4 | 6;
  ms: number;
}

export class ResolveError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly ms: number,
  ) {
    super(message);
  }
}

export async function resolveHost(hostname: string, preferred: 'ip4' | 'ip6', fallback: boolean): Promise<Resolved> {
  const host = hostname.replace(/^\[|\]$/g, '');
  const literal = isIP(host);
  if (literal) return { address: host, family: literal as 4 | 6, ms: 0 };
  const t0 = performance.now();
  let all: Array<{ address: string; family: number }>;
  try {
    all = await lookup(host, { all: true, verbatim: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'ENOTFOUND';
    throw new ResolveError(code, `cannot resolve ${host} (${code})`, performance.now() - t0);
  }
  const ms = performance.now() - t0;
  const want = preferred === 'ip6' ? 6 : 4;
  const pick = all.find((a) => a.family === want) ?? (fallback ? all[0] : undefined);
  if (!pick)
    throw new ResolveError(
      'ENOTFOUND',
      `${host} has no ${preferred === 'ip6' ? 'IPv6' : 'IPv4'} address (it has ${all.map((a) => a.address).join(', ') || 'none'}; ip-protocol-fallback is false)`,
      ms,
    );
  return { address: pick.address, family: pick.family as 4 | 6, ms };
}

function ipv6Bytes(address: string): number[] {
  let s = address;
  let v4: number[] | undefined;
  const last = s.slice(s.lastIndexOf(':') + 1);
  if (last.includes('.')) {
    v4 = last.split('.').map(Number);
    s = `${s.slice(0, s.lastIndexOf(':') + 1)}0:0`;
  }
  const double = s.indexOf('::');
  const h = (double >= 0 ? s.slice(0, double) : s).split(':').filter((g) => g !== '');
  const t =
    double >= 0
      ? s
          .slice(double + 2)
          .split(':')
          .filter((g) => g !== '')
      : [];
  const groups = double >= 0 ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  const bytes = groups.flatMap((g) => [(Number.parseInt(g, 16) >> 8) & 255, Number.parseInt(g, 16) & 255]);
  if (v4) bytes.splice(12, 4, ...v4);
  return bytes;
}

/** Go's hash of the address for probe_ip_addr_hash: FNV-1a 32 of the 4 or 16 bytes. */
export function ipHash(address: string): number {
  let bytes = isIPv6(address) ? ipv6Bytes(address) : address.split('.').map(Number);
  // An IPv4-mapped address is hashed as its 4 bytes, as Go's To4() does.
  if (bytes.length === 16 && bytes.slice(0, 12).join(',') === '0,0,0,0,0,0,0,0,0,0,255,255') bytes = bytes.slice(12);
  let h = 0x811c9dc5;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function matchesNoProxy(url: URL, noProxy: readonly string[]): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = url.port;
  for (const raw of noProxy) {
    let entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    if (entry.includes('/')) {
      const [net, bits] = entry.split('/');
      const family = isIP(net!);
      const hostFamily = isIP(host);
      if (family && hostFamily === family) {
        const list = new BlockList();
        list.addSubnet(net!, Number(bits), family === 6 ? 'ipv6' : 'ipv4');
        if (list.check(host, family === 6 ? 'ipv6' : 'ipv4')) return true;
      }
      continue;
    }
    let entryPort = '';
    const m = /^(.*):(\d+)$/.exec(entry);
    if (m && !isIPv6(entry)) {
      entry = m[1]!;
      entryPort = m[2]!;
    }
    if (entryPort && entryPort !== port) continue;
    entry = entry.replace(/^\[|\]$/g, '');
    if (entry.startsWith('*.')) entry = entry.slice(1);
    if (host === entry || (entry.startsWith('.') ? host.endsWith(entry) : host.endsWith(`.${entry}`))) return true;
  }
  return false;
}

/** The proxy for `url`: proxy-url unless no-proxy names the host, or the environment's as Go reads it. */
export function proxyFor(url: URL, spec: ProxySpec, env: NodeJS.ProcessEnv): ProxyRoute | undefined {
  let proxy = spec.url;
  let noProxy = spec.noProxy;
  if (!proxy && spec.fromEnvironment) {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    // Go's httpproxy: never for localhost or a loopback address.
    if (host === 'localhost' || host.startsWith('127.') || host === '::1') return undefined;
    const pick = (n: string) => env[n] ?? env[n.toLowerCase()];
    const text = url.protocol === 'https:' ? pick('HTTPS_PROXY') : pick('HTTP_PROXY');
    if (!text) return undefined;
    try {
      proxy = new URL(text.includes('://') ? text : `http://${text}`);
    } catch {
      return undefined;
    }
    noProxy = [...noProxy, ...(pick('NO_PROXY') ?? '').split(',')];
  }
  if (!proxy || matchesNoProxy(url, noProxy)) return undefined;
  const route: ProxyRoute = {
    host: proxy.hostname.replace(/^\[|\]$/g, ''),
    port: Number(proxy.port || 80),
    connectHeaders: spec.connectHeaders,
  };
  if (proxy.username || proxy.password)
    route.authorization = `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}`;
  return route;
}
