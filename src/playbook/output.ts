/**
 * What a playbook run reports, as events; two printers: Ansible's default text output, and JSON (Ansible's json
 * callback shape: plays -> tasks -> hosts, then stats).
 */

export type TaskStatus = 'ok' | 'changed' | 'failed' | 'skipped' | 'unreachable';

export interface HostStats {
  ok: number;
  changed: number;
  unreachable: number;
  failed: number;
  skipped: number;
  rescued: number;
  ignored: number;
}

export function emptyStats(): HostStats {
  return { ok: 0, changed: 0, unreachable: 0, failed: 0, skipped: 0, rescued: 0, ignored: 0 };
}

export interface ResultEvent {
  host: string;
  status: TaskStatus;
  /** The loop item's label, for per-item lines. */
  item?: string;
  /** Shown after `=>` (failures, debug, -v); already censored for no_log. */
  detail?: Record<string, unknown>;
  ignored?: boolean;
}

export interface PlayEvents {
  play(name: string, hosts: string[]): void;
  noHosts(pattern: string): void;
  /** A task starts (`handler`: a notified handler runs). */
  task(name: string, module: string, handler?: boolean): void;
  /** One line per host (or per host and loop item). `final` marks the task's overall result for the host. */
  result(r: ResultEvent, final: boolean): void;
  warning(message: string): void;
  noMoreHosts(): void;
  recap(stats: Record<string, HostStats>): void;
}

const WIDTH = 80;

function banner(text: string): string {
  return `${text} ${'*'.repeat(Math.max(3, WIDTH - text.length - 1))}`;
}

/** A module's `diff` (`{before, after}` or a list of them) as unified-diff-like lines, as `--diff` prints it. */
export function formatDiff(diff: unknown): string {
  const out: string[] = [];
  for (const d of [diff].flat()) {
    if (!d || typeof d !== 'object') continue;
    const { before = '', after = '', before_header, after_header, prepared } = d as Record<string, unknown>;
    if (typeof prepared === 'string') {
      out.push(prepared);
      continue;
    }
    const text = (v: unknown) => (typeof v === 'string' ? v : `${JSON.stringify(v, null, 4)}\n`);
    const a = text(before).split('\n');
    const b = text(after).split('\n');
    if (a.join('\n') === b.join('\n')) continue;
    out.push(
      `--- before${before_header ? `: ${before_header}` : ''}`,
      `+++ after${after_header ? `: ${after_header}` : ''}`,
    );
    for (const l of a) if (!b.includes(l) && l !== '') out.push(`-${l}`);
    for (const l of b) if (!a.includes(l) && l !== '') out.push(`+${l}`);
  }
  return out.length ? `${out.join('\n')}\n\n` : '';
}

/** Ansible's default callback, close enough that people who read Ansible output read this. */
export class TextPrinter implements PlayEvents {
  constructor(
    private readonly write: (s: string) => void,
    private readonly opts: { verbose?: boolean; diff?: boolean } = {},
  ) {}
  play(name: string): void {
    this.write(`\n${banner(`PLAY [${name}]`)}\n`);
  }
  noHosts(): void {
    this.write('skipping: no hosts matched\n');
  }
  task(name: string, _module?: string, handler?: boolean): void {
    this.write(`\n${banner(`${handler ? 'RUNNING HANDLER' : 'TASK'} [${name}]`)}\n`);
  }
  result(r: ResultEvent, final: boolean): void {
    // Items are printed one by one; the loop's summary line adds nothing for ok/changed/skipped.
    if (final && r.item === undefined && r.detail?.results !== undefined) return;
    const item = r.item === undefined ? '' : ` => (item=${r.item})`;
    const word =
      r.status === 'failed'
        ? r.item === undefined
          ? 'fatal'
          : 'failed'
        : r.status === 'skipped'
          ? 'skipping'
          : r.status;
    const showDetail =
      r.detail !== undefined &&
      (r.status === 'failed' || r.status === 'unreachable' || this.opts.verbose || r.detail.__debug === true);
    let line =
      r.status === 'failed' && r.item === undefined ? `${word}: [${r.host}]: FAILED!` : `${word}: [${r.host}]${item}`;
    if (r.status === 'unreachable') line = `fatal: [${r.host}]: UNREACHABLE!`;
    if (showDetail && r.detail) {
      const { __debug: _d, ...rest } = r.detail;
      line += `${r.item === undefined ? ' =>' : ''} ${JSON.stringify(rest, null, r.status === 'failed' || r.status === 'unreachable' ? undefined : 4)}`;
    }
    if (this.opts.diff && r.detail?.diff !== undefined) this.write(formatDiff(r.detail.diff));
    this.write(`${line}\n`);
    if (r.ignored) this.write('...ignoring\n');
  }
  warning(message: string): void {
    this.write(`[WARNING]: ${message}\n`);
  }
  noMoreHosts(): void {
    this.write(`\n${banner('NO MORE HOSTS LEFT')}\n`);
  }
  recap(stats: Record<string, HostStats>): void {
    this.write(`\n${banner('PLAY RECAP')}\n`);
    for (const [h, s] of Object.entries(stats)) {
      const cols = [
        ['ok', s.ok],
        ['changed', s.changed],
        ['unreachable', s.unreachable],
        ['failed', s.failed],
        ['skipped', s.skipped],
        ['rescued', s.rescued],
        ['ignored', s.ignored],
      ].map(([k, n]) => `${k}=${String(n).padEnd(4)}`);
      this.write(`${h.padEnd(26)} : ${cols.join(' ').trimEnd()}\n`);
    }
    this.write('\n');
  }
}

export interface JsonRun {
  plays: {
    play: { name: string; hosts: string[] };
    tasks: { task: { name: string; module: string }; hosts: Record<string, Record<string, unknown>> }[];
  }[];
  stats: Record<string, HostStats & { failures: number }>;
  warnings: string[];
}

/** Collects the run as Ansible's json callback would print it. */
export class JsonCollector implements PlayEvents {
  readonly run: JsonRun = { plays: [], stats: {}, warnings: [] };
  play(name: string, hosts: string[]): void {
    this.run.plays.push({ play: { name, hosts }, tasks: [] });
  }
  noHosts(): void {}
  task(name: string, module: string): void {
    this.run.plays.at(-1)?.tasks.push({ task: { name, module }, hosts: {} });
  }
  result(r: ResultEvent, final: boolean): void {
    if (!final) return;
    const t = this.run.plays.at(-1)?.tasks.at(-1);
    if (!t) return;
    const { __debug: _d, ...detail } = r.detail ?? {};
    t.hosts[r.host] = {
      ...detail,
      changed: r.status === 'changed',
      ...(r.status === 'failed' ? { failed: true } : {}),
      ...(r.status === 'skipped' ? { skipped: true } : {}),
      ...(r.status === 'unreachable' ? { unreachable: true } : {}),
      ...(r.ignored ? { ignored: true } : {}),
      status: r.status,
    };
  }
  warning(message: string): void {
    this.run.warnings.push(message);
  }
  noMoreHosts(): void {}
  recap(stats: Record<string, HostStats>): void {
    this.run.stats = Object.fromEntries(Object.entries(stats).map(([h, s]) => [h, { ...s, failures: s.failed }]));
  }
}
