import type { DeployActionInputs } from '../config/actions/deploy.js';
import { type Inventory, parseInventory, readInventory } from '../config/inventory.js';
import type { Reporter } from '../github/reporter.js';
import { type ExtraVarsSource, looksSecret, parseExtraVarsText, readExtraVars } from '../playbook/extra-vars.js';
import { type HostStats, TextPrinter } from '../playbook/output.js';
import { readPlaybook } from '../playbook/parse.js';
import { EXIT, runPlaybook } from '../playbook/run.js';
import { UserError } from '../util/errors.js';
import { type Connect, checkConnectionInputs, connector } from './connect.js';

/**
 * The deploy action's `playbook:` input: the playbook runs on Dyce's playbook engine with deploy's inventory
 * (`hosts` or `inventory`), `limit`, SSH key, host-key policy (jump host included), `parallel` (as forks) and
 * `timeout`; `dry-run` is check mode. With
 * `image` too, the playbook runs first and the image is deployed only when it succeeded on every host.
 */

export interface PlaybookOutcome {
  file: string;
  stats: Record<string, HostStats>;
  exitCode: number;
  changed: boolean;
  check: boolean;
  ms: number;
}

/** Pure: each `extra-vars` line is one ansible-playbook `-e` argument, in order (a later one wins). */
export function extraVarsSources(lines: readonly string[] | undefined): ExtraVarsSource[] {
  return (lines ?? []).map((text, n) => ({ text, origin: `input "extra-vars" line ${n + 1}` }));
}

/**
 * Pure: a warning for every variable given inline in `extra-vars` whose name looks secret. Such values sit in
 * the workflow file or, with the CLI, in argv where every user of the machine can read them.
 */
export function inlineSecretWarnings(lines: readonly string[] | undefined): string[] {
  const names = new Set<string>();
  for (const line of lines ?? []) {
    if (line.trim().startsWith('@')) continue;
    try {
      for (const k of Object.keys(parseExtraVarsText(line, 'extra-vars'))) if (looksSecret(k)) names.add(k);
    } catch {
      // readExtraVars reports the bad line
    }
  }
  return [...names].map(
    (k) =>
      `extra var ${k} looks secret and was given in extra-vars, where it can be read (workflow file, process list): give it in secret-extra-vars`,
  );
}

/** A host's end as the deploy's `host-states` output says it. */
export function hostState(s: HostStats): 'ok' | 'changed' | 'failed' {
  return s.failed > 0 || s.unreachable > 0 ? 'failed' : s.changed > 0 ? 'changed' : 'ok';
}

