import { isIP } from 'node:net';
import { splitReference } from '../../build/tags.js';
import { allowedLogOptions } from '../../commands/log-options.js';
import { parseSerial } from '../../deploy/fanout.js';
import { InputError } from '../../util/errors.js';
import type { MapEntry } from '../conventions.js';
import { type ActionSpec, type InputRule, input, type ParsedInputs } from '../input-spec.js';
import { parseJumpSpec } from '../inventory.js';
import { splitShellWords } from '../shell-words.js';

/** The Loki plugin Dyce installs when asked: pinned, never `latest`. */
export const DEFAULT_LOG_PLUGIN = 'grafana/loki-docker-driver:3.3.2-amd64';

/**
 * The deploy action's inputs. Names follow Ansible's docker_container where they overlap
 * (`restart-policy`, `network-mode`, `log-driver`, `log-options`), in the project's kebab-case.
 */
export const deployInputs = {
  hosts: input.string({
    description:
      'Inline Ansible INI inventory lines, e.g. `web1 ansible_host=203.0.113.7 ansible_port=22 ansible_user=deploy`, with `[groups]` and `[all:vars]`',
  }),
  inventory: input.string({ description: 'Path of an Ansible inventory file (INI or YAML), instead of `hosts`' }),
  limit: input.string({ description: 'Ansible host pattern selecting the hosts to deploy to (default: all)' }),
  'ssh-private-key': input.string({ description: 'SSH private key (PEM or OpenSSH)', secret: true }),
  'ssh-passphrase': input.string({ description: 'Passphrase of the SSH private key', secret: true }),
  'known-hosts': input.string({
    description: 'known_hosts lines that vouch for the hosts (host keys are verified by default)',
  }),
  'host-fingerprint': input.list({
    description: 'Accepted host key fingerprints (`SHA256:…`), instead of `known-hosts`',
  }),
  'jump-host': input.string({
    description:
      "Bastion every SSH connection is tunnelled through, `[user@]host[:port]` (user: the host’s; port: 22). A host’s own `ansible_ssh_common_args='-o ProxyJump=…'` in the inventory wins for that host",
  }),
  'jump-private-key': input.string({
    description:
      'SSH private key for the jump host, of `jump-host` or of an inventory’s ProxyJump (default: `ssh-private-key`)',
    secret: true,
  }),
  'jump-passphrase': input.string({ description: 'Passphrase of `jump-private-key`', secret: true }),
  'jump-known-hosts': input.string({
    description:
      'known_hosts lines that vouch for the jump host (default: `known-hosts`); its host key is verified too',
  }),
  'jump-host-fingerprint': input.list({
    description: 'Accepted host key fingerprints (`SHA256:…`) of the jump host, instead of `jump-known-hosts`',
  }),
  'connect-timeout': input.duration({
    description: 'Time limit for each SSH connection to be set up (TCP connect, then the SSH handshake), per attempt',
    default: '20s',
    min: 100,
  }),
  'insecure-skip-host-key-check': input.boolean({
    description: 'Accept any host key. Dangerous: anyone on the path can impersonate the host',
    default: 'false',
  }),
  playbook: input.string({
    description:
      'Path of an Ansible playbook to run on the hosts (the subset Dyce interprets; anything else is refused before any host is touched), with the same inventory, limit, SSH key, host-key and jump-host settings, `parallel` hosts at a time. Alone, it replaces the image deploy; with `image`, the playbook runs first (e.g. to prepare the hosts) and the image is deployed only if it succeeded on every host. `dry-run` runs it in check mode',
  }),
  'extra-vars': input.lines({
    description:
      'With `playbook`: extra variables, one `-e` argument of ansible-playbook per line (`k=v k2=v2`, a JSON/YAML mapping `{...}`, or `@file`); later lines win. Secrets belong in `secret-extra-vars`',
  }),
  'secret-extra-vars': input.map({
    description:
      'With `playbook`: secret extra variables, `KEY=value` lines (heredocs for multi-line values), masked in the log and handed to the playbook in memory like `-e @file`, never in any argv; they win over `extra-vars`',
    secret: true,
    keyPattern: /^[A-Za-z_][A-Za-z0-9_]*$/,
  }),
  image: input.string({
    description:
      'Image reference with a tag or digest, e.g. `ghcr.io/acme/app:v1.4.2`; without a tag, `version` is the tag (`ghcr.io/acme/app` + `version: v1.4.1` deploys `ghcr.io/acme/app:v1.4.1`) (required unless `playbook` is given)',
  }),
  registry: input.string({ description: 'Registry to log the host into (default: the registry of `image`)' }),
  'registry-username': input.string({ description: 'Registry user name' }),
  'registry-password': input.string({
    description: 'Registry password or token (reaches the host through stdin only)',
    secret: true,
  }),
  pull: input.enum(['missing', 'always'] as const, {
    description:
      '`missing`: pull only when the host does not have the image (a tag rebuilt and pushed again, e.g. `main` or `latest`, is not pulled again, and a warning says so). `always`: pull on every deploy, and replace (through the same rolling path) each replica whose container runs another image than the tag now names; a deploy of an unchanged tag still changes nothing',
    default: 'missing',
  }),
  name: input.string({
    description:
      'App name: replicas are named `<name>1`..`<name>N`; must match `[a-z0-9][a-z0-9_.-]*` (required with `image`)',
  }),
  version: input.string({
    description:
      'Version to deploy: the tag of an untagged `image` (a `workflow_dispatch` run with `version: v1.4.1` redeploys that version through the same rolling path), else only recorded on the containers (default: the image tag)',
  }),
  'keep-versions': input.integer({
    description:
      'Images of this app kept on each host, the most recently deployed first (at least 2: the running one and the previous one, for `dyce rollback`); older ones are removed after a successful deploy',
    default: '3',
    min: 2,
    max: 1000,
  }),
  replicas: input.integer({ description: 'Number of replica containers per host', default: '1', min: 1, max: 100 }),
  'network-mode': input.enum(['bridge', 'host'] as const, { description: 'Docker network mode', default: 'bridge' }),
  port: input.integer({ description: 'Container port of the app', min: 1, max: 65535 }),
  'host-port': input.integer({
    description: 'Host port of replica 1 (default: `port`); replica i gets `host-port+i-1`',
    min: 1,
    max: 65535,
  }),
  'host-ip': input.string({
    description: 'Address published ports bind to. 0.0.0.0 bypasses ufw, so it must be asked for',
    default: '127.0.0.1',
  }),
  'port-env': input.string({
    description: 'With host networking, the env var that tells each replica its port',
    default: 'PORT',
  }),
  env: input.map({ description: 'Environment variables, `KEY=value` lines', keyPattern: /^[A-Za-z_][A-Za-z0-9_]*$/ }),
  labels: input.map({
    description: 'Container labels, `key=value` lines',
    keyPattern: /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/,
  }),
  volumes: input.lines({ description: 'Volumes, `source:target[:options]` lines' }),
  command: input.string({
    description: 'Command (arguments after the image), split like a shell would, without a shell',
  }),
  'restart-policy': input.string({
    description: '`no`, `always`, `unless-stopped` or `on-failure[:N]`',
    default: 'unless-stopped',
  }),
  'secret-env': input.map({
    description:
      'Runtime secret environment variables, `KEY=value` lines: written on the host as a 0600 env file through stdin, never in argv',
    secret: true,
    keyPattern: /^[A-Za-z_][A-Za-z0-9_]*$/,
  }),
  'secret-files': input.map({
    description:
      'Runtime secret files, `name<<EOF` heredocs: written on the host as 0600 files, mounted read-only at `/run/secrets/<name>`',
    secret: true,
    keyPattern: /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/,
  }),
  'log-driver': input.string({ description: 'Docker log driver, e.g. `loki`, `json-file`' }),
  'log-options': input.map({
    description: 'Log driver options, `name=value` lines (for loki, merged over Dyce’s defaults)',
    keyPattern: /^[a-z0-9][a-z0-9_.-]*$/,
  }),
  'log-plugin': input.string({
    description: 'The Loki plugin to install (aliased `loki`) when `install-log-plugin` is true',
    default: DEFAULT_LOG_PLUGIN,
  }),
  'install-log-plugin': input.boolean({
    description: 'Install and enable `log-plugin` when it is missing (otherwise a missing plugin fails the deploy)',
    default: 'false',
  }),
  adopt: input.boolean({
    description: 'Take over containers that hold a replica name but carry no Dyce labels (they are replaced)',
    default: 'false',
  }),
  'dry-run': input.boolean({ description: 'Print the plan and change nothing', default: 'false' }),
  'lock-wait': input.duration({
    description: 'How long to wait for another deploy of this app on a host',
    default: '2m',
  }),
  'lock-stale': input.duration({
    description: 'A lock not refreshed for this long is reported, then taken over',
    default: '1m',
    min: 3000,
  }),
  timeout: input.duration({ description: 'Time limit for the whole deploy', default: '30m', min: 1000 }),
  parallel: input.integer({ description: 'Hosts deployed at the same time', default: '5', min: 1, max: 100 }),
  serial: input.string({
    description:
      'Deploy in batches: a number of hosts or a percentage of them (`1`, `30%`), or a list (`1, 50%`: one host first, then half of them at a time; the last size repeats). A batch starts only when the previous one ended within `max-fail-percentage` (default: all hosts in one batch)',
  }),
  'max-fail-percentage': input.integer({
    description:
      'Share of the selected hosts (in %) that may fail before Dyce stops starting hosts; hosts never started are left untouched and reported `skipped`. Any failed host still fails the step (0: stop at the first failure)',
    default: '0',
    min: 0,
    max: 100,
  }),
  proxy: input.enum(['none', 'nginx'] as const, {
    description:
      '`nginx`: zero-downtime rolling replacement behind the host’s nginx (health-gated, rolled back on failure); `none`: a changed replica is stopped, then started',
    default: 'none',
  }),
  'health-path': input.string({
    description: 'Path a new replica must answer with 2xx before it takes traffic (checked through the SSH connection)',
    default: '/health',
  }),
  'health-timeout': input.duration({ description: 'Time limit of each health check', default: '5s', min: 100 }),
  'health-interval': input.duration({ description: 'Pause between health checks', default: '1s', min: 50 }),
  'health-deadline': input.duration({
    description: 'How long a new replica may take to become healthy before the rollout is rolled back',
    default: '60s',
    min: 100,
  }),
  'max-unavailable': input.integer({
    description: 'Replicas replaced at a time (started, gated and switched together); the others keep serving',
    default: '1',
    min: 1,
    max: 100,
  }),
  'drain-timeout': input.duration({
    description:
      'How long a replica that left the upstream keeps running for its requests in flight, before it is stopped',
    default: '10s',
  }),
  'nginx-server-name': input.list({
    description:
      'With proxy nginx: write a site config for these server names (TLS, /static/, proxy to the upstream, 80 -> 443). Without it Dyce writes only the upstream `dyce_<name>`, for your own site to proxy_pass to',
  }),
  'nginx-tls-cert': input.string({ description: 'Path of the TLS certificate (chain) on the host, for the site' }),
  'nginx-tls-key': input.string({ description: 'Path of the TLS private key on the host, for the site' }),
  'nginx-static-dir': input.string({ description: 'Directory on the host served at `/static/` by the site' }),
  'nginx-http-listen': input.string({
    description: 'The site’s plain-HTTP `listen` (port or address:port)',
    default: '80',
  }),
  'nginx-https-listen': input.string({ description: 'The site’s TLS `listen` (port or address:port)', default: '443' }),
  'github-token': input.string({
    description:
      'With `environment`: a token that may write deployments (`${{ github.token }}` with `permissions: deployments: write`), to show the deploy in GitHub’s Deployments',
    secret: true,
  }),
  environment: input.string({
    description:
      'GitHub environment to record the deploy in (with `github-token`): a deployment for the commit, `in_progress`, then `success`, `failure`, or `inactive` when it was rolled back',
  }),
  'environment-url': input.string({ description: 'URL shown for the environment’s deployment, e.g. the site' }),
};

