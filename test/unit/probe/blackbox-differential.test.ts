import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import * as zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prometheusText } from '../../../src/probe/report.js';
import {
  type Blackbox,
  blackboxModule,
  haveBlackbox,
  type Inputs,
  type Metrics,
  parseMetrics,
  startBlackbox,
} from './blackbox.js';
import { makePki, type Pki } from './pki.js';
import { probe } from './servers.js';

/**
 * Differential test: every case is probed by the real blackbox_exporter (its /probe endpoint, with a module generated
 * from the same inputs) and by Dyce's prober, against the same local servers; the verdicts (probe_success) and the
 * metrics both report must agree. Documented differences are listed in DIFFERENCES, each with its own test.
 *
 * A case is { name, on, path, inputs }: `on` picks the server, `path` its behaviour (see `handle`), `inputs` are
 * Dyce probe inputs. `$CA`, `$CERT`, `$KEY`, `$PROXY`, `$HTTP`, `$HTTPS` in inputs and paths are replaced with the
 * test's CA file, client certificate, key, proxy URL and server origins. Add a line to add a case.
 */
type Server =
  | 'tcp'
  | 'tcptls'
  | 'tcpclosed'
  | 'http'
  | 'http6'
  | 'https'
  | 'h2'
  | 'expired'
  | 'mtls'
  | 'chain'
  | 'tls12'
  | 'short';

interface Case {
  name: string;
  on: Server;
  path: string;
  inputs?: Inputs;
}

const CA = { 'tls-ca': '$CA' };

