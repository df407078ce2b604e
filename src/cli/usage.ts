import type { ActionSpec } from '../config/input-spec.js';
import type { ExtraFlag } from './flags.js';
import { type CommandHelp, DEPLOY_EXIT_CODES, EXIT_CODES, JSON_FLAG } from './help.js';

/** The commands `dyce` knows, in the order the overview lists them. */
export const COMMANDS = ['build', 'deploy', 'plan', 'rollback', 'probe', 'play', 'lab'] as const;
export type CommandName = (typeof COMMANDS)[number];

export const OVERVIEW = `dyce: deploy a release to your own VPS

usage: dyce <command> [flags]      dyce <command> --help     dyce help <command>     dyce --version

commands:
  dyce build [CONTEXT] --image REPO …   build and push an image like the build-push action
  dyce deploy --hosts … --image REF --name APP …   run replicas on your hosts like the deploy action
  dyce plan …                 the same flags: print what deploy would do, change nothing
  dyce rollback …             the same flags without --image: go back one version, from the hosts' deploy history
  dyce probe URL... …         probe URLs like the probe action (conditions, retries, TLS, alerts)
  dyce play -i HOSTS PLAYBOOK [-e VARS]... [--check]   run an Ansible playbook on Dyce's engine
  dyce lab up [--hosts N] | down | status | env | inventory   a disposable lab VPS on this machine (development)

Every command but play and lab takes its action's inputs as flags of the same name. Secrets are never taken as
flag values: use DYCE_<NAME>, --<name>-file PATH or --<name>-file - (stdin). --json prints one typed JSON document.

Exit status: 0 success or nothing to do, 1 failed, 2 bad input or usage (nothing touched), 3 rolled back;
dyce play keeps ansible-playbook's (0 ok, 2 a host failed, 4 unreachable or a playbook error, 5 bad options).
`;

const DEPLOY_GROUPS = [
  ['Where to deploy', /^(hosts|inventory|limit|parallel|serial|max-fail-percentage)$/],
  ['SSH and host keys', /^(ssh-|known-hosts|host-fingerprint|jump-|insecure-skip-host-key-check|connect-)/],
  ['Playbook', /^(playbook|extra-vars|secret-extra-vars)$/],
  ['Image and registry', /^(image|registry|pull$|name$|version$|keep-versions)/],
  [
    'Containers',
    /^(replicas|network-mode|port|host-|env$|labels|volumes|command|restart-policy|secret-|log-|install-log-plugin|adopt)/,
  ],
  ['Rollout, health and locking', /^(dry-run|lock-|timeout|health-|max-unavailable|drain-|strategy)/],
  ['nginx', /^(proxy|nginx-)/],
] as const;

const BUILD_GROUPS = [
  ['Image, tags and registry', /^(image|tags|semver-tags|latest|ref|sha|registry|push|retries)/],
  [
    'Build',
    /^(context|file|target|build-args|secret-build-args|secrets|secret-envs|env-file|labels|cache-|platforms|builder|docker-path)/,
  ],
] as const;

const PROBE_GROUPS = [
  ['Request', /^(url|method|headers|body|timeout|follow-redirects|ip-protocol|tls-)/],
  ['Checks', /^(valid-|fail-if-|conditions)/],
  ['Attempts', /^(attempts|interval|backoff|success-threshold|deadline)/],
  ['Authentication', /^(basic-auth-|bearer-token|token-url|client-|scopes)/],
  ['Alerts and metrics', /^(alert-on|telegram-|webhook-|prometheus-)/],
] as const;

/** The flags each command takes besides its action's inputs. */
export const EXTRA_FLAGS = [JSON_FLAG] as const;

/** `--known-hosts-file FILE`: a known_hosts file (`--known-hosts` takes the lines themselves, as in every command). */
const KNOWN_HOSTS_FILE_FLAG: ExtraFlag = {
  name: 'known-hosts-file',
  kind: 'value',
  placeholder: 'FILE',
  description:
    'A known_hosts file (--known-hosts takes the lines). Without either, ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts',
};