/** The inputs as parsed: `image` and `name` are absent when only a playbook runs. */
export type DeployActionInputs = ParsedInputs<typeof deployInputs>;
/** The inputs of an image deploy, the engine's: `image` and `name` are there. */
export type DeployInputs = DeployActionInputs & { image: string; name: string };

/** Whether the inputs ask for an image deploy (the rules make `name` go with `image`). */
export function hasImage(i: DeployActionInputs): i is DeployInputs {
  return i.image !== undefined && i.name !== undefined;
}

/** The inputs of an image deploy, or an InputError saying what is missing. */
export function imageDeployInputs(i: DeployActionInputs): DeployInputs {
  if (!hasImage(i)) throw new InputError(['an image deploy needs input "image" and input "name"']);
  return i;
}

export const deploySpec: ActionSpec<typeof deployInputs> = {
  name: 'Dyce deploy',
  id: 'deploy',
  description:
    'Run an image as N replica containers on your own hosts over SSH: verified host keys, runtime secrets, the Loki log driver, idempotent and locked.',
  inputs: deployInputs,
  outputs: {
    success: { description: 'true when every host converged' },
    version: { description: 'The version deployed' },
    changed: {
      description:
        'true when any container was created, replaced or removed, or a task of the playbook changed something (in check mode: would change)',
    },
    recap: {
      description:
        'With `playbook`: JSON, per host, the play recap `{"ok": n, "changed": n, "unreachable": n, "failed": n, "skipped": n, "rescued": n, "ignored": n}`',
    },
    replicas: { description: 'JSON: per host, each replica’s name, container id, port and state' },
    plan: {
      description:
        'JSON: a list, per host: `{"host", "changed", "steps", "sequence"}`; `steps` are the replica steps (kind, replica, container, reason, strategy, description), `sequence` the steps a run takes in order, each `{"kind", "description"}`: preparation (login, plugin, pull, secret files), the replica steps or, behind nginx, the rollout’s batches (alternate ports, gates, switches, drain, stop) and the nginx files repaired. With `dry-run`: what a run would do',
    },
    'rolled-back': { description: 'true when a failed rollout was rolled back (always false without a proxy)' },
    'failed-hosts': { description: 'Comma-separated names of the hosts that failed or were rolled back' },
    'host-states': {
      description:
        'JSON: per host, `{"state": "ok|changed|failed|rolled-back|skipped", "error": "…"}` (error only when it failed or was skipped)',
    },
  },
  post: true,
  branding: { icon: 'upload-cloud', color: 'blue' },
};