const CASES: Case[] = [
  // Status codes
  { name: 'plain 200', on: 'http', path: '/ok' },
  { name: '204 empty body', on: 'http', path: '/status?code=204' },
  { name: '404 under default 2xx', on: 'http', path: '/status?code=404' },
  { name: '404 allowed', on: 'http', path: '/status?code=404', inputs: { 'valid-status-codes': '404' } },
  {
    name: '500 in a range list',
    on: 'http',
    path: '/status?code=500',
    inputs: { 'valid-status-codes': '200-299,500' },
  },
  { name: '302 not followed, 2xx wanted', on: 'http', path: '/redirect?n=1', inputs: { 'follow-redirects': 'false' } },
  {
    name: '302 not followed, 302 allowed',
    on: 'http',
    path: '/redirect?n=1',
    inputs: { 'follow-redirects': 'false', 'valid-status-codes': '302' },
  },
  {
    name: '302 not followed, 302 allowed, body regexp',
    on: 'http',
    path: '/redirect?n=1',
    inputs: { 'follow-redirects': 'false', 'valid-status-codes': '302', 'fail-if-body-matches': 'nothing' },
  },
  // Redirects
  { name: 'redirect chain of 3', on: 'http', path: '/redirect?n=3' },
  { name: 'redirect chain of 10', on: 'http', path: '/redirect?n=10' },
  { name: 'redirect chain of 11', on: 'http', path: '/redirect?n=11' },
  {
    name: 'redirect chain of 11, 302 allowed',
    on: 'http',
    path: '/redirect?n=11',
    inputs: { 'valid-status-codes': '302' },
  },
  {
    name: 'redirect chain of 12, 302 allowed',
    on: 'http',
    path: '/redirect?n=12',
    inputs: { 'valid-status-codes': '200,302' },
  },
  { name: '301 without Location', on: 'http', path: '/status?code=301', inputs: { 'valid-status-codes': '301' } },
  { name: '307 without Location', on: 'http', path: '/status?code=307', inputs: { 'valid-status-codes': '307' } },
  {
    name: '308 redirect keeps PUT',
    on: 'http',
    path: '/redirect?n=1&code=308&to=/echo',
    inputs: { method: 'PUT', body: 'x=1', 'fail-if-body-not-matches': '^method=PUT;body=x=1;' },
  },
  {
    name: '302 turns PUT into GET',
    on: 'http',
    path: '/redirect?n=1&code=302&to=/echo',
    inputs: { method: 'PUT', body: 'x=1', 'fail-if-body-not-matches': '^method=GET;body=;' },
  },
  {
    name: '301 turns POST into GET',
    on: 'http',
    path: '/redirect?n=1&code=301&to=/echo',
    inputs: { method: 'POST', body: 'x=1', 'fail-if-body-not-matches': '^method=GET;' },
  },
  { name: '303 keeps HEAD', on: 'http', path: '/redirect?n=1&code=303&to=/echo', inputs: { method: 'HEAD' } },
  {
    name: '307 keeps DELETE',
    on: 'http',
    path: '/redirect?n=1&code=307&to=/echo',
    inputs: { method: 'DELETE', 'fail-if-body-not-matches': '^method=DELETE;' },
  },
  {
    name: 'redirect http to https',
    on: 'http',
    path: '/redirect?n=1&to=$HTTPS/ok',
    inputs: { ...CA, 'fail-if-not-ssl': 'true' },
  },
  {
    name: 'redirect https to http, fail-if-not-ssl',
    on: 'https',
    path: '/redirect?n=1&to=$HTTP/ok',
    inputs: { ...CA, 'fail-if-not-ssl': 'true' },
  },
  { name: 'redirect to ftp', on: 'http', path: '/redirect?n=1&to=ftp://127.0.0.1/x' },
  // Cookies
  { name: 'login redirect keeps the cookie', on: 'http', path: '/login' },
  { name: 'cookie jar over 2 redirects', on: 'http', path: '/redirect?n=1&to=/login' },
  // Methods and bodies
  {
    name: 'POST body reaches the server',
    on: 'http',
    path: '/echo',
    inputs: { method: 'POST', body: 'a=b', 'fail-if-body-not-matches': 'body=a=b;' },
  },
  { name: 'HEAD', on: 'http', path: '/ok', inputs: { method: 'HEAD' } },
  {
    name: 'request headers Name: value',
    on: 'http',
    path: '/echo',
    inputs: { headers: 'X-Probe: yes please', 'fail-if-body-not-matches': 'xprobe=yes please;' },
  },
  {
    name: 'request headers Name=value',
    on: 'http',
    path: '/echo',
    inputs: { headers: 'X-Probe=yes', 'fail-if-body-not-matches': 'xprobe=yes;' },
  },
  {
    name: 'Host header',
    on: 'http',
    path: '/echo',
    inputs: { headers: 'Host: probe.test', 'fail-if-body-not-matches': 'host=probe.test;' },
  },
  {
    name: 'basic auth accepted',
    on: 'http',
    path: '/auth',
    inputs: { 'basic-auth-username': 'u', 'basic-auth-password': 'p' },
  },
  {
    name: 'basic auth refused',
    on: 'http',
    path: '/auth',
    inputs: { 'basic-auth-username': 'u', 'basic-auth-password': 'wrong' },
  },
  { name: 'bearer token', on: 'http', path: '/auth', inputs: { 'bearer-token': 'tok' } },
  {
    name: 'OAuth2 client credentials',
    on: 'http',
    path: '/auth',
    inputs: { 'token-url': '$HTTP/token', 'client-id': 'probe', 'client-secret': 's3cret', scopes: 'health' },
  },
  {
    name: 'OAuth2 with a wrong secret',
    on: 'http',
    path: '/auth',
    inputs: { 'token-url': '$HTTP/token', 'client-id': 'probe', 'client-secret': 'wrong' },
  },
  // Body regexps, Go's RE2 dialect
  { name: 'body matches', on: 'http', path: '/ok', inputs: { 'fail-if-body-matches': 'hello' } },
  { name: 'body not matches', on: 'http', path: '/ok', inputs: { 'fail-if-body-not-matches': 'goodbye' } },
  { name: '(?i) flag', on: 'http', path: '/ok', inputs: { 'fail-if-body-not-matches': '(?i)HELLO' } },
  { name: '(?m) flag', on: 'http', path: '/body?text=a%0Ab%0A', inputs: { 'fail-if-body-not-matches': '(?m)^b$' } },
  {
    name: 'no (?m): ^ is the text start',
    on: 'http',
    path: '/body?text=a%0Ab%0A',
    inputs: { 'fail-if-body-not-matches': '^b$' },
  },
  {
    name: '\\A anchors the text',
    on: 'http',
    path: '/body?text=xhello',
    inputs: { 'fail-if-body-not-matches': '\\Ahello' },
  },
  {
    name: '\\z anchors the end',
    on: 'http',
    path: '/body?text=hello%0A',
    inputs: { 'fail-if-body-not-matches': 'hello\\z' },
  },
  {
    name: '$ before a final newline (Go: no)',
    on: 'http',
    path: '/body?text=hello%0A',
    inputs: { 'fail-if-body-not-matches': 'hello$' },
  },
  {
    name: '[[:alpha:]] class',
    on: 'http',
    path: '/body?text=123',
    inputs: { 'fail-if-body-not-matches': '[[:alpha:]]' },
  },
  {
    name: '[[:digit:]]+ class',
    on: 'http',
    path: '/body?text=123',
    inputs: { 'fail-if-body-not-matches': '^[[:digit:]]+$' },
  },
  {
    name: '(?s) dot matches newline',
    on: 'http',
    path: '/body?text=a%0Ab',
    inputs: { 'fail-if-body-not-matches': '(?s)a.b' },
  },
  {
    name: 'dot does not match newline',
    on: 'http',
    path: '/body?text=a%0Ab',
    inputs: { 'fail-if-body-not-matches': 'a.b' },
  },
  {
    name: '\\pL unicode class',
    on: 'http',
    path: '/body?text=%C3%A9t%C3%A9',
    inputs: { 'fail-if-body-not-matches': '^\\pL+$' },
  },
  {
    name: 'named group (?P<x>)',
    on: 'http',
    path: '/ok',
    inputs: { 'fail-if-body-not-matches': '(?P<w>hello) world' },
  },
  {
    name: 'JSON status regexp',
    on: 'http',
    path: '/json',
    inputs: { 'fail-if-body-not-matches': '"status":\\s*"UP"' },
  },
  // Headers
  {
    name: 'header matches',
    on: 'http',
    path: '/headers?h=X-A:%20one',
    inputs: { 'fail-if-header-matches': 'X-A: one' },
  },
  {
    name: 'header not matches',
    on: 'http',
    path: '/headers?h=X-A:%20one',
    inputs: { 'fail-if-header-not-matches': 'X-A: two' },
  },
  {
    name: 'header name case-insensitive',
    on: 'http',
    path: '/headers?h=X-A:%20one',
    inputs: { 'fail-if-header-not-matches': 'x-a: ^one$' },
  },
  {
    name: 'repeated header, one value matches (fails)',
    on: 'http',
    path: '/headers?h=X-A:%20one&h=X-A:%20two',
    inputs: { 'fail-if-header-matches': 'X-A: ^two$' },
  },
  {
    name: 'repeated header, one value matches (passes)',
    on: 'http',
    path: '/headers?h=X-A:%20one&h=X-A:%20two',
    inputs: { 'fail-if-header-not-matches': 'X-A: ^two$' },
  },
  {
    name: 'repeated header, joined value does not exist',
    on: 'http',
    path: '/headers?h=X-A:%20one&h=X-A:%20two',
    inputs: { 'fail-if-header-not-matches': 'X-A: one, two' },
  },
  {
    name: 'missing header, matches rule',
    on: 'http',
    path: '/ok',
    inputs: { 'fail-if-header-matches': 'X-Missing: .*' },
  },
  {
    name: 'missing header, matches rule, allowed',
    on: 'http',
    path: '/ok',
    inputs: { 'fail-if-header-matches': 'X-Missing: .*', 'allow-missing-headers': 'X-Missing' },
  },
  {
    name: 'missing header, not-matches rule',
    on: 'http',
    path: '/ok',
    inputs: { 'fail-if-header-not-matches': 'X-Missing: .*' },
  },
  {
    name: 'missing header, not-matches rule, allowed',
    on: 'http',
    path: '/ok',
    inputs: { 'fail-if-header-not-matches': 'X-Missing: .*', 'allow-missing-headers': 'x-missing' },
  },
  {
    name: 'Set-Cookie values',
    on: 'http',
    path: '/headers?h=Set-Cookie:%20a=1&h=Set-Cookie:%20b=2',
    inputs: { 'fail-if-header-not-matches': 'Set-Cookie: ^b=' },
  },
  {
    name: 'header regexp (?i)',
    on: 'http',
    path: '/headers?h=Content-Type:%20TEXT/HTML',
    inputs: { 'fail-if-header-not-matches': 'Content-Type: (?i)text/html' },
  },
  {
    name: 'status fails before header regexp',
    on: 'http',
    path: '/status?code=500',
    inputs: { 'fail-if-header-matches': 'X-Missing: x' },
  },
  // Compression and size
  {
    name: 'gzip decompressed before matching',
    on: 'http',
    path: '/compressed?enc=gzip',
    inputs: { compression: 'gzip', headers: 'Accept-Encoding: gzip', 'fail-if-body-not-matches': 'compressed world' },
  },
  {
    name: 'br decompressed',
    on: 'http',
    path: '/compressed?enc=br',
    inputs: { compression: 'br', headers: 'Accept-Encoding: br', 'fail-if-body-not-matches': 'compressed world' },
  },
  {
    name: 'deflate (raw) decompressed',
    on: 'http',
    path: '/compressed?enc=deflate',
    inputs: {
      compression: 'deflate',
      headers: 'Accept-Encoding: deflate',
      'fail-if-body-not-matches': 'compressed world',
    },
  },
  {
    name: 'deflate with a zlib header',
    on: 'http',
    path: '/compressed?enc=zlib',
    inputs: { compression: 'deflate', headers: 'Accept-Encoding: deflate' },
  },
  {
    name: 'gzip expected, identity sent',
    on: 'http',
    path: '/ok',
    inputs: { compression: 'gzip', headers: 'Accept-Encoding: gzip' },
  },
  {
    name: 'identity',
    on: 'http',
    path: '/ok',
    inputs: { compression: 'identity', 'fail-if-body-not-matches': 'hello' },
  },
  {
    name: 'gzip body without compression: raw bytes',
    on: 'http',
    path: '/compressed?enc=gzip&always=1',
    inputs: { 'fail-if-body-not-matches': 'compressed world' },
  },
  {
    name: 'gzip and empty 204',
    on: 'http',
    path: '/status?code=204',
    inputs: { compression: 'gzip', headers: 'Accept-Encoding: gzip' },
  },
  { name: 'body under the limit', on: 'http', path: '/size?n=1000', inputs: { 'body-size-limit': '1KiB' } },
  { name: 'body at the limit', on: 'http', path: '/size?n=1024', inputs: { 'body-size-limit': '1KiB' } },
  { name: 'body over the limit', on: 'http', path: '/size?n=1025', inputs: { 'body-size-limit': '1KiB' } },
  {
    name: 'chunked body over the limit',
    on: 'http',
    path: '/size?n=600000&chunked=1',
    inputs: { 'body-size-limit': '512KiB' },
  },
  {
    name: 'limit applies after decompression',
    on: 'http',
    path: '/compressed?enc=gzip&n=5000',
    inputs: { compression: 'gzip', headers: 'Accept-Encoding: gzip', 'body-size-limit': '4096' },
  },
  { name: 'large body without limit', on: 'http', path: '/size?n=5000000' },
  // HTTP versions and HTTP/2
  { name: 'HTTP/1.1 valid', on: 'http', path: '/ok', inputs: { 'valid-http-versions': 'HTTP/1.1' } },
  { name: 'HTTP/2.0 wanted over plain http', on: 'http', path: '/ok', inputs: { 'valid-http-versions': 'HTTP/2.0' } },
  { name: 'h2 negotiated', on: 'h2', path: '/ok', inputs: { ...CA, 'valid-http-versions': 'HTTP/2.0' } },
  {
    name: 'h2 disabled',
    on: 'h2',
    path: '/ok',
    inputs: { ...CA, 'enable-http2': 'false', 'valid-http-versions': 'HTTP/2.0' },
  },
  {
    name: 'h2 disabled, 1.1 wanted',
    on: 'h2',
    path: '/ok',
    inputs: { ...CA, 'enable-http2': 'false', 'valid-http-versions': 'HTTP/1.1' },
  },
  {
    name: 'h2 body and headers',
    on: 'h2',
    path: '/headers?h=X-A:%20one',
    inputs: { ...CA, 'fail-if-header-not-matches': 'X-A: one', 'fail-if-body-not-matches': 'headers' },
  },
  {
    name: 'h2 gzip',
    on: 'h2',
    path: '/compressed?enc=gzip',
    inputs: { ...CA, compression: 'gzip', headers: 'Accept-Encoding: gzip', 'fail-if-body-not-matches': 'compressed' },
  },
  { name: 'h2 redirect chain', on: 'h2', path: '/redirect?n=2', inputs: { ...CA } },
  {
    name: 'h2 POST',
    on: 'h2',
    path: '/echo',
    inputs: { ...CA, method: 'POST', body: 'q=1', 'fail-if-body-not-matches': 'method=POST;body=q=1;' },
  },
  { name: 'h2 404', on: 'h2', path: '/status?code=404', inputs: { ...CA } },
  { name: 'h2 Last-Modified', on: 'h2', path: '/lastmod', inputs: { ...CA } },
  {
    name: 'https 1.1 server, HTTP/2.0 wanted',
    on: 'https',
    path: '/ok',
    inputs: { ...CA, 'valid-http-versions': 'HTTP/2.0' },
  },
  // TLS
  { name: 'https with CA', on: 'https', path: '/ok', inputs: { ...CA } },
  { name: 'https without CA', on: 'https', path: '/ok' },
  { name: 'https insecure', on: 'https', path: '/ok', inputs: { 'tls-insecure-skip-verify': 'true' } },
  { name: 'https fail-if-ssl', on: 'https', path: '/ok', inputs: { ...CA, 'fail-if-ssl': 'true' } },
  { name: 'http fail-if-not-ssl', on: 'http', path: '/ok', inputs: { 'fail-if-not-ssl': 'true' } },
  { name: 'server name covered', on: 'https', path: '/ok', inputs: { ...CA, 'tls-server-name': 'probe.test' } },
  { name: 'server name not covered', on: 'https', path: '/ok', inputs: { ...CA, 'tls-server-name': 'other.test' } },
  {
    name: 'server name not covered, insecure',
    on: 'https',
    path: '/ok',
    inputs: { ...CA, 'tls-server-name': 'other.test', 'tls-insecure-skip-verify': 'true' },
  },
  { name: 'expired certificate', on: 'expired', path: '/ok', inputs: { ...CA } },
  { name: 'expired certificate, insecure', on: 'expired', path: '/ok', inputs: { 'tls-insecure-skip-verify': 'true' } },
  { name: 'short-lived certificate expiry metrics', on: 'short', path: '/ok', inputs: { ...CA } },
  { name: 'chain with the CA sent', on: 'chain', path: '/ok', inputs: { ...CA } },
  { name: 'client certificate required, none sent', on: 'mtls', path: '/ok', inputs: { ...CA } },
  {
    name: 'client certificate sent',
    on: 'mtls',
    path: '/ok',
    inputs: { ...CA, 'tls-cert': '$CERT', 'tls-key': '$KEY' },
  },
  { name: 'TLS 1.2 server, min TLS13', on: 'tls12', path: '/ok', inputs: { ...CA, 'tls-min-version': 'TLS13' } },
  { name: 'TLS 1.2 server, min TLS12', on: 'tls12', path: '/ok', inputs: { ...CA, 'tls-min-version': 'TLS12' } },
  // Connection failures and timeouts
  { name: 'empty reply', on: 'http', path: '/empty' },
  { name: 'not HTTP', on: 'http', path: '/garbage' },
  { name: 'headers slower than the timeout', on: 'http', path: '/slow?ms=3000', inputs: { timeout: '1s' } },
  { name: 'body slower than the timeout', on: 'http', path: '/slowbody?ms=3000', inputs: { timeout: '1s' } },
  { name: 'within the timeout', on: 'http', path: '/slow?ms=200', inputs: { timeout: '2s' } },
  { name: 'Last-Modified metric', on: 'http', path: '/lastmod' },
  { name: 'truncated body', on: 'http', path: '/truncated' },
  {
    name: 'truncated body, body regexp',
    on: 'http',
    path: '/truncated',
    inputs: { 'fail-if-body-not-matches': 'part' },
  },
  { name: 'HTTP/1.0 response', on: 'http', path: '/http10', inputs: { 'valid-http-versions': 'HTTP/1.0' } },
  {
    name: '103 Early Hints then 200',
    on: 'http',
    path: '/early-hints',
    inputs: { 'fail-if-body-not-matches': 'after' },
  },
  { name: 'a 20 kB header', on: 'http', path: '/bigheader' },
  { name: 'HEAD content length', on: 'http', path: '/size?n=300', inputs: { method: 'HEAD' } },
  { name: 'Secure cookie not sent over http', on: 'http', path: '/secure-cookie' },
  { name: 'cookie with Domain=IP', on: 'http', path: '/domain-cookie' },
  { name: 'cookie for another path', on: 'http', path: '/path-cookie' },
  { name: 'relative Location', on: 'http', path: '/relative' },
  { name: 'IPv6 literal target', on: 'http6', path: '/ok' },
  {
    name: 'h2 repeated header',
    on: 'h2',
    path: '/headers?h=X-A:%20one&h=X-A:%20two',
    inputs: { ...CA, 'fail-if-header-matches': 'X-A: ^two$' },
  },
  {
    name: 'h2 missing header allowed',
    on: 'h2',
    path: '/ok',
    inputs: { ...CA, 'fail-if-header-not-matches': 'X-B: x', 'allow-missing-headers': 'X-B' },
  },
  { name: 'https HEAD', on: 'https', path: '/ok', inputs: { ...CA, method: 'HEAD' } },
  // IP protocol
  {
    name: 'localhost ip4 preferred',
    on: 'http',
    path: '/ok?host=localhost',
    inputs: { 'preferred-ip-protocol': 'ip4' },
  },
  { name: 'localhost ip6 preferred, fallback', on: 'http', path: '/ok?host=localhost' },
  {
    name: 'localhost ip6 without fallback',
    on: 'http',
    path: '/ok?host=localhost',
    inputs: { 'ip-protocol-fallback': 'false' },
  },
  { name: 'unresolvable name', on: 'http', path: '/ok?host=no-such-host.invalid' },
  // Proxy
  {
    name: 'through a proxy (http)',
    on: 'http',
    path: '/echo',
    inputs: { 'proxy-url': '$PROXY', 'fail-if-body-not-matches': 'via=proxy;' },
  },
  { name: 'through a proxy (https CONNECT)', on: 'https', path: '/ok', inputs: { ...CA, 'proxy-url': '$PROXY' } },
  {
    name: 'through a proxy (h2 over CONNECT)',
    on: 'h2',
    path: '/ok',
    inputs: { ...CA, 'proxy-url': '$PROXY', 'valid-http-versions': 'HTTP/2.0' },
  },
  { name: 'proxy that refuses', on: 'https', path: '/ok', inputs: { ...CA, 'proxy-url': '$PROXY_REFUSE' } },
  // TCP (blackbox's tcp prober; URLs tcp://host:port)
  { name: 'tcp connect', on: 'tcp', path: '' },
  { name: 'tcp connect refused', on: 'tcpclosed', path: '' },
  { name: 'tcp banner expected', on: 'tcp', path: '', inputs: { 'query-response': 'expect: ^220 ' } },
  { name: 'tcp banner not matching', on: 'tcp', path: '', inputs: { 'query-response': 'expect: ^500 ' } },
  {
    name: 'tcp send and expect',
    on: 'tcp',
    path: '',
    inputs: { 'query-response': 'expect: ^220\nsend: PING\nexpect: ^PONG$' },
  },
  { name: 'tcp expect (?i)', on: 'tcp', path: '', inputs: { 'query-response': 'send: PING\nexpect: (?i)^pong' } },
  { name: 'tcp expect after close', on: 'tcp', path: '', inputs: { 'query-response': 'send: QUIT\nexpect: ^never' } },
  { name: 'tcp expect times out', on: 'tcp', path: '', inputs: { 'query-response': 'expect: ^never', timeout: '1s' } },
  {
    name: 'tcp STARTTLS',
    on: 'tcp',
    path: '',
    inputs: {
      ...CA,
      'tls-server-name': 'localhost',
      'query-response': 'expect: ^220\nsend: STARTTLS\nexpect: ^220 go ahead\nstarttls\nsend: PING\nexpect: ^PONG',
    },
  },
  {
    name: 'tcp STARTTLS untrusted',
    on: 'tcp',
    path: '',
    inputs: { 'query-response': 'send: STARTTLS\nexpect: ^220 go ahead\nstarttls' },
  },
  { name: 'tcp TLS', on: 'tcptls', path: '', inputs: { ...CA, tls: 'true', 'query-response': 'expect: ^220' } },
  { name: 'tcp TLS without CA', on: 'tcptls', path: '', inputs: { tls: 'true' } },
  { name: 'tcp TLS insecure', on: 'tcptls', path: '', inputs: { tls: 'true', 'tls-insecure-skip-verify': 'true' } },
  {
    name: 'tcp TLS wrong name',
    on: 'tcptls',
    path: '',
    inputs: { ...CA, tls: 'true', 'tls-server-name': 'other.test' },
  },
  { name: 'tcp localhost ip6 preferred', on: 'tcp', path: '?host=localhost' },
  // Documented differences (see DIFFERENCES): each is checked to differ exactly as documented.
  {
    name: 'basic auth after a redirect to another origin',
    on: 'http',
    path: '/redirect?n=1&to=$HTTPS/auth',
    inputs: { ...CA, 'basic-auth-username': 'u', 'basic-auth-password': 'p' },
  },
  {
    name: 'bearer token after a redirect to another origin',
    on: 'http',
    path: '/redirect?n=1&to=$HTTPS/auth',
    inputs: { ...CA, 'bearer-token': 'tok' },
  },
  {
    name: 'compression without an Accept-Encoding header',
    on: 'http',
    path: '/compressed?enc=gzip',
    inputs: { compression: 'gzip', 'fail-if-body-not-matches': 'compressed world' },
  },
];

