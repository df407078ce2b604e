import { afterAll, describe, expect, it } from 'vitest';
import { RecordingReporter } from '../../../src/github/reporter.js';
import { TokenSource } from '../../../src/probe/oauth.js';
import { Secret } from '../../../src/util/secret.js';
import { json, probe, type Seen, serve, type TestServer } from './servers.js';

const servers: TestServer[] = [];
const track = async (s: Promise<TestServer>) => {
  const server = await s;
  servers.push(server);
  return server;
};
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

describe('OAuth2 client credentials', () => {
  it('fetches a token once, reuses it across attempts and URLs, and never shows it', async () => {
    let issued = 0;
    const idp = await track(
      serve((q, res) => {
        const form = new URLSearchParams(q.body);
        const basic = Buffer.from('probe-client:planted-client-secret').toString('base64');
        if (q.url !== '/token' || q.method !== 'POST' || form.get('grant_type') !== 'client_credentials')
          return json(res, 400, { error: 'invalid_request' });
        if (q.headers.authorization !== `Basic ${basic}`) return json(res, 401, { error: 'invalid_client' });
        issued++;
        json(res, 200, {
          access_token: `planted-access-token-${issued}`,
          token_type: 'Bearer',
          expires_in: 300,
          scope: form.get('scope'),
        });
      }),
    );
    let calls = 0;
    const api = await track(
      serve((q, res) => {
        calls++;
        if (q.headers.authorization !== 'Bearer planted-access-token-1') return json(res, 401, {});
        // Echo the header back: a failing condition would print it, so the search below can find a leak.
        json(res, calls <= 2 ? 503 : 200, { echo: q.headers.authorization });
      }),
    );
    const { run, reporter, text } = await probe({
      url: `${api.origin}/a\n${api.origin}/b`,
      'token-url': `${idp.origin}/token`,
      'client-id': 'probe-client',
      'client-secret': 'planted-client-secret',
      scopes: 'health.read, metrics.read',
      attempts: '4',
      interval: '10ms',
      conditions: '[BODY].echo == pat(Bearer *)',
    });
    expect(run.success).toBe(true);
    expect(issued).toBe(1);
    expect(run.tokenFetches).toBe(1);
    expect(new URLSearchParams(idp.seen[0]!.body).get('scope')).toBe('health.read metrics.read');
    expect(calls).toBeGreaterThanOrEqual(4);
    // Registered as secrets (the runner masks them) before use...
    expect(reporter.secrets).toContain('planted-access-token-1');
    expect(reporter.secrets).toContain('planted-client-secret');
    // ...and the resolved condition shows the echoed token, which is what masking is for: the outputs would carry
    // it only through this echo, so check the search finds it there and nowhere else.
    expect(text).toContain('planted-access-token-1');
    const withoutEcho = text.replace(/\[BODY\]\.echo \(Bearer planted-access-token-1\)/g, '');
    expect(withoutEcho).not.toContain('planted-access-token');
    expect(text).not.toContain('planted-client-secret');
  });

  it('keeps a token for its lifetime, then fetches a new one', async () => {
    let issued = 0;
    const idp = await track(serve((_q, res) => json(res, 200, { access_token: `tok-${++issued}`, expires_in: 120 })));
    let now = 1_000_000;
    const tokens = new TokenSource(
      { tokenUrl: new URL(`${idp.origin}/token`), clientId: 'c', clientSecret: new Secret('s'), scopes: [] },
      new RecordingReporter(),
      { tls: {}, preferredIpProtocol: 'ip6', ipProtocolFallback: true, timeoutMs: 5000 },
      () => now,
    );
    const [a, b] = await Promise.all([tokens.token(), tokens.token()]);
    expect([a, b]).toEqual(['tok-1', 'tok-1']);
    now += 60_000;
    expect(await tokens.token()).toBe('tok-1');
    // 120s lifetime, refreshed 30s early.
    now += 31_000;
    expect(await tokens.token()).toBe('tok-2');
    expect(tokens.fetches).toBe(2);
  });

  it('fails with the token endpoint’s error, without the secret', async () => {
    const idp = await track(
      serve((_q, res) => json(res, 401, { error: 'invalid_client', error_description: 'bad secret' })),
    );
    const api = await track(serve((_q, res) => json(res, 200, {})));
    const { run, text } = await probe({
      url: api.origin,
      'token-url': `${idp.origin}/token`,
      'client-id': 'c',
      'client-secret': 'planted-wrong-secret',
    });
    expect(run.success).toBe(false);
    expect(run.results[0]!.reason).toContain('answered 401: invalid_client (bad secret)');
    expect(api.seen).toHaveLength(0);
    expect(text).not.toContain('planted-wrong-secret');
  });
});