// ---- input rules: each a small named function returning issues that name the input ----

export const APP_NAME = /^[a-z0-9][a-z0-9_.-]*$/;

export function appNameRule(i: DeployActionInputs): string | undefined {
  if (i.name === undefined) return undefined;
  if (!APP_NAME.test(i.name))
    return `input "name" must match [a-z0-9][a-z0-9_.-]* (lower-case letters, digits, _ . -), got ${JSON.stringify(i.name)}`;
  if (i.name.length > 60) return `input "name" must be at most 60 characters`;
  return undefined;
}

/** The version is a label value and a column of the observe script's tab-separated output: no blanks. */
export function versionRule(i: DeployActionInputs): string | undefined {
  if (i.version !== undefined && !/^[A-Za-z0-9_.:@+-]{1,128}$/.test(i.version.trim()))
    return `input "version" must be letters, digits and _ . : @ + - (at most 128), got ${JSON.stringify(i.version)}`;
  return undefined;
}

export function hostsOrInventoryRule(i: DeployActionInputs): string | undefined {
  const hosts = i.hosts?.trim();
  const inv = i.inventory?.trim();
  if (!hosts && !inv) return 'input "hosts" or input "inventory" is required (where to deploy)';
  if (hosts && inv) return 'input "hosts" and input "inventory" exclude each other: give one';
  return undefined;
}