/** Metrics compared where both report them. */
const COMPARED = [
  'probe_success',
  'probe_http_status_code',
  'probe_http_version',
  'probe_http_redirects',
  'probe_http_ssl',
  'probe_failed_due_to_regex',
  'probe_http_content_length',
  'probe_http_uncompressed_body_length',
  'probe_http_last_modified_timestamp_seconds',
  'probe_ssl_earliest_cert_expiry',
  'probe_ssl_last_chain_expiry_timestamp_seconds',
  'probe_tls_version_info',
  'probe_ip_protocol',
  'probe_ip_addr_hash',
];

/**
 * Where Dyce differs from blackbox_exporter 0.23 on purpose, with the reason (also written next to the input in the
 * docs). Each has its own test below.
 */
const DIFFERENCES: Record<string, { inputs: string; blackbox: boolean; dyce: boolean }> = {
  'basic auth after a redirect to another origin': { inputs: 'follow-redirects', blackbox: true, dyce: false },
  'bearer token after a redirect to another origin': { inputs: 'follow-redirects', blackbox: true, dyce: false },
  'compression without an Accept-Encoding header': { inputs: 'compression', blackbox: false, dyce: true },
};

let pki: Pki;
let dir: string;
let bb: Blackbox;
const origins: Record<string, string> = {};
const closers: Array<() => void> = [];

