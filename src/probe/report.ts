import type { Reporter } from '../github/reporter.js';
import type { UrlResult } from './prober.js';

const r3 = (n: number) => Math.round(n * 1000) / 1000;

/** The result object of one URL, as written to the `results` output and printed by `dyce probe --json`. */
export function resultJson(r: UrlResult): Record<string, unknown> {
  const t = r.last.timings;
  return {
    url: r.url,
    success: r.success,
    ...(r.reason ? { reason: r.reason } : {}),
    attempts: r.attempts,
    failedAttempts: r.failedAttempts,
    status: r.last.status ?? null,
    httpVersion: r.last.httpVersion ?? null,
    durationMs: r3(r.last.durationMs),
    phasesMs: {
      dns: r3(t.dns),
      connect: r3(t.connect),
      tls: r3(t.tls),
      processing: r3(t.processing),
      transfer: r3(t.transfer),
    },
    tls: r.last.tls,
    certExpiry: r.last.certExpiry ?? null,
    redirects: r.last.redirects,
    finalUrl: r.last.finalUrl,
    ip: r.last.ip ?? null,
    failures: r.last.failures,
    conditions: r.last.conditions.map((c) => ({ condition: c.condition, ok: c.ok, resolved: c.resolved })),
  };
}

/** The outputs, written whether the probe passed or not. Scalars describe the first failing URL, else the first. */
export function writeOutputs(results: readonly UrlResult[], reporter: Reporter): void {
  const main = results.find((r) => !r.success) ?? results[0];
  reporter.output(
    'success',
    results.every((r) => r.success),
  );
  if (main) {
    const t = main.last.timings;
    reporter.output('status-code', main.last.status ?? '');
    reporter.output('duration-ms', Math.round(main.last.durationMs));
    reporter.output('dns-ms', Math.round(t.dns));
    reporter.output('connect-ms', Math.round(t.connect));
    reporter.output('tls-ms', Math.round(t.tls));
    reporter.output('processing-ms', Math.round(t.processing));
    reporter.output('transfer-ms', Math.round(t.transfer));
  }
  const expiries = results
    .map((r) => r.last.certExpiry)
    .filter((e): e is string => !!e)
    .sort();
  reporter.output('cert-expiry', expiries[0] ?? '');
  reporter.output('results', results.map(resultJson));
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The job summary: one table per URL. */
export function summaryMarkdown(results: readonly UrlResult[]): string {
  const ok = results.filter((r) => r.success).length;
  const out = [`### Probe: ${ok} of ${results.length} URL${results.length === 1 ? '' : 's'} passed`];
  for (const r of results) {
    const l = r.last;
    const t = l.timings;
    const rows: Array<[string, string]> = [
      ['result', r.success ? '✅ passed' : `❌ failed: ${r.reason ?? ''}`],
      ['status', l.status !== undefined ? `${l.status}${l.httpVersion ? ` (${l.httpVersion})` : ''}` : 'no response'],
      ['attempts', `${r.attempts} (${r.failedAttempts} failed)`],
      ['duration', `${Math.round(l.durationMs)} ms`],
      [
        'phases',
        `dns ${Math.round(t.dns)} · connect ${Math.round(t.connect)} · tls ${Math.round(t.tls)} · processing ${Math.round(t.processing)} · transfer ${Math.round(t.transfer)} ms`,
      ],
    ];
    if (l.redirects) rows.push(['redirects', `${l.redirects} → ${l.finalUrl}`]);
    if (l.certExpiry) rows.push(['certificate expires', l.certExpiry]);
    for (const c of l.conditions) rows.push([c.ok ? '✅ condition' : '❌ condition', `\`${c.resolved}\``]);
    out.push('', `#### ${cell(r.url)}`, '', '| | |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${cell(v)} |`));
  }
  return out.join('\n');
}

function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/**
 * The results in Prometheus text exposition format, with blackbox_exporter's metric names and an `instance` label
 * per URL, e.g. for node_exporter's textfile collector. Pure.
 */
export function prometheusText(results: readonly UrlResult[]): string {
  const lines: string[] = [];
  const metric = (name: string, help: string, type: string, samples: Array<[string, number]>) => {
    if (samples.length === 0) return;
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) lines.push(`${name}{${labels}} ${Number.isInteger(v) ? v : v.toFixed(6)}`);
  };
  const inst = (r: UrlResult) => `instance="${label(r.url)}"`;
  metric(
    'probe_success',
    'Displays whether or not the probe was a success',
    'gauge',
    results.map((r) => [inst(r), r.success ? 1 : 0]),
  );
  metric(
    'probe_duration_seconds',
    'Returns how long the probe took to complete in seconds',
    'gauge',
    results.map((r) => [inst(r), r.last.durationMs / 1000]),
  );
  metric(
    'probe_http_status_code',
    'Response HTTP status code',
    'gauge',
    results.map((r) => [inst(r), r.last.status ?? 0]),
  );
  const phases: Array<[string, number]> = [];
  for (const r of results) {
    const t = r.last.timings;
    for (const [phase, ms] of [
      ['resolve', t.dns],
      ['connect', t.connect],
      ['tls', t.tls],
      ['processing', t.processing],
      ['transfer', t.transfer],
    ] as const)
      phases.push([`${inst(r)},phase="${phase}"`, ms / 1000]);
  }
  metric(
    'probe_http_duration_seconds',
    'Duration of http request by phase, summed over all redirects',
    'gauge',
    phases,
  );
  metric(
    'probe_http_redirects',
    'The number of redirects',
    'gauge',
    results.map((r) => [inst(r), r.last.redirects]),
  );
  metric(
    'probe_http_ssl',
    'Indicates if SSL was used for the final redirect',
    'gauge',
    results.map((r) => [inst(r), r.last.tls ? 1 : 0]),
  );
  metric(
    'probe_ssl_earliest_cert_expiry',
    'Returns last SSL chain expiry in unixtime',
    'gauge',
    results.filter((r) => r.last.certExpiry).map((r) => [inst(r), Date.parse(r.last.certExpiry!) / 1000]),
  );
  return `${lines.join('\n')}\n`;
}