/** A tag or a digest is required: an untagged ref silently means `latest`, which is not a version. */
export function imageRule(i: DeployActionInputs): string | undefined {
  if (i.image === undefined) return undefined;
  const ref = i.image.trim();
  if (/\s/.test(ref)) return `input "image" must not contain spaces, got ${JSON.stringify(ref)}`;
  // Without a tag, `version` is the tag: a manual redeploy names the version once.
  if (!imageTag(ref) && !ref.includes('@sha256:') && !i.version?.trim())
    return `input "image" needs a tag or digest (e.g. ${ref}:v1.4.2), or input "version" as its tag, got ${JSON.stringify(ref)}`;
  const v = i.version?.trim();
  if (!imageTag(ref) && !ref.includes('@sha256:') && v && !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(v))
    return `input "version" is the tag of the untagged image ${ref}, so it must be a Docker tag (letters, digits, _ . -), got ${JSON.stringify(v)}`;
  // The reference grammar (the one of src/build/tags.ts): a value like `--privileged=true:v1` never reaches a host.
  const [name, digest, ...rest] = ref.split('@');
  if (rest.length || (digest !== undefined && !/^sha256:[0-9a-f]{64}$/.test(digest)))
    return `input "image": the digest must be @sha256: and 64 lower-case hex digits, got ${JSON.stringify(ref)}`;
  const named = splitReference(imageTag(name!) ? name! : `${name}:latest`);
  if (!named.ok) return `input "image" is not an image reference (${named.error}), got ${JSON.stringify(ref)}`;
  return undefined;
}