function handle(
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString();
    const u = new URL(req.url ?? '/', 'http://x');
    const q = u.searchParams;
    const r = res as http.ServerResponse;
    const text = (status: number, t: string, headers: Record<string, string | string[]> = {}) => {
      r.writeHead(status, { 'content-type': 'text/plain', ...headers });
      r.end(t);
    };
    switch (u.pathname) {
      case '/ok':
        return text(200, 'hello world');
      case '/json':
        return text(200, '{"status": "UP"}', { 'content-type': 'application/json' });
      case '/body':
        return text(200, q.get('text') ?? '');
      case '/status': {
        const code = Number(q.get('code'));
        r.writeHead(code);
        return r.end(code === 204 || code === 304 ? undefined : (q.get('body') ?? `status ${code}`));
      }
      case '/headers': {
        const h: Record<string, string[]> = {};
        for (const line of q.getAll('h')) {
          const i = line.indexOf(':');
          const name = line.slice(0, i).trim();
          h[name] = [...(h[name] ?? []), line.slice(i + 1).trim()];
        }
        r.writeHead(200, h);
        return r.end('headers');
      }
      case '/compressed': {
        const enc = q.get('enc') ?? 'gzip';
        const plain = Buffer.from(q.has('n') ? 'z'.repeat(Number(q.get('n'))) : 'hello compressed world');
        const accept = String(req.headers['accept-encoding'] ?? '');
        const wanted = enc === 'zlib' ? 'deflate' : enc;
        if (!q.has('always') && !accept.includes(wanted)) return text(200, plain.toString());
        const data =
          enc === 'gzip'
            ? zlib.gzipSync(plain)
            : enc === 'br'
              ? zlib.brotliCompressSync(plain)
              : enc === 'deflate'
                ? zlib.deflateRawSync(plain)
                : zlib.deflateSync(plain);
        r.writeHead(200, { 'content-encoding': wanted, 'content-type': 'text/plain' });
        return r.end(data);
      }
      case '/size': {
        const n = Number(q.get('n'));
        if (q.has('chunked')) {
          r.writeHead(200);
          for (let sent = 0; sent < n; sent += 65536) r.write('a'.repeat(Math.min(65536, n - sent)));
          return r.end();
        }
        r.writeHead(200, { 'content-length': String(n) });
        return r.end('a'.repeat(n));
      }
      case '/redirect': {
        const n = Number(q.get('n') ?? 1);
        const code = Number(q.get('code') ?? 302);
        const to = q.get('to') ?? '/ok';
        const next = n > 1 ? `/redirect?n=${n - 1}&code=${code}&to=${encodeURIComponent(to)}` : to;
        r.writeHead(code, { location: next });
        return r.end('moved');
      }
      case '/echo':
        return text(
          200,
          `method=${req.method};body=${body};cookie=${req.headers.cookie ?? ''};host=${req.headers.host ?? req.headers[':authority'] ?? ''};xprobe=${req.headers['x-probe'] ?? ''};via=${req.headers['x-via'] ?? ''};`,
        );
      case '/login':
        r.writeHead(302, { location: '/private', 'set-cookie': 'session=abc; Path=/; HttpOnly' });
        return r.end();
      case '/private':
        return String(req.headers.cookie ?? '').includes('session=abc') ? text(200, 'welcome') : text(403, 'no cookie');
      case '/token': {
        // client_secret_basic or client_secret_post, as Go's oauth2 may use either.
        const basic = `Basic ${Buffer.from('probe:s3cret').toString('base64')}`;
        const ok = req.headers.authorization === basic || /client_secret=s3cret/.test(body);
        if (!ok) return text(401, '{"error":"invalid_client"}', { 'content-type': 'application/json' });
        return text(200, '{"access_token":"tok","token_type":"Bearer","expires_in":60}', {
          'content-type': 'application/json',
        });
      }
      case '/auth': {
        const a = String(req.headers.authorization ?? '');
        const ok = a === `Basic ${Buffer.from('u:p').toString('base64')}` || a === 'Bearer tok';
        return text(ok ? 200 : 401, ok ? 'in' : 'out');
      }
      case '/truncated':
        r.writeHead(200, { 'content-length': '100' });
        r.write('only a part');
        return void setTimeout(() => (req.socket as Socket).destroy(), 50);
      case '/http10':
        (req.socket as Socket).write('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold school');
        return (req.socket as Socket).end();
      case '/early-hints':
        (req.socket as Socket).write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n');
        return text(200, 'after hints');
      case '/bigheader':
        return text(200, 'big', { 'x-big': 'b'.repeat(20000) });
      case '/secure-cookie':
        r.writeHead(302, { location: '/private', 'set-cookie': 'session=abc; Path=/; Secure' });
        return r.end();
      case '/domain-cookie':
        r.writeHead(302, { location: '/private', 'set-cookie': 'session=abc; Path=/; Domain=127.0.0.1' });
        return r.end();
      case '/path-cookie':
        r.writeHead(302, { location: '/private', 'set-cookie': 'session=abc; Path=/elsewhere' });
        return r.end();
      case '/relative':
        r.writeHead(302, { location: 'ok' });
        return r.end();
      case '/lastmod':
        return text(200, 'x', { 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT' });
      case '/empty':
        return (req.socket as Socket).end();
      case '/garbage':
        (req.socket as Socket).write('this is not HTTP at all\r\n\r\n');
        return (req.socket as Socket).end();
      case '/slow':
        return void setTimeout(() => !r.destroyed && text(200, 'slow'), Number(q.get('ms')));
      case '/slowbody':
        r.writeHead(200, { 'content-type': 'text/plain' });
        r.write('start');
        return void setTimeout(() => !r.destroyed && r.end('end'), Number(q.get('ms')));
      default:
        return text(404, 'no such path');
    }
  });
}

