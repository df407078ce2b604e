import { createHash } from 'node:crypto';
import type { UrlResult } from '../prober.js';

export type AlertKind = 'failure' | 'recovery';

/** Where the probe ran, for links in alerts (the Actions run when there is one). */
export interface AlertContext {
  runUrl?: string;
  repository?: string;
  startedAt: Date;
  now: Date;
}

export function alertContextFromEnv(env: NodeJS.ProcessEnv, startedAt: Date, now: Date): AlertContext {
  const ctx: AlertContext = { startedAt, now };
  if (env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY && env.GITHUB_RUN_ID)
    ctx.runUrl = `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`;
  if (env.GITHUB_REPOSITORY) ctx.repository = env.GITHUB_REPOSITORY;
  return ctx;
}

/** Decides whether to alert. Recovery: every URL passed, but some only after failed attempts. Pure. */
export function alertKind(
  results: readonly UrlResult[],
  on: { onFailure: boolean; onRecovery: boolean },
): AlertKind | undefined {
  if (results.some((r) => !r.success)) return on.onFailure ? 'failure' : undefined;
  if (on.onRecovery && results.some((r) => r.failedAttempts > 0)) return 'recovery';
  return undefined;
}

/** Escapes text for Telegram's HTML parse mode (the only entities it requires are &, < and >; " for attributes). */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const TELEGRAM_MAX = 4096;

/** The Telegram message, in HTML parse mode. Pure. */
export function telegramText(kind: AlertKind, results: readonly UrlResult[], ctx: AlertContext): string {
  const failed = results.filter((r) => !r.success);
  const lines: string[] = [];
  const where = ctx.repository ? ` (${escapeHtml(ctx.repository)})` : '';
  if (kind === 'failure') {
    lines.push(
      `🔴 <b>Probe failed</b>${where}: ${failed.length} of ${results.length} URL${results.length === 1 ? '' : 's'}`,
    );
    for (const r of failed) {
      const status = r.last.status !== undefined ? ` → ${r.last.status}` : '';
      lines.push('', `<b>${escapeHtml(r.url)}</b>${status}`, escapeHtml(r.reason ?? 'failed'));
      lines.push(`after ${r.attempts} attempt${r.attempts === 1 ? '' : 's'}`);
    }
  } else {
    const flaky = results.filter((r) => r.failedAttempts > 0);
    lines.push(`🟢 <b>Probe recovered</b>${where}: every URL passes`);
    for (const r of flaky)
      lines.push(
        '',
        `<b>${escapeHtml(r.url)}</b> → ${r.last.status}`,
        `after ${r.failedAttempts} failed attempt${r.failedAttempts === 1 ? '' : 's'}`,
      );
  }
  if (ctx.runUrl) lines.push('', `<a href="${escapeHtml(ctx.runUrl)}">workflow run</a>`);
  let text = lines.join('\n');
  // Cut on a line boundary so that no tag or entity is split.
  while (text.length > TELEGRAM_MAX && lines.length > 2) {
    lines.splice(lines.length - 2, 1);
    text = `${lines.join('\n')}\n…`;
  }
  return text;
}

export interface AlertmanagerAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
}

export interface AlertmanagerPayload {
  version: '4';
  groupKey: string;
  truncatedAlerts: number;
  status: 'firing' | 'resolved';
  receiver: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  alerts: AlertmanagerAlert[];
}

const ALERT_NAME = 'DyceProbeFailed';
/** Alertmanager's "zero" time, used for endsAt of a firing alert. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

/**
 * The webhook payload, shaped like Alertmanager's webhook (version 4), so receivers written for Alertmanager
 * (and the Melton Telegram bridge) work unchanged. One alert per failed URL; recovery resolves them. Pure.
 */
export function alertmanagerPayload(
  kind: AlertKind,
  results: readonly UrlResult[],
  ctx: AlertContext,
): AlertmanagerPayload {
  const status = kind === 'failure' ? 'firing' : 'resolved';
  const chosen = kind === 'failure' ? results.filter((r) => !r.success) : results.filter((r) => r.failedAttempts > 0);
  const groupLabels = { alertname: ALERT_NAME };
  const alerts = chosen.map((r): AlertmanagerAlert => {
    const labels: Record<string, string> = {
      alertname: ALERT_NAME,
      instance: r.url,
      job: 'dyce-probe',
      severity: 'critical',
    };
    return {
      status,
      labels,
      annotations: {
        summary: kind === 'failure' ? `${r.url} failed its probe` : `${r.url} passes its probe again`,
        description:
          kind === 'failure'
            ? `${r.reason ?? 'failed'} (after ${r.attempts} attempt${r.attempts === 1 ? '' : 's'})`
            : `passed after ${r.failedAttempts} failed attempt${r.failedAttempts === 1 ? '' : 's'}`,
      },
      startsAt: ctx.startedAt.toISOString(),
      endsAt: kind === 'failure' ? ZERO_TIME : ctx.now.toISOString(),
      generatorURL: ctx.runUrl ?? '',
      fingerprint: fingerprint(labels),
    };
  });
  return {
    version: '4',
    groupKey: `{}:{alertname="${ALERT_NAME}"}`,
    truncatedAlerts: 0,
    status,
    receiver: 'dyce-probe',
    groupLabels,
    commonLabels: commonOf(alerts.map((a) => a.labels)),
    commonAnnotations: commonOf(alerts.map((a) => a.annotations)),
    externalURL: ctx.runUrl ?? '',
    alerts,
  };
}

function commonOf(maps: Array<Record<string, string>>): Record<string, string> {
  if (maps.length === 0) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(maps[0]!)) if (maps.every((m) => m[k] === v)) out[k] = v;
  return out;
}

function fingerprint(labels: Record<string, string>): string {
  const text = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join('\xff');
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
