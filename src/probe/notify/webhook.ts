import { UserError } from '../../util/errors.js';
import type { Secret } from '../../util/secret.js';
import type { AlertmanagerPayload } from './message.js';

/**
 * POSTs an Alertmanager-shaped payload. One retry on 429/5xx (honouring Retry-After up to 30s); the URL is a
 * secret and never appears in messages, only its host.
 */
export async function sendWebhook(
  url: Secret,
  payload: AlertmanagerPayload,
  opts: { sleep: (ms: number) => Promise<void>; timeoutMs?: number },
): Promise<void> {
  const host = new URL(url.reveal()).host;
  for (let attempt = 0; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(url.reveal(), {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'dyce-probe' },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name;
      throw new UserError(`webhook to ${host} failed: ${cause}`);
    }
    await res.arrayBuffer().catch(() => undefined);
    if (res.ok) return;
    if ((res.status === 429 || res.status >= 500) && attempt === 0) {
      const after = Number(res.headers.get('retry-after'));
      await opts.sleep(Number.isFinite(after) && after > 0 ? Math.min(after, 30) * 1000 : 1000);
      continue;
    }
    throw new UserError(`webhook to ${host} answered ${res.status}`);
  }
}