/** A local stand-in for the Telegram Bot API: records sendMessage calls, answers 429 first when asked. */
async function telegram(opts: { floodFirst?: boolean } = {}) {
  const calls: Array<Seen & { json: Record<string, unknown> }> = [];
  let flooded = false;
  const s = await track(
    serve((q, res) => {
      const m = /^\/bot([^/]+)\/sendMessage$/.exec(q.url);
      if (!m || q.method !== 'POST') return json(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
      if (m[1] !== '123456:planted-bot-token')
        return json(res, 401, { ok: false, error_code: 401, description: 'Unauthorized' });
      calls.push({ ...q, json: JSON.parse(q.body) });
      if (opts.floodFirst && !flooded) {
        flooded = true;
        return json(res, 429, {
          ok: false,
          error_code: 429,
          description: 'Too Many Requests: retry after 1',
          parameters: { retry_after: 1 },
        });
      }
      json(res, 200, { ok: true, result: { message_id: calls.length } });
    }),
  );
  return { server: s, calls };
}

describe('alerts', () => {
  it('sends a Telegram alert on failure: chat, thread, escaped HTML, and a retry after 429', async () => {
    const tg = await telegram({ floodFirst: true });
    const app = await track(
      serve((_q, res) => {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<h1>Tom & Jerry</h1>');
      }),
    );
    const url = `${app.origin}/api/?a=1&b=2`;
    const started = Date.now();
    const { run, reporter, text } = await probe({
      url,
      'telegram-bot-token': '123456:planted-bot-token',
      'telegram-chat-id': '-1001234567890',
      'telegram-thread-id': '42',
      'telegram-api-url': `${tg.server.origin}/`,
      conditions: '[BODY] == ok',
    });
    expect(run.success).toBe(false);
    expect(tg.calls).toHaveLength(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    const body = tg.calls[1]!.json;
    expect(body).toMatchObject({ chat_id: -1001234567890, message_thread_id: 42, parse_mode: 'HTML' });
    const msg = String(body.text);
    expect(msg).toContain('<b>Probe failed</b>');
    expect(msg).toContain(`<b>${app.origin}/api/?a=1&amp;b=2</b>`);
    expect(msg).toContain('[BODY] (&lt;h1&gt;Tom &amp; Jerry&lt;/h1&gt;) == ok');
    expect(msg).not.toContain('<h1>');
    expect(reporter.lines).toContain('Telegram flood control: retrying in 1s');
    expect(reporter.secrets).toContain('123456:planted-bot-token');
    expect(text).not.toContain('planted-bot-token');
  });

  it('does not alert on success, alerts on recovery only when asked', async () => {
    const tg = await telegram();
    let n = 0;
    const flaky = await track(serve((_q, res) => json(res, ++n === 1 ? 502 : 200, {})));
    const common = {
      'telegram-bot-token': '123456:planted-bot-token',
      'telegram-chat-id': '@dyce_alerts',
      'telegram-api-url': tg.server.origin,
      attempts: '3',
      interval: '10ms',
    };
    const quiet = await probe({ url: flaky.origin, ...common });
    expect(quiet.run.success).toBe(true);
    expect(tg.calls).toHaveLength(0);
    n = 0;
    const rec = await probe({ url: flaky.origin, ...common, 'alert-on': 'failure,recovery' });
    expect(rec.run.success).toBe(true);
    expect(tg.calls).toHaveLength(1);
    expect(tg.calls[0]!.json).toMatchObject({ chat_id: '@dyce_alerts' });
    expect(tg.calls[0]!.json).not.toHaveProperty('message_thread_id');
    expect(String(tg.calls[0]!.json.text)).toContain('Probe recovered');
  });

  it('a failed alert is a warning and keeps the probe verdict', async () => {
    const tg = await telegram();
    const ok = await track(serve((_q, res) => json(res, 500, {})));
    const { run, reporter } = await probe({
      url: ok.origin,
      'telegram-bot-token': '999:wrong-token',
      'telegram-chat-id': '1',
      'telegram-api-url': tg.server.origin,
    });
    expect(run.success).toBe(false);
    expect(
      reporter.lines.some((l) =>
        l.startsWith('warning: Telegram alert not sent: Telegram sendMessage failed: 401 Unauthorized'),
      ),
    ).toBe(true);
    expect(reporter.lines.join('\n')).not.toContain('wrong-token');
  });

  it('posts an Alertmanager-shaped webhook payload: firing, then resolved', async () => {
    const hook = await track(serve((_q, res) => json(res, 200, {})));
    const bad = await track(serve((_q, res) => json(res, 503, {})));
    const fine = await track(serve((_q, res) => json(res, 200, {})));
    const env = { GITHUB_SERVER_URL: 'https://github.com', GITHUB_REPOSITORY: 'o/r', GITHUB_RUN_ID: '7' };
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      const { run } = await probe({
        url: `${bad.origin}/x, ${fine.origin}/y`,
        'webhook-url': `${hook.origin}/hook?token=planted`,
      });
      expect(run.success).toBe(false);
    } finally {
      process.env = saved;
    }
    expect(hook.seen).toHaveLength(1);
    expect(hook.seen[0]!.url).toBe('/hook?token=planted');
    expect(hook.seen[0]!.headers['content-type']).toBe('application/json');
    const p = JSON.parse(hook.seen[0]!.body);
    expect(p).toMatchObject({
      version: '4',
      status: 'firing',
      receiver: 'dyce-probe',
      groupLabels: { alertname: 'DyceProbeFailed' },
      commonLabels: { alertname: 'DyceProbeFailed', instance: `${bad.origin}/x`, job: 'dyce-probe' },
      truncatedAlerts: 0,
    });
    expect(p.alerts).toHaveLength(1);
    expect(p.alerts[0]).toMatchObject({
      status: 'firing',
      labels: { alertname: 'DyceProbeFailed', instance: `${bad.origin}/x` },
      endsAt: '0001-01-01T00:00:00Z',
    });
    expect(p.alerts[0].annotations.description).toContain('status 503 is not in 200-299');
    expect(p.alerts[0].fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(Date.parse(p.alerts[0].startsAt)).not.toBeNaN();

    let n = 0;
    const flaky = await track(serve((_q, res) => json(res, ++n === 1 ? 503 : 200, {})));
    await probe({
      url: flaky.origin,
      'webhook-url': `${hook.origin}/hook`,
      'alert-on': 'failure,recovery',
      attempts: '2',
      interval: '10ms',
    });
    expect(hook.seen).toHaveLength(2);
    const r = JSON.parse(hook.seen[1]!.body);
    expect(r.status).toBe('resolved');
    expect(r.alerts[0]).toMatchObject({ status: 'resolved', labels: { instance: flaky.origin + '/' } });
    expect(r.alerts[0].endsAt).not.toBe('0001-01-01T00:00:00Z');
  });
});