async function listen(server: net.Server, name: string, scheme: string): Promise<void> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origins[name] = `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  server.on('tlsClientError', () => {});
  closers.push(() => {
    (server as http.Server).closeAllConnections?.();
    server.close();
  });
}

/** A forward proxy: CONNECT tunnels, and absolute-URI requests forwarded with an `X-Via: proxy` header. */
function proxyServer(refuse: boolean): http.Server {
  const s = http.createServer((req, res) => {
    if (refuse) {
      res.writeHead(403);
      return res.end();
    }
    const u = new URL(req.url ?? '');
    const up = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method: req.method,
        headers: { ...req.headers, 'x-via': 'proxy' },
      },
      (r2) => {
        res.writeHead(r2.statusCode ?? 502, r2.headers);
        r2.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  s.on('connect', (req, socket: Socket, head) => {
    if (refuse) return socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
    const [host, port] = [
      req.url!.slice(0, req.url!.lastIndexOf(':')).replace(/^\[|\]$/g, ''),
      req.url!.slice(req.url!.lastIndexOf(':') + 1),
    ];
    const up = net.connect(Number(port), host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  return s;
}

function fill(text: string): string {
  return text
    .replace(/\$CA/g, pki.caPath)
    .replace(/\$CERT/g, join(pki.dir, 'good.pem'))
    .replace(/\$KEY/g, join(pki.dir, 'good.key'))
    .replace(/\$PROXY_REFUSE/g, origins.proxyRefuse!)
    .replace(/\$PROXY/g, origins.proxy!)
    .replace(/\$HTTPS/g, origins.https!)
    .replace(/\$HTTP/g, origins.http!);
}

function target(c: Case): string {
  const u = new URL(fill(`${origins[c.on]}${c.path}`));
  const host = u.searchParams.get('host');
  if (host) {
    u.searchParams.delete('host');
    u.hostname = host;
  }
  return u.protocol === 'tcp:' ? `tcp://${u.host}` : u.href;
}

