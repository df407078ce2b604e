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

const ms = (n: number) => `${Math.round(n)} ms`;

/** The job summary: a table per URL, with a line per attempt (status and latency). */
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
      ['duration', ms(l.durationMs)],
      [
        'phases',
        `dns ${Math.round(t.dns)} · connect ${Math.round(t.connect)} · tls ${Math.round(t.tls)} · processing ${Math.round(t.processing)} · transfer ${Math.round(t.transfer)} ms`,
      ],
    ];
    if (l.redirects) rows.push(['redirects', `${l.redirects} → ${l.finalUrl}`]);
    if (l.certExpiry) rows.push(['certificate expires', l.certExpiry]);
    if (l.metrics.tlsInfo)
      rows.push([
        'TLS',
        `${l.metrics.tlsInfo.version}${l.metrics.tlsInfo.alpn ? `, ALPN ${l.metrics.tlsInfo.alpn}` : ''}`,
      ]);
    for (const c of l.conditions) rows.push([c.ok ? '✅ condition' : '❌ condition', `\`${c.resolved}\``]);
    out.push('', `#### ${cell(r.url)}`, '', '| | |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${cell(v)} |`));
    if (r.history.length > 1 || (r.history.length === 1 && !r.success)) {
      const durations = r.history.map((h) => h.durationMs).sort((a, b) => a - b);
      const median = durations[Math.floor((durations.length - 1) / 2)] ?? 0;
      out.push(
        '',
        `Attempts: ${r.history.length}, latency min ${ms(durations[0] ?? 0)} · median ${ms(median)} · max ${ms(durations.at(-1) ?? 0)}`,
        '',
        '| # | result | status | latency |',
        '|---|---|---|---|',
        ...r.history.map(
          (h) =>
            `| ${h.attempt} | ${h.ok ? '✅' : `❌ ${cell(h.failure ?? '')}`} | ${h.status ?? '—'} | ${ms(h.durationMs)} |`,
        ),
      );
    }
  }
  return out.join('\n');
}

function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** Go's zero time, which blackbox reports for a chain it did not verify (tls-insecure-skip-verify). */
const GO_ZERO_TIME = -62135596800;

/**
 * The results in Prometheus text exposition format, with blackbox_exporter's metric names and meanings and an
 * `instance` label per URL, e.g. for node_exporter's textfile collector. Each metric is present where blackbox
 * registers it (TLS metrics only for a response over TLS, the last-modified time only when the header parses). Pure.
 */
