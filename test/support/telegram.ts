import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for the Telegram Bot API (the one external service the alert chain talks to): an HTTP server at a
 * base URL given to Alertmanager as `api_url`. It answers `POST /bot<token>/<method>` as Telegram does
 * (`{"ok":true,"result":…}`, a Message for sendMessage) and records every request. The token is kept only to
 * compare (`tokens`), never printed.
 */

export interface TelegramRequest {
  method: string;
  /** The Bot API method, e.g. sendMessage. */
  apiMethod: string;
  token: string;
  /** The request's parameters (JSON or form body). */
  params: Record<string, unknown>;
  at: number;
}

export interface TelegramStandIn {
  /** The base URL to give as api_url, e.g. http://172.17.0.1:41234 */
  url: string;
  port: number;
  readonly requests: readonly TelegramRequest[];
  /** The texts of sendMessage requests, in order. */
  messages(): string[];
  /** Resolves with the first sendMessage received at or after SINCE (ms) whose text matches, or rejects after timeoutMs. */
  waitForMessage(match: RegExp, timeoutMs: number, since?: number): Promise<TelegramRequest>;
  close(): Promise<void>;
}

function parseBody(body: string, type: string | undefined): Record<string, unknown> {
  if (!body) return {};
  if (type?.includes('json')) return JSON.parse(body) as Record<string, unknown>;
  return Object.fromEntries(new URLSearchParams(body));
}

/** Starts the stand-in on HOST (an address the monitoring host can reach) and a free port. */
export async function startTelegramStandIn(host: string, publicHost = host): Promise<TelegramStandIn> {
  const requests: TelegramRequest[] = [];
  let nextId = 1;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const m = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
      const reply = (status: number, body: unknown) => {
        const text = JSON.stringify(body);
        res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
        res.end(text);
      };
      if (!m) return reply(404, { ok: false, error_code: 404, description: 'Not Found' });
      let params: Record<string, unknown>;
      try {
        params = parseBody(Buffer.concat(chunks).toString('utf8'), req.headers['content-type']);
      } catch {
        return reply(400, { ok: false, error_code: 400, description: 'Bad Request: invalid JSON' });
      }
      requests.push({ method: req.method ?? '', apiMethod: m[2]!, token: m[1]!, params, at: Date.now() });
      if (m[2] === 'getMe')
        return reply(200, {
          ok: true,
          result: { id: 1, is_bot: true, first_name: 'standin', username: 'standin_bot' },
        });
      if (m[2] === 'sendMessage') {
        const chatId = Number(params.chat_id);
        return reply(200, {
          ok: true,
          result: {
            message_id: nextId++,
            date: Math.floor(Date.now() / 1000),
            chat: { id: chatId, type: 'group', title: 'alerts' },
            text: String(params.text ?? ''),
          },
        });
      }
      return reply(200, { ok: true, result: true });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  const messages = () => requests.filter((r) => r.apiMethod === 'sendMessage').map((r) => String(r.params.text ?? ''));
  return {
    url: `http://${publicHost}:${port}`,
    port,
    requests,
    messages,
    waitForMessage(match, timeoutMs, since = 0) {
      const deadline = Date.now() + timeoutMs;
      return new Promise((resolve, reject) => {
        const tick = () => {
          const hit = requests.find(
            (r) => r.at >= since && r.apiMethod === 'sendMessage' && match.test(String(r.params.text ?? '')),
          );
          if (hit) return resolve(hit);
          if (Date.now() > deadline)
            return reject(
              new Error(`no Telegram message matching ${match} in ${timeoutMs} ms; got: ${JSON.stringify(messages())}`),
            );
          setTimeout(tick, 500);
        };
        tick();
      });
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