/** deploy, plan and rollback. */
export const DEPLOY_EXTRA_FLAGS = [KNOWN_HOSTS_FILE_FLAG, JSON_FLAG] as const;

async function deploySpec(): Promise<ActionSpec> {
  return (await import('../config/actions/deploy.js')).deploySpec as ActionSpec;
}

/** The help of one command (play and lab print their own; see main.ts). */
export async function helpFor(command: CommandName): Promise<CommandHelp | undefined> {
  switch (command) {
    case 'deploy':
      return {
        name: 'deploy',
        summary: 'run replicas of an image on your hosts over SSH, like the deploy action',
        synopsis: [
          "dyce deploy --hosts 'web1 ansible_host=203.0.113.7 ansible_user=deploy' --known-hosts LINES --image REF --name APP",
          'dyce deploy --inventory FILE --image REF --name APP [--replicas N] [--port P] [--proxy nginx] …',
          'dyce deploy --inventory FILE --playbook PLAYBOOK.yml [--extra-vars VARS]… [--image REF --name APP]',
        ],
        notes: [
          'A playbook alone replaces the image deploy; with --image too, the playbook runs first. --dry-run (or dyce plan)',
          'prints what would change and changes nothing.',
        ],
        spec: await deploySpec(),
        extra: DEPLOY_EXTRA_FLAGS,
        groups: DEPLOY_GROUPS,
        exits: DEPLOY_EXIT_CODES,
      };
    case 'plan':
      return {
        name: 'plan',
        summary: 'print what dyce deploy would do on each host; change nothing',
        synopsis: ['dyce plan --inventory FILE --image REF --name APP [the flags of dyce deploy]'],
        notes: ['dyce plan is dyce deploy --dry-run: the same flags, and 0 when nothing would change.'],
        spec: await deploySpec(),
        extra: DEPLOY_EXTRA_FLAGS,
        groups: DEPLOY_GROUPS,
        exits: EXIT_CODES,
      };
    case 'rollback':
      return {
        name: 'rollback',
        summary: "go back one version, as the hosts' deploy history records it",
        synopsis: ['dyce rollback --inventory FILE --name APP [the flags of dyce deploy but --image and --version]'],
        notes: [
          'Redeploys the version that ran before the current one through the same rolling path as a deploy (the last',
          'keep-versions images are kept on each host). A second rollback goes one version further back.',
        ],
        spec: await deploySpec(),
        extra: DEPLOY_EXTRA_FLAGS,
        groups: DEPLOY_GROUPS,
        exits: DEPLOY_EXIT_CODES,
      };
    case 'build':
      return {
        name: 'build',
        summary: 'build and push an image, like the build-push action',
        synopsis: ['dyce build [CONTEXT] --image REPO [flags]'],
        notes: [
          'Examples:',
          '  dyce build ./app --image 127.0.0.1:5000/team/app --registry-username ci --secrets-file ./build-secrets',
          '  dyce build ./app --image team/app --push=false --tags dev',
          'Tags come from --ref/--sha, else GITHUB_REF/GITHUB_SHA, else the checkout (the tag at HEAD, the branch, the commit).',
        ],
        spec: (await import('../config/actions/build-push.js')).buildPushSpec as ActionSpec,
        extra: EXTRA_FLAGS,
        groups: BUILD_GROUPS,
        exits: EXIT_CODES,
      };
    case 'probe':
      return {
        name: 'probe',
        summary: 'probe URLs with blackbox_exporter http_2xx semantics, like the probe action',
        synopsis: ['dyce probe URL... [flags]'],
        notes: [
          'Examples:',
          '  dyce probe https://example.com/health --valid-status-codes 200-299,204 --attempts 10 --interval 3s',
          "  dyce probe https://example.com/api/ --conditions '[BODY].status == UP' --conditions '[RESPONSE_TIME] < 300'",
        ],
        spec: (await import('../config/actions/probe.js')).probeSpec as ActionSpec,
        extra: EXTRA_FLAGS,
        groups: PROBE_GROUPS,
        exits: EXIT_CODES,
      };
    default:
      return undefined;
  }
}