export function registryCredentialsRule(i: DeployActionInputs): string | undefined {
  if (i['registry-username'] && !i['registry-password'])
    return 'input "registry-password" is required with "registry-username"';
  if (i['registry-password'] && !i['registry-username'])
    return 'input "registry-username" is required with "registry-password"';
  return undefined;
}

export function portsRule(i: DeployActionInputs): string[] {
  const issues: string[] = [];
  if (i['host-port'] !== undefined && i.port === undefined) issues.push('input "host-port" needs input "port"');
  const first = i['host-port'] ?? i.port;
  if (first !== undefined && first + i.replicas - 1 > 65535)
    issues.push(`input "replicas": ${i.replicas} replicas from host port ${first} go past 65535`);
  if (isIP(i['host-ip']) === 0)
    issues.push(`input "host-ip" must be an IP address, got ${JSON.stringify(i['host-ip'])}`);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(i['port-env']))
    issues.push(`input "port-env" must be an environment variable name, got ${JSON.stringify(i['port-env'])}`);
  if (i['network-mode'] === 'host' && i.port === undefined)
    issues.push('input "port" is required with network-mode host (each replica is told its port through port-env)');
  return issues;
}

export function restartPolicyRule(i: DeployActionInputs): string | undefined {
  if (!/^(no|always|unless-stopped|on-failure(:\d+)?)$/.test(i['restart-policy']))
    return `input "restart-policy" must be no, always, unless-stopped or on-failure[:N], got ${JSON.stringify(i['restart-policy'])}`;
  return undefined;
}

export function volumesRule(i: DeployActionInputs): string[] {
  const issues: string[] = [];
  for (const v of i.volumes ?? []) {
    const parts = v.split(':');
    if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]?.startsWith('/'))
      issues.push(`input "volumes": expected source:/target[:options], got ${JSON.stringify(v)}`);
    else if (parts[1].startsWith('/run/secrets'))
      issues.push(`input "volumes": /run/secrets is where secret-files are mounted, got ${JSON.stringify(v)}`);
  }
  return issues;
}

/** env-file lines cannot hold a newline, and a truncated secret is worse than an error. Names the key, never the value. */
export function secretEnvRule(i: DeployActionInputs): string[] {
  return (i['secret-env'] ?? [])
    .filter((e) => /[\r\n]/.test(e.value))
    .map(
      (e) =>
        `input "secret-env": the value of ${e.key} contains a newline (line ${e.line}); env files cannot carry one: use secret-files for multi-line secrets`,
    );
}

export function envOverlapRule(i: DeployActionInputs): string[] {
  const plain = new Set((i.env ?? []).map((e) => e.key));
  const issues = (i['secret-env'] ?? [])
    .filter((e) => plain.has(e.key))
    .map((e) => `input "secret-env": ${e.key} is also set in input "env"`);
  if (i['network-mode'] === 'host' && plain.has(i['port-env']))
    issues.push(`input "env": ${i['port-env']} is set per replica (port-env) with network-mode host`);
  return issues;
}

export function reservedLabelsRule(i: DeployActionInputs): string[] {
  return (i.labels ?? [])
    .filter((l) => l.key.startsWith('dyce.'))
    .map((l) => `input "labels": ${l.key}: labels starting with dyce. are Dyce's own`);
}

