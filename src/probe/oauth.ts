import type { Reporter } from '../github/reporter.js';
import { UserError } from '../util/errors.js';
import type { Secret } from '../util/secret.js';
import { exchange, type TlsOptions } from './http.js';
import { resolveHost } from './route.js';

export interface ClientCredentials {
  tokenUrl: URL;
  clientId: string;
  clientSecret: Secret;
  scopes: string[];
}

/** Refresh this long before the token's announced expiry, so a token never expires mid-request. */
const EARLY_MS = 30_000;

/**
 * OAuth2 client credentials (RFC 6749 §4.4): fetches an access token, caches it for its lifetime and shares one
 * fetch between concurrent callers. Every token is registered as a secret before it is used.
 * Not a module-level cache: one TokenSource per probe run.
 */
export class TokenSource {
  #token: { value: string; expiresAt: number } | undefined;
  #pending: Promise<string> | undefined;
  /** How many tokens were fetched (tests check the reuse). */
  fetches = 0;

  constructor(
    private readonly creds: ClientCredentials,
    private readonly reporter: Reporter,
    private readonly net: {
      tls: Omit<TlsOptions, 'serverName'>;
      preferredIpProtocol: 'ip4' | 'ip6';
      ipProtocolFallback: boolean;
      timeoutMs: number;
    },
    private readonly now: () => number = Date.now,
  ) {}

  async token(): Promise<string> {
    if (this.#token && this.now() < this.#token.expiresAt) return this.#token.value;
    this.#pending ??= this.#fetch().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  /** Drops the cached token (after a 401, the next attempt fetches a new one). */
  invalidate(): void {
    this.#token = undefined;
  }

  async #fetch(): Promise<string> {
    const { tokenUrl, clientId, clientSecret, scopes } = this.creds;
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (scopes.length) form.set('scope', scopes.join(' '));
    // client_secret_basic: the form-encoded id and secret in the Authorization header (RFC 6749 §2.3.1).
    const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret.reveal())}`).toString(
      'base64',
    );
    this.reporter.secret(basic);
    const signal = AbortSignal.timeout(this.net.timeoutMs);
    this.fetches++;
    const where = `OAuth2 token endpoint ${tokenUrl.origin}${tokenUrl.pathname}`;
    let address: string;
    try {
      address = (await resolveHost(tokenUrl.hostname, this.net.preferredIpProtocol, this.net.ipProtocolFallback))
        .address;
    } catch (e) {
      throw new UserError(`${where}: ${(e as Error).message}`);
    }
    const res = await exchange(tokenUrl, {
      method: 'POST',
      headers: [
        ['Content-Type', 'application/x-www-form-urlencoded'],
        ['Accept', 'application/json'],
        ['Authorization', `Basic ${basic}`],
        ['User-Agent', 'Dyce probe'],
      ],
      body: Buffer.from(form.toString()),
      address,
      tls: { ...this.net.tls, serverName: tokenUrl.hostname },
      http2: true,
      signal,
      bodySizeLimit: 1024 * 1024,
      keepBody: true,
      wantBody: () => true,
      onPhase: () => {},
    });
    if (res.error) throw new UserError(`${where}: ${res.error.message}`);
    if (res.bodyError) throw new UserError(`${where}: ${res.bodyError}`);
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(res.body ?? '') as Record<string, unknown>;
    } catch {}
    if (typeof json.access_token === 'string' && json.access_token !== '') this.reporter.secret(json.access_token);
    if (res.status !== 200) {
      const why =
        typeof json.error === 'string'
          ? `: ${json.error}${typeof json.error_description === 'string' ? ` (${json.error_description})` : ''}`
          : '';
      throw new UserError(`${where} answered ${res.status}${why}`);
    }
    if (typeof json.access_token !== 'string' || json.access_token === '')
      throw new UserError(`${where}: the answer has no access_token`);
    const type = typeof json.token_type === 'string' ? json.token_type.toLowerCase() : 'bearer';
    if (type !== 'bearer') throw new UserError(`${where}: token_type ${JSON.stringify(json.token_type)} is not Bearer`);
    const lifetime = typeof json.expires_in === 'number' ? json.expires_in * 1000 : Number(json.expires_in) * 1000;
    // Without expires_in, keep the token for the run (5 minutes at most).
    const ms = Number.isFinite(lifetime) && lifetime > 0 ? lifetime : 300_000;
    this.#token = { value: json.access_token, expiresAt: this.now() + Math.max(ms - EARLY_MS, ms / 2) };
    return json.access_token;
  }
}