export function prometheusText(results: readonly UrlResult[]): string {
  const lines: string[] = [];
  const metric = (name: string, help: string, samples: Array<[string, number]>) => {
    if (samples.length === 0) return;
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [labels, v] of samples) lines.push(`${name}{${labels}} ${Number.isInteger(v) ? v : v.toFixed(6)}`);
  };
  const inst = (r: UrlResult) => `instance="${label(r.url)}"`;
  const each = (f: (r: UrlResult) => number | undefined): Array<[string, number]> =>
    results.flatMap((r): Array<[string, number]> => {
      const v = f(r);
      return v === undefined ? [] : [[inst(r), v]];
    });
  const m = (r: UrlResult) => r.last.metrics;
  // The probe_http_* metrics, for http(s) URLs only (blackbox's tcp prober has none of them).
  const eachHttp = (f: (r: UrlResult) => number | undefined) =>
    each((r) => (m(r).protocol === 'http' ? f(r) : undefined));
  metric(
    'probe_success',
    'Displays whether or not the probe was a success',
    each((r) => (r.success ? 1 : 0)),
  );
  metric(
    'probe_duration_seconds',
    'Returns how long the probe took to complete in seconds',
    each((r) => r.last.durationMs / 1000),
  );
  metric(
    'probe_dns_lookup_time_seconds',
    'Returns the time taken for probe dns lookup in seconds',
    each((r) => (m(r).ipProtocol ? r.last.timings.dns / 1000 : undefined)),
  );
  metric(
    'probe_ip_protocol',
    'Specifies whether probe ip protocol is IP4 or IP6',
    each((r) => m(r).ipProtocol),
  );
  metric(
    'probe_ip_addr_hash',
    "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
    each((r) => m(r).ipHash),
  );
  const phases: Array<[string, number]> = [];
  for (const r of results) {
    const t = r.last.timings;
    if (m(r).protocol !== 'http') continue;
    for (const [phase, v] of [
      ['resolve', t.dns],
      ['connect', t.connect],
      ['tls', t.tls],
      ['processing', t.processing],
      ['transfer', t.transfer],
    ] as const)
      phases.push([`${inst(r)},phase="${phase}"`, v / 1000]);
  }
  metric('probe_http_duration_seconds', 'Duration of http request by phase, summed over all redirects', phases);
  metric(
    'probe_http_content_length',
    'Length of http content response',
    eachHttp((r) => (m(r).responded ? m(r).contentLength : 0)),
  );
  metric(
    'probe_http_uncompressed_body_length',
    'Length of uncompressed response body',
    eachHttp((r) => m(r).bodyBytes),
  );
  metric(
    'probe_http_redirects',
    'The number of redirects',
    eachHttp((r) => r.last.redirects),
  );
  metric(
    'probe_http_ssl',
    'Indicates if SSL was used for the final redirect',
    eachHttp((r) => (r.last.tls ? 1 : 0)),
  );
  metric(
    'probe_http_status_code',
    'Response HTTP status code',
    eachHttp((r) => (m(r).responded ? (r.last.status ?? 0) : 0)),
  );
  metric(
    'probe_http_version',
    'Returns the version of HTTP of the probe response',
    eachHttp((r) => (m(r).responded && r.last.httpVersion ? Number(r.last.httpVersion.slice(5)) : 0)),
  );
  metric(
    'probe_failed_due_to_regex',
    'Indicates if probe failed due to regex',
    each((r) => m(r).failedDueToRegex),
  );
  metric(
    'probe_http_last_modified_timestamp_seconds',
    'Returns the Last-Modified HTTP response header in unixtime',
    eachHttp((r) => m(r).lastModified),
  );
  const tlsOf = (r: UrlResult) => (r.last.tls ? m(r).tlsInfo : undefined);
  metric(
    'probe_ssl_earliest_cert_expiry',
    'Returns last SSL chain expiry in unixtime',
    each((r) => {
      const e = tlsOf(r)?.earliestExpiry;
      return e ? Math.floor(e.getTime() / 1000) : undefined;
    }),
  );
  metric(
    'probe_ssl_last_chain_expiry_timestamp_seconds',
    'Returns last SSL chain expiry in timestamp',
    each((r) => {
      const t = tlsOf(r);
      if (!t) return undefined;
      return t.lastChainExpiry ? Math.floor(t.lastChainExpiry.getTime() / 1000) : GO_ZERO_TIME;
    }),
  );
  metric(
    'probe_ssl_last_chain_info',
    'Contains SSL leaf certificate information',
    results.flatMap((r): Array<[string, number]> => {
      const leaf = tlsOf(r)?.leaf;
      if (!leaf) return [];
      return [
        [
          `${inst(r)},fingerprint_sha256="${leaf.fingerprint}",subject="${label(leaf.subject)}",issuer="${label(leaf.issuer)}",subjectalternative="${label(leaf.dnsNames.join(','))}"`,
          1,
        ],
      ];
    }),
  );
  metric(
    'probe_tls_version_info',
    'Returns the TLS version used or NaN when unknown',
    results.flatMap((r): Array<[string, number]> => {
      const t = tlsOf(r);
      return t ? [[`${inst(r)},version="${label(t.version)}"`, 1]] : [];
    }),
  );
  return `${lines.join('\n')}\n`;
}
