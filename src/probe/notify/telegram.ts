import { UserError } from '../../util/errors.js';
import type { Secret } from '../../util/secret.js';

export interface TelegramTarget {
  token: Secret;
  chatId: string;
  threadId?: number;
  apiUrl: URL;
}

export interface SendOptions {
  sleep: (ms: number) => Promise<void>;
  /** Flood-control waits honoured before giving up. */
  maxRetries?: number;
  /** The longest retry_after honoured (ms); a longer wait fails instead of stalling the job. */
  maxWaitMs?: number;
  timeoutMs?: number;
  info?: (message: string) => void;
}

/** The JSON body of sendMessage. Pure. */
export function sendMessageBody(target: TelegramTarget, text: string): Record<string, unknown> {
  const body: Record<string, unknown> = {
    chat_id: /^-?\d+$/.test(target.chatId) ? Number(target.chatId) : target.chatId,
    text,
    parse_mode: 'HTML',
    link_preview_options: { is_disabled: true },
  };
  if (target.threadId !== undefined) body.message_thread_id = target.threadId;
  return body;
}

/**
 * Sends a message with the Bot API's sendMessage. A 429 carries `parameters.retry_after` (seconds): wait that
 * long and retry. Errors never show the request URL, because it contains the bot token.
 */
export async function sendTelegram(target: TelegramTarget, text: string, opts: SendOptions): Promise<void> {
  const base = target.apiUrl.href.replace(/\/+$/, '');
  const url = `${base}/bot${target.token.reveal()}/sendMessage`;
  const maxRetries = opts.maxRetries ?? 3;
  const maxWait = opts.maxWaitMs ?? 60_000;
  for (let attempt = 0; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(sendMessageBody(target, text)),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name;
      throw new UserError(`Telegram sendMessage to ${target.apiUrl.host} failed: ${cause}`);
    }
    let json: { ok?: boolean; description?: string; parameters?: { retry_after?: number } } = {};
    try {
      json = (await res.json()) as typeof json;
    } catch {}
    if (res.ok && json.ok !== false) return;
    const retryAfter = json.parameters?.retry_after;
    if (res.status === 429 && typeof retryAfter === 'number' && attempt < maxRetries) {
      const ms = retryAfter * 1000;
      if (ms > maxWait)
        throw new UserError(
          `Telegram flood control asks to wait ${retryAfter}s, longer than ${maxWait / 1000}s: alert not sent`,
        );
      opts.info?.(`Telegram flood control: retrying in ${retryAfter}s`);
      await opts.sleep(ms);
      continue;
    }
    throw new UserError(`Telegram sendMessage failed: ${res.status}${json.description ? ` ${json.description}` : ''}`);
  }
}
