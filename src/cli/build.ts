import { buildPush } from '../build/build-push.js';
import { buildPushRules, buildPushSpec } from '../config/actions/build-push.js';
import { parseInputs } from '../config/input-spec.js';
import { runLocal } from '../remote/local.js';
import { parseFlags } from './flags.js';
import type { CliReporter } from './reporter.js';

export const BUILD_USAGE = `usage: dyce build [CONTEXT] --image REPO [--<input> value]... [--json]

Builds and pushes an image like the build-push action, with its inputs as flags:
  dyce build ./app --image 127.0.0.1:5000/team/app --registry-username ci --secrets-file ./build-secrets (0600, id=value lines)
  dyce build ./app --image team/app --push=false --tags dev
Tags come from --ref/--sha, else GITHUB_REF/GITHUB_SHA, else the checkout (the tag at HEAD, the branch, the commit).
Secrets (registry-password, secrets, secret-build-args, env-file-secrets) come from DYCE_<NAME> or
--<name>-file PATH|-, never from flag values.  --json prints the metadata output on standard output.
Exit status: 0 built (and pushed), 1 failed or bad input.`;

export async function buildCommand(argv: string[], reporter: CliReporter): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${BUILD_USAGE}\n`);
    return 0;
  }
  const { raw, extra, positionals } = parseFlags(buildPushSpec, argv, { extraBooleans: ['json'] });
  // Secrets first: nothing printed from here on may show them.
  for (const [name, f] of Object.entries(buildPushSpec.inputs))
    if (f.meta.secret && raw[name]) reporter.secret(raw[name]!);
  if (positionals.length === 1 && raw.context === undefined) raw.context = positionals[0];
  else if (positionals.length) {
    reporter.error(`dyce build takes one CONTEXT, got ${positionals.length} arguments\n\n${BUILD_USAGE}`);
    return 2;
  }
  const inputs = parseInputs(buildPushSpec, raw, buildPushRules);
  const env = { ...process.env };
  if (!inputs.ref && !env.GITHUB_REF) env.GITHUB_REF = await gitRef(inputs.context);
  if (!inputs.sha && !env.GITHUB_SHA) env.GITHUB_SHA = await git(inputs.context, ['rev-parse', 'HEAD']);
  await buildPush(inputs, { reporter, env });
  for (const s of reporter.summaries) reporter.info(`\n${s}`);
  if (extra.json) process.stdout.write(`${reporter.outputs.metadata ?? '{}'}\n`);
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