export function secretFileNamesRule(i: DeployActionInputs): string[] {
  return (i['secret-files'] ?? [])
    .filter((f) => f.key === '.' || f.key === '..' || f.key.includes('/'))
    .map((f) => `input "secret-files": invalid file name ${JSON.stringify(f.key)}`);
}

export function logOptionsRule(i: DeployActionInputs): string[] {
  const opts = i['log-options'] ?? [];
  const driver = i['log-driver']?.trim();
  if (!driver) return opts.length ? ['input "log-options" needs input "log-driver"'] : [];
  if (!/^[a-z0-9][a-z0-9_.:/-]*$/.test(driver))
    return [`input "log-driver": invalid driver name ${JSON.stringify(driver)}`];
  const allowed = allowedLogOptions(driver);
  if (!allowed) return [];
  return opts
    .filter((o) => !allowed.includes(o.key))
    .map(
      (o) =>
        `input "log-options": ${o.key} (line ${o.line}) is not an option of the ${driver} log driver${suggest(o.key, allowed)}`,
    );
}

export function commandRule(i: DeployActionInputs): string | undefined {
  if (i.command === undefined) return undefined;
  const r = splitCommand(i.command);
  return 'error' in r ? `input "command": ${r.error}` : undefined;
}

export function proxyRule(i: DeployActionInputs): string[] {
  const issues: string[] = [];
  if (!/^\/[\x21-\x7e]*$/.test(i['health-path']))
    issues.push(
      `input "health-path" must start with / and hold no blanks or control characters, got ${JSON.stringify(i['health-path'])}`,
    );
  const site = ['nginx-server-name', 'nginx-tls-cert', 'nginx-tls-key', 'nginx-static-dir'] as const;
  if (i.proxy !== 'nginx') {
    for (const k of site)
      if (i[k] !== undefined && (Array.isArray(i[k]) ? i[k].length > 0 : true))
        issues.push(`input "${k}" needs proxy: nginx`);
    return issues;
  }
  if (i.port === undefined)
    issues.push('input "port" is required with proxy: nginx (nginx proxies to each replica’s host port)');
  const first = i['host-port'] ?? i.port;
  if (first !== undefined && first + 2 * i.replicas - 1 > 65535)
    issues.push(
      `input "replicas": with proxy nginx, ${i.replicas} replicas use host ports ${first}..${first + 2 * i.replicas - 1}, past 65535`,
    );
  if (Boolean(i['nginx-tls-cert']) !== Boolean(i['nginx-tls-key']))
    issues.push('input "nginx-tls-cert" and input "nginx-tls-key" go together');
  if (!i['nginx-server-name']?.length)
    for (const k of ['nginx-tls-cert', 'nginx-tls-key', 'nginx-static-dir'] as const)
      if (i[k]) issues.push(`input "${k}" needs input "nginx-server-name" (it configures the site Dyce writes)`);
  for (const k of ['nginx-tls-cert', 'nginx-tls-key', 'nginx-static-dir'] as const) {
    const v = i[k];
    if (v !== undefined && (!/^\/[A-Za-z0-9._/@+-]*$/.test(v) || v.includes('..')))
      issues.push(`input "${k}" must be an absolute path of letters, digits and . _ / @ + -, got ${JSON.stringify(v)}`);
  }
  for (const n of i['nginx-server-name'] ?? [])
    if (!/^(_|[A-Za-z0-9*]([A-Za-z0-9*.-]*[A-Za-z0-9])?)$/.test(n))
      issues.push(`input "nginx-server-name": invalid server name ${JSON.stringify(n)}`);
  for (const k of ['nginx-http-listen', 'nginx-https-listen'] as const)
    if (!/^(\[[0-9a-fA-F:]+\]:|[0-9.]+:)?[0-9]{1,5}$/.test(i[k]))
      issues.push(`input "${k}" must be a port or address:port, got ${JSON.stringify(i[k])}`);
  return issues;
}

/** Inputs of the image deploy that mean nothing to a playbook: refused rather than silently ignored. */
const IMAGE_ONLY = [
  'name',
  'version',
  'registry',
  'registry-username',
  'registry-password',
  'port',
  'host-port',
  'env',
  'labels',
  'volumes',
  'command',
  'secret-env',
  'secret-files',
  'log-driver',
  'log-options',
  'nginx-server-name',
  'nginx-tls-cert',
  'nginx-tls-key',
  'nginx-static-dir',
  'serial',
] as const;