/** blackbox's target: host:port for its tcp prober. */
const bbTarget = (c: Case) => target(c).replace(/^tcp:\/\//, '');
const proberOf = (c: Case) => (origins[c.on]!.startsWith('tcp:') ? 'tcp' : 'http');

/** A line server: a 220 banner, PING -> PONG, STARTTLS -> TLS, QUIT -> close. */
function lineServer(tlsAtStart: boolean): net.Server {
  const serve = (sock: net.Socket) => {
    sock.on('error', () => {});
    sock.write('220 hello dyce\r\n');
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === 'PING') sock.write('PONG\r\n');
        else if (line === 'QUIT') sock.end('221 bye\r\n');
        else if (line === 'STARTTLS') {
          sock.removeListener('data', onData);
          sock.write('220 go ahead\r\n', () => {
            const secure = new tls.TLSSocket(sock, { isServer: true, ...pki.good });
            secure.on('error', () => {});
            serveLines(secure);
          });
        }
      }
    };
    sock.on('data', onData);
  };
  const serveLines = (sock: net.Socket) => {
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === 'PING') sock.write('PONG\r\n');
      }
    });
  };
  return tlsAtStart ? tls.createServer({ ...pki.good }, serve) : net.createServer(serve);
}

const moduleName = (c: Case) => `m${CASES.indexOf(c)}`;
const filled = (c: Case): Inputs => Object.fromEntries(Object.entries(c.inputs ?? {}).map(([k, v]) => [k, fill(v)]));

