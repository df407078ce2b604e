import { buildPush } from '../build/build-push.js';
import { buildPushRules, buildPushSpec } from '../config/actions/build-push.js';
import { runLocal } from '../remote/local.js';
import { checkInputs, parseFlags } from './flags.js';
import type { CliReporter } from './reporter.js';
import { EXTRA_FLAGS } from './usage.js';

export async function buildCommand(argv: string[], reporter: CliReporter): Promise<number> {
  const parsed = parseFlags(buildPushSpec, argv, { extra: EXTRA_FLAGS, positionals: { name: 'CONTEXT', max: 1 } });
  const { raw, positionals } = parsed;
  // Secrets first: nothing printed from here on may show them.
  for (const [name, f] of Object.entries(buildPushSpec.inputs))
    if (f.meta.secret && raw[name]) reporter.secret(raw[name]!);
  if (positionals.length === 1) {
    if (raw.context === undefined) raw.context = positionals[0];
    else parsed.issues.push(`give the build context once: as CONTEXT or as --context, not both`);
  }
  const inputs = checkInputs(buildPushSpec, parsed, buildPushRules);
  const env = { ...process.env };
  if (!inputs.ref && !env.GITHUB_REF) env.GITHUB_REF = await gitRef(inputs.context);
  if (!inputs.sha && !env.GITHUB_SHA) env.GITHUB_SHA = await git(inputs.context, ['rev-parse', 'HEAD']);
  await buildPush(inputs, { reporter, env });
  for (const s of reporter.summaries) reporter.info(`\n${s}`);
  return 0;
}

/** The checkout's ref: the tag at HEAD (as a tag push would give), else the branch; empty outside git. */
async function gitRef(dir: string): Promise<string> {
  const tag = await git(dir, ['describe', '--exact-match', '--tags', 'HEAD']);
  if (tag) return `refs/tags/${tag}`;
  return git(dir, ['symbolic-ref', '-q', 'HEAD']);
}

async function git(dir: string, args: string[]): Promise<string> {
  const r = await runLocal(['git', '-C', dir, ...args]);
  return r.code === 0 ? r.stdout.trim() : '';
}