/** The recap as Markdown for the job summary. */
export function playbookSummary(o: PlaybookOutcome): string {
  const lines = [
    `### Dyce playbook: ${o.file}${o.check ? ' (check mode: nothing changed)' : ''}`,
    '',
    '| host | ok | changed | unreachable | failed | skipped | ignored |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const [h, s] of Object.entries(o.stats))
    lines.push(`| ${h} | ${s.ok} | ${s.changed} | ${s.unreachable} | ${s.failed} | ${s.skipped} | ${s.ignored} |`);
  lines.push('', `${o.exitCode === EXIT.ok ? 'Succeeded' : 'Failed'} in ${(o.ms / 1000).toFixed(1)}s.`);
  return lines.join('\n');
}

async function readDeployInventory(i: DeployActionInputs): Promise<Inventory> {
  return i.inventory?.trim()
    ? readInventory(i.inventory.trim())
    : parseInventory(i.hosts ?? '', { source: 'hosts', format: 'ini' });
}

/** Ansible's text output, a line at a time through the reporter (masked, and on stderr for the CLI). */
function lineWriter(reporter: Reporter): { write: (s: string) => void; flush: () => void } {
  let pending = '';
  return {
    write(s) {
      pending += s;
      let nl = pending.indexOf('\n');
      while (nl >= 0) {
        reporter.info(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
        nl = pending.indexOf('\n');
      }
    },
    flush() {
      if (pending) reporter.info(pending);
      pending = '';
    },
  };
}

/**
 * Runs `playbook`. Outputs `changed` and `recap` (per host: ok, changed, unreachable, failed, skipped, ...) are
 * written even when it fails; a failed or unreachable host, or a refused playbook, throws a UserError.
 */
export async function runDeployPlaybook(
  i: DeployActionInputs,
  reporter: Reporter,
  opts: { signal?: AbortSignal; connect?: Connect } = {},
): Promise<PlaybookOutcome> {
  const file = i.playbook?.trim();
  if (!file) throw new UserError('input "playbook" is empty');
  const started = Date.now();
  const outcome: PlaybookOutcome = {
    file,
    stats: {},
    exitCode: EXIT.error,
    changed: false,
    check: i['dry-run'],
    ms: 0,
  };
  const secretVars = i['secret-extra-vars'] ?? [];
  // Each value on its own (the runner masks the whole input text, but a log line may show one value alone).
  for (const e of secretVars) reporter.secret(e.value);
  const timeout = AbortSignal.timeout(i.timeout);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  try {
    const extra = await readExtraVars(extraVarsSources(i['extra-vars']));
    for (const s of extra.secrets) reporter.secret(s);
    for (const w of [...extra.warnings, ...inlineSecretWarnings(i['extra-vars'])]) reporter.warning(w);
    // Secret extra vars win, like a last `-e @file`; they only ever live in this process's memory, and they are
    // never rendered as templates (a password `Zq{{9}}x` arrives as it is).
    const secrets = Object.fromEntries(secretVars.map((e) => [e.key, e.value]));
    const inventory = await readDeployInventory(i);
    for (const w of inventory.warnings) reporter.warning(w);
    checkConnectionInputs(i, inventory.hosts, opts.connect);
    const pb = await readPlaybook(file);
    const out = lineWriter(reporter);
    const r = await reporter.group(`playbook ${file}${outcome.check ? ' (check mode)' : ''}`, async () => {
      try {
        return await runPlaybook(pb, {
          inventory,
          extraVars: extra.vars,
          unsafeVars: secrets,
          connect: opts.connect ?? connector(i, reporter),
          check: outcome.check,
          // Hosts worked on at once, like ansible-playbook's --forks; a play's own `serial:` still batches them.
          forks: i.parallel,
          ...(i.limit?.trim() ? { limit: i.limit.trim() } : {}),
          reporter,
          events: new TextPrinter(out.write),
          signal,
        });
      } finally {
        out.flush();
      }
    });
    outcome.stats = r.stats;
    outcome.exitCode = r.exitCode;
    outcome.changed = Object.values(r.stats).some((s) => s.changed > 0);
    // ansible-playbook passes with a warning here; a deploy step that deployed nowhere is more likely a typo.
    if (Object.keys(r.stats).length === 0)
      throw new UserError(
        `playbook ${file} ran on no host: no host of the inventory matches its plays' hosts${i.limit?.trim() ? ` and limit "${i.limit.trim()}"` : ''}`,
      );
    if (r.cancelled !== undefined)
      throw new UserError(
        `playbook ${file} stopped before its next task: ${timeout.aborted ? `timeout ${i.timeout / 1000}s reached` : r.cancelled}`,
      );
    if (r.exitCode !== EXIT.ok) {
      const bad = Object.entries(r.stats).filter(([, s]) => s.failed > 0 || s.unreachable > 0);
      throw new UserError(
        `playbook ${file} failed on ${bad.length} host${bad.length === 1 ? '' : 's'}: ${bad.map(([h]) => h).join(', ')}`,
        {
          details: bad.map(
            ([h, s]) => `${h}: ok=${s.ok} changed=${s.changed} unreachable=${s.unreachable} failed=${s.failed}`,
          ),
        },
      );
    }
    return outcome;
  } finally {
    outcome.ms = Date.now() - started;
    reporter.output('changed', outcome.changed);
    reporter.output('recap', outcome.stats);
    const states = Object.entries(outcome.stats).map(([h, s]) => [h, hostState(s)] as const);
    reporter.output(
      'failed-hosts',
      states
        .filter(([, st]) => st === 'failed')
        .map(([h]) => h)
        .join(','),
    );
    reporter.output('host-states', Object.fromEntries(states.map(([h, state]) => [h, { state }])));
    if (Object.keys(outcome.stats).length > 0) reporter.summary(playbookSummary(outcome));
  }
}