async function dyce(c: Case): Promise<{ metrics: Metrics; reason: string | undefined }> {
  const inputs = filled(c);
  const { run } = await probe({ timeout: '5s', ...inputs, url: target(c) });
  return { metrics: parseMetrics(prometheusText(run.results)), reason: run.results[0]!.reason };
}

function compare(a: Metrics, b: Metrics): string[] {
  const out: string[] = [];
  for (const name of COMPARED) {
    const keys = new Set([...a.keys(), ...b.keys()].filter((k) => k === name || k.startsWith(`${name}{`)));
    for (const k of keys) {
      if (!a.has(k) || !b.has(k)) {
        // probe_tls_version_info's label is its value: present on one side only is a difference.
        if (name === 'probe_tls_version_info')
          out.push(`${k}: blackbox ${a.get(k) ?? 'absent'}, dyce ${b.get(k) ?? 'absent'}`);
        continue;
      }
      if (a.get(k) !== b.get(k)) out.push(`${k}: blackbox ${a.get(k)}, dyce ${b.get(k)}`);
    }
  }
  return out;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dyce-bb-'));
  pki = makePki(dir);
  const key = pki.good.key;
  const cert = pki.good.cert;
  await listen(http.createServer(handle), 'http', 'http');
  const six = http.createServer(handle);
  await new Promise<void>((r) => six.listen(0, '::1', r));
  origins.http6 = `http://[::1]:${(six.address() as AddressInfo).port}`;
  closers.push(() => {
    six.closeAllConnections();
    six.close();
  });
  await listen(https.createServer({ key, cert }, handle), 'https', 'https');
  await listen(
    http2.createSecureServer({ key, cert, allowHTTP1: true }, handle) as unknown as net.Server,
    'h2',
    'https',
  );
  await listen(https.createServer(pki.expired, handle), 'expired', 'https');
  await listen(https.createServer(pki.shortLived, handle), 'short', 'https');
  await listen(https.createServer({ key, cert: cert + pki.ca }, handle), 'chain', 'https');
  await listen(https.createServer({ key, cert, maxVersion: 'TLSv1.2' }, handle), 'tls12', 'https');
  await listen(
    https.createServer({ key, cert, ca: pki.ca, requestCert: true, rejectUnauthorized: true }, handle),
    'mtls',
    'https',
  );
  await listen(lineServer(false), 'tcp', 'tcp');
  await listen(lineServer(true), 'tcptls', 'tcp');
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  origins.tcpclosed = `tcp://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise<void>((r) => closed.close(() => r()));
  await listen(proxyServer(false), 'proxy', 'http');
  await listen(proxyServer(true), 'proxyRefuse', 'http');
  if (!haveBlackbox) return;
  const modules: Record<string, unknown> = {};
  for (const c of CASES) modules[moduleName(c)] = blackboxModule(filled(c), { dir, name: moduleName(c) }, proberOf(c));
  bb = await startBlackbox(dir, modules);
}, 60_000);

afterAll(async () => {
  await bb?.stop();
  for (const c of closers) c();
  rmSync(dir, { recursive: true, force: true });
});

it('has blackbox_exporter to compare with (CI installs prometheus-blackbox-exporter)', () => {
  // Elsewhere the comparison is skipped; in CI a missing exporter is a failure, not a silent skip.
  if (process.env.CI) expect(haveBlackbox).toBe(true);
});

describe.skipIf(!haveBlackbox)('Dyce probe vs blackbox_exporter 0.23, case by case', () => {
  const same = CASES.filter((c) => !(c.name in DIFFERENCES));
  it.each(same.map((c) => [c.name, c] as const))(
    '%s',
    async (_name, c) => {
      const [b, d] = await Promise.all([bb.probe(moduleName(c), bbTarget(c)), dyce(c)]);
      const diffs = compare(b, d.metrics);
      expect(
        diffs,
        `${c.name} (${target(c)}): dyce reason: ${d.reason ?? 'passed'}\nblackbox log: ${bb
          .log()
          .split('\n')
          .filter((l) => l.includes(`module=${moduleName(c)} `))
          .slice(-6)
          .join('\n')}`,
      ).toEqual([]);
    },
    20_000,
  );
});

describe.skipIf(!haveBlackbox)('documented differences from blackbox_exporter 0.23', () => {
  it.each(Object.entries(DIFFERENCES))(
    '%s (documented at the input)',
    async (name, d) => {
      const c = CASES.find((x) => x.name === name)!;
      const [b, y] = await Promise.all([bb.probe(moduleName(c), bbTarget(c)), dyce(c)]);
      expect({ blackbox: b.get('probe_success'), dyce: y.metrics.get('probe_success') }).toEqual({
        blackbox: d.blackbox ? 1 : 0,
        dyce: d.dyce ? 1 : 0,
      });
    },
    20_000,
  );

  it('every documented difference is written next to its input in action.yml', () => {
    const yml = readFileSync(join(import.meta.dirname, '../../../actions/probe/action.yml'), 'utf8');
    expect(yml).toContain('blackbox_exporter keeps sending basic auth, bearer and OAuth2 credentials there');
    expect(yml).toContain('blackbox_exporter 0.23 sends none');
  });
});
