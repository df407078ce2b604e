import { readFile, rename, writeFile } from 'node:fs/promises';
import type { Reporter } from '../github/reporter.js';
import { errorMessage, UserError } from '../util/errors.js';
import { assembleProbeConfig, describeProbe, type PemSource, type ProbeConfig, type ProbeInputs } from './config.js';
import { alertContextFromEnv, alertKind, alertmanagerPayload, telegramText } from './notify/message.js';
import { sendTelegram } from './notify/telegram.js';
import { sendWebhook } from './notify/webhook.js';
import { TokenSource } from './oauth.js';
import { type Clock, type ProbeContext, probeTarget, realClock, type UrlResult } from './prober.js';
import { prometheusText, summaryMarkdown, writeOutputs } from './report.js';

export interface RunProbeOptions {
  clock?: Clock;
  env?: NodeJS.ProcessEnv;
}

export interface ProbeRun {
  success: boolean;
  results: UrlResult[];
  /** Token fetches made (OAuth2), for tests of the cache. */
  tokenFetches: number;
}

/** Reads a PEM input given as text or a path; `marker` is what the PEM must hold. */
async function readPem(name: string, src: PemSource | undefined, marker: RegExp): Promise<string | undefined> {
  if (!src) return undefined;
  let text: string;
  if ('pem' in src) text = src.pem;
  else
    try {
      text = await readFile(src.path, 'utf8');
    } catch (e) {
      throw new UserError(
        `input "${name}": cannot read ${src.path} (${(e as NodeJS.ErrnoException).code ?? errorMessage(e)})`,
        { cause: e },
      );
    }
  if (!marker.test(text))
    throw new UserError(`input "${name}": ${'path' in src ? src.path : 'the value'} holds no PEM ${marker.source}`);
  return text;
}

async function readBodyFile(path: string | undefined): Promise<Buffer | undefined> {
  if (!path) return undefined;
  try {
    return await readFile(path);
  } catch (e) {
    throw new UserError(
      `input "body-file": cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? errorMessage(e)})`,
    );
  }
}

/**
 * Probes every URL concurrently, writes the outputs, the job summary and the Prometheus file, sends the alerts,
 * and returns the verdict. Nothing is sent before every input is validated. Does not throw on a failed probe:
 * the caller (action or CLI) decides how to fail.
 */
export async function runProbeInputs(
  inputs: ProbeInputs,
  reporter: Reporter,
  opts: RunProbeOptions = {},
): Promise<ProbeRun> {
  const config = assembleProbeConfig(inputs);
  return runProbe(config, reporter, opts);
}

export async function runProbe(config: ProbeConfig, reporter: Reporter, opts: RunProbeOptions = {}): Promise<ProbeRun> {
  const clock = opts.clock ?? realClock;
  const env = opts.env ?? process.env;
  // Registering again is harmless and covers callers that did not come through runAction (the CLI, tests).
  const a = config.auth;
  if (a.kind === 'basic') reporter.secret(a.password.reveal());
  if (a.kind === 'bearer') reporter.secret(a.token.reveal());
  if (a.kind === 'oauth2') reporter.secret(a.clientSecret.reveal());
  if (config.alerts.telegram) reporter.secret(config.alerts.telegram.token.reveal());
  if (config.alerts.webhook) reporter.secret(config.alerts.webhook.url.reveal());

  const r = config.request;
  if (r.tlsKeyPassphrase) reporter.secret(r.tlsKeyPassphrase.reveal());
  if (r.proxy.url?.password) reporter.secret(decodeURIComponent(r.proxy.url.password));
  for (const [, v] of r.proxy.connectHeaders) reporter.secret(v);
  const caText = await readPem('tls-ca', r.tlsCa, /-----BEGIN CERTIFICATE-----/);
  const ca = caText ? [caText] : undefined;
  const cert = await readPem('tls-cert', r.tlsCert, /-----BEGIN CERTIFICATE-----/);
  const key = await readPem('tls-key', r.tlsKey, /-----BEGIN [A-Z ]*PRIVATE KEY-----/);
  if (key && 'pem' in (r.tlsKey ?? {})) reporter.secret(key);
  const body = r.bodyFile ? await readBodyFile(r.bodyFile) : r.body !== undefined ? Buffer.from(r.body) : undefined;
  const startedAt = new Date(clock.now());
  const ctx: ProbeContext = { config, reporter, clock, env };
  if (ca) ctx.ca = ca;
  if (body) ctx.body = body;
  if (cert && key)
    ctx.clientCert = { cert, key, ...(r.tlsKeyPassphrase ? { passphrase: r.tlsKeyPassphrase.reveal() } : {}) };
  if (config.retry.deadlineMs !== undefined) ctx.deadlineAt = clock.now() + config.retry.deadlineMs;
  if (a.kind === 'oauth2')
    ctx.tokens = new TokenSource(a, reporter, {
      tls: { ...(ca ? { ca } : {}), insecureSkipVerify: false },
      preferredIpProtocol: r.preferredIpProtocol,
      ipProtocolFallback: r.ipProtocolFallback,
      timeoutMs: config.request.timeoutMs,
    });

  reporter.info(describeProbe(config));
  const results = await Promise.all(config.targets.map((t) => probeTarget(t, ctx)));
  const success = results.every((r) => r.success);
  for (const r of results)
    reporter.info(
      r.success
        ? `${r.url}: passed (${r.last.status}, ${Math.round(r.last.durationMs)}ms, ${r.attempts} attempt${r.attempts === 1 ? '' : 's'})`
        : `${r.url}: FAILED: ${r.reason}`,
    );

  writeOutputs(results, reporter);
  reporter.summary(summaryMarkdown(results));
  if (config.prometheusFile) {
    try {
      // Write then rename, so a textfile collector never reads half a file.
      const tmp = `${config.prometheusFile}.${process.pid}.tmp`;
      await writeFile(tmp, prometheusText(results));
      await rename(tmp, config.prometheusFile);
    } catch (e) {
      reporter.warning(`could not write ${config.prometheusFile}: ${errorMessage(e)}`);
    }
  }

  const kind = alertKind(results, config.alerts);
  if (kind) {
    const actx = alertContextFromEnv(env, startedAt, new Date(clock.now()));
    const sleep = (ms: number) => clock.sleep(ms);
    // An alert that cannot be sent is a warning: it must not hide the probe's own verdict.
    if (config.alerts.telegram) {
      try {
        await sendTelegram(config.alerts.telegram, telegramText(kind, results, actx), {
          sleep,
          info: (m) => reporter.info(m),
        });
        reporter.info(`Telegram ${kind} alert sent`);
      } catch (e) {
        reporter.warning(`Telegram alert not sent: ${errorMessage(e)}`);
      }
    }
    if (config.alerts.webhook) {
      try {
        await sendWebhook(config.alerts.webhook.url, alertmanagerPayload(kind, results, actx), { sleep });
        reporter.info(`webhook ${kind} alert sent`);
      } catch (e) {
        reporter.warning(`webhook alert not sent: ${errorMessage(e)}`);
      }
    }
  }
  return { success, results, tokenFetches: ctx.tokens?.fetches ?? 0 };
}

/** The error a failed probe ends with (the action's failure message, the CLI's exit 1). */
export function probeFailure(run: ProbeRun): UserError {
  const failed = run.results.filter((r) => !r.success);
  return new UserError(
    `probe failed: ${failed.length} of ${run.results.length} URL${run.results.length === 1 ? '' : 's'}`,
    { details: failed.map((r) => `  ${r.url}: ${r.reason}`) },
  );
}