/** `image` (with `name`) or `playbook`, or both: the playbook first, then the image. */
export function imageOrPlaybookRule(i: DeployActionInputs): string[] {
  const playbook = i.playbook?.trim();
  if (!playbook) {
    const issues: string[] = [];
    if (i.image === undefined) issues.push('input "image" is required (or input "playbook" to run a playbook)');
    if (i.name === undefined) issues.push('input "name" is required');
    for (const k of ['extra-vars', 'secret-extra-vars'] as const)
      if (i[k]?.length) issues.push(`input "${k}" needs input "playbook"`);
    return issues;
  }
  if (i.image !== undefined) return i.name === undefined ? ['input "name" is required with input "image"'] : [];
  return IMAGE_ONLY.filter((k) => {
    const v = i[k];
    return v !== undefined && !(Array.isArray(v) && v.length === 0);
  }).map((k) => `input "${k}" is an input of the image deploy: it needs input "image" (the playbook does not use it)`);
}

export const deployRules: InputRule<typeof deployInputs>[] = [
  imageOrPlaybookRule,
  appNameRule,
  versionRule,
  hostsOrInventoryRule,
  imageRule,
  registryCredentialsRule,
  portsRule,
  restartPolicyRule,
  volumesRule,
  secretEnvRule,
  envOverlapRule,
  reservedLabelsRule,
  secretFileNamesRule,
  logOptionsRule,
  commandRule,
  proxyRule,
  serialRule,
  jumpHostRule,
  githubDeploymentRule,
];

/** GitHub deployments need both a token and an environment; a URL needs the environment. */
export function githubDeploymentRule(
  i: Pick<DeployActionInputs, 'github-token' | 'environment' | 'environment-url'>,
): string | undefined {
  if (i.environment?.trim() && !i['github-token'])
    return 'input "environment" needs input "github-token" (e.g. ${{ github.token }}, with permissions: deployments: write)';
  if (i['environment-url']?.trim() && !i.environment?.trim())
    return 'input "environment-url" needs input "environment"';
  return undefined;
}

export function serialRule(i: Pick<DeployInputs, 'serial'>): string | undefined {
  if (i.serial === undefined) return undefined;
  const r = parseSerial(i.serial);
  return 'error' in r ? `input "serial" ${r.error}` : undefined;
}

/** The jump-* key inputs also serve an inventory's ProxyJump, so they do not need `jump-host`. */
export function jumpHostRule(i: Pick<DeployInputs, 'jump-host'>): string | undefined {
  const spec = i['jump-host']?.trim();
  if (!spec) return undefined;
  const j = parseJumpSpec(spec);
  return 'error' in j ? `input "jump-host": ${j.error}` : undefined;
}

// ---- small pure helpers shared with the engine ----

/** The tag of an image ref, or undefined (a `:` after the last `/` is a tag; before it, a registry port). */
export function imageTag(ref: string): string | undefined {
  const noDigest = ref.split('@')[0]!;
  const lastSlash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > lastSlash ? noDigest.slice(colon + 1) || undefined : undefined;
}

/** The registry host of an image ref, or undefined for Docker Hub. */
export function imageRegistry(ref: string): string | undefined {
  const first = ref.split('/')[0]!;
  if (!ref.includes('/')) return undefined;
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : undefined;
}

/** The `command` input's words: split like Ansible splits a command (shlex), without a shell and with no expansion. */
export function splitCommand(text: string): { words: string[] } | { error: string } {
  return splitShellWords(text);
}

export function mapObject(entries: MapEntry[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries ?? []) out[e.key] = e.value;
  return out;
}

function suggest(key: string, allowed: readonly string[]): string {
  let best: string | undefined;
  let bestD = 3;
  for (const a of allowed) {
    const d = editDistance(key, a);
    if (d < bestD) {
      best = a;
      bestD = d;
    }
  }
  return best ? ` (did you mean ${best}?)` : ` (allowed: ${allowed.join(', ')})`;
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length]![b.length]!;
}
