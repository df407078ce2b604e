/**
 * The CLI as a user runs it: the esbuild bundle behind bin/dyce.js, in a child process.
 * A bundling mistake (a missing shim, a dependency left out) shows here and nowhere else.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { describeForCli } from '../../src/cli/help.js';
import { actionOutputText, JSON_DOCUMENT_SCHEMA, type JsonDocument, outputSchema } from '../../src/cli/json.js';
import { buildPushSpec } from '../../src/config/actions/build-push.js';
import { deploySpec } from '../../src/config/actions/deploy.js';
import { probeSpec } from '../../src/config/actions/probe.js';
import type { ActionSpec } from '../../src/config/input-spec.js';
import { runLocal } from '../../src/remote/local.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dyce = (...args: string[]) =>
  runLocal([process.execPath, `${root}bin/dyce.js`, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' },
  });

beforeAll(() => {
  execFileSync(process.execPath, [`${root}node_modules/tsx/dist/cli.mjs`, `${root}scripts/build.ts`, '--cli'], {
    stdio: 'inherit',
  });
}, 60_000);

/** A complete deploy command line (host port 1: a mistake that got through would fail fast, not hang). */
const B = ['--hosts', 'web1 ansible_host=127.0.0.1 ansible_port=1', '--image', 'app:v1', '--name', 'web'];
const BUILD = ['.', '--image', '127.0.0.1:5000/app'];
const URL1 = 'http://127.0.0.1:1/';

const usage = (command: string, ...issues: string[]) =>
  `error: dyce ${command}: invalid arguments (dyce ${command} --help lists every flag):\n${issues.map((i) => `  - ${i}\n`).join('')}`;

/**
 * Bad command lines, as users of ssh, ansible-playbook, docker, curl and kamal type them: each with the whole of what
 * dyce prints on standard error, and its exit code (2: bad input or usage, nothing touched; play keeps Ansible's 5).
 */
const BAD: [string, string[], string, number][] = [
  [
    'a singular for a plural',
    ['deploy', ...B, '--replica', '3'],
    usage('deploy', 'unknown flag --replica; did you mean --replicas?'),
    2,
  ],
  [
    "ansible's -i at deploy",
    ['deploy', ...B, '-i', 'hosts'],
    usage(
      'deploy',
      "-i is a flag of dyce play (ansible-playbook's --inventory), not of dyce deploy; did you mean --inventory?",
    ),
    2,
  ],
  [
    'a word after a switch',
    ['deploy', ...B, '--dry-run', 'maybe'],
    usage(
      'deploy',
      '--dry-run is a switch and takes no value, got "maybe": write --dry-run, --dry-run=true or --dry-run=false',
    ),
    2,
  ],
  ['yes for a boolean', ['deploy', ...B, '--json=yes'], usage('deploy', '--json must be true or false, got "yes"'), 2],
  [
    'a stray argument',
    ['deploy', ...B, 'stray'],
    usage('deploy', 'unexpected argument "stray": dyce deploy takes no arguments, only flags'),
    2,
  ],
  [
    'a secret as a flag value',
    ['deploy', ...B, '--registry-password', 'hunter2'],
    usage(
      'deploy',
      '--registry-password is a secret and cannot be given on the command line (every user of the machine can read argv); use DYCE_REGISTRY_PASSWORD=… in the environment, --registry-password-file PATH, or --registry-password-file - to read standard input',
    ),
    2,
  ],
  [
    "ssh's -p",
    ['deploy', ...B, '-p', '2222'],
    usage(
      'deploy',
      'unknown flag -p: dyce deploy has no short flags; the SSH port belongs to each host: --hosts "web1 ansible_host=203.0.113.7 ansible_port=2222"',
    ),
    2,
  ],
  [
    "ansible's --check",
    ['deploy', ...B, '--check'],
    usage('deploy', 'unknown flag --check; did you mean --dry-run?'),
    2,
  ],
  [
    "ansible's -C",
    ['deploy', ...B, '-C'],
    usage(
      'deploy',
      "-C is a flag of dyce play (ansible-playbook's --check), not of dyce deploy; did you mean --dry-run?",
    ),
    2,
  ],
  [
    "ansible's --forks",
    ['deploy', ...B, '--forks', '10'],
    usage('deploy', 'unknown flag --forks; did you mean --parallel?'),
    2,
  ],
  [
    "ansible's and docker's -e",
    ['deploy', ...B, '-e', 'FOO=bar'],
    usage(
      'deploy',
      "-e is a flag of dyce play (ansible-playbook's --extra-vars), not of dyce deploy; -e sets Ansible extra variables (--extra-vars, with --playbook) or, in docker run, the environment (--env)",
    ),
    2,
  ],
  [
    "ansible's --private-key",
    ['deploy', ...B, '--private-key', '/root/.ssh/id_ed25519'],
    usage('deploy', 'unknown flag --private-key; did you mean --ssh-private-key-file?'),
    2,
  ],
  ['a flag without its value', ['deploy', ...B, '--replicas'], usage('deploy', '--replicas needs a value'), 2],
  [
    'a word for a number',
    ['deploy', ...B, '--replicas', 'three'],
    usage('deploy', '--replicas must be a whole number, got "three"'),
    2,
  ],
  ['zero replicas', ['deploy', ...B, '--replicas', '0'], usage('deploy', '--replicas must be at least 1, got 0'), 2],
  [
    "docker's --restart",
    ['deploy', ...B, '--restart', 'always'],
    usage('deploy', 'unknown flag --restart; did you mean --restart-policy?'),
    2,
  ],
  [
    "docker's --publish",
    ['deploy', ...B, '--publish', '8080:80'],
    usage('deploy', 'unknown flag --publish; did you mean --port?'),
    2,
  ],
  [
    "docker's -v",
    ['deploy', ...B, '-v', '/data:/data'],
    usage(
      'deploy',
      "-v is a flag of dyce play (ansible-playbook's --verbose), not of dyce deploy; did you mean --volumes?",
    ),
    2,
  ],
  [
    "docker's --network",
    ['deploy', ...B, '--network', 'host'],
    usage('deploy', 'unknown flag --network; did you mean --network-mode?'),
    2,
  ],
  [
    "docker's --log-opt",
    ['deploy', ...B, '--log-opt', 'max-size=10m'],
    usage('deploy', 'unknown flag --log-opt; did you mean --log-options?'),
    2,
  ],
  [
    "ansible's --user",
    ['deploy', ...B, '--user', 'deploy'],
    usage(
      'deploy',
      'unknown flag --user; the SSH user belongs to each host: --hosts "web1 ansible_host=203.0.113.7 ansible_user=deploy"',
    ),
    2,
  ],
  [
    'a duration in two words',
    ['deploy', ...B, '--timeout', '5', 'minutes'],
    usage('deploy', 'unexpected argument "minutes": dyce deploy takes no arguments, only flags'),
    2,
  ],
  [
    'a duration that is none',
    ['deploy', ...B, '--timeout', 'forever'],
    usage(
      'deploy',
      '--timeout must be a duration like 500ms, 10s, 5m, 72h or 30d (a bare number means seconds), got "forever"',
    ),
    2,
  ],
  [
    "docker's --pull never",
    ['deploy', ...B, '--pull', 'never'],
    usage('deploy', '--pull must be one of missing, always, got "never"'),
    2,
  ],
  [
    'a flag given twice',
    ['deploy', ...B, '--replicas', '2', '--replicas', '3'],
    usage('deploy', '--replicas is given twice; give it once'),
    2,
  ],
  [
    'a value for a negated switch',
    ['deploy', ...B, '--no-dry-run=true'],
    usage('deploy', '--no-dry-run takes no value; write --dry-run=true or --dry-run=false'),
    2,
  ],
  [
    'no hosts',
    ['deploy', '--image', 'app:v1', '--name', 'web'],
    usage('deploy', '--hosts or --inventory is required (where to deploy)'),
    2,
  ],
  [
    "ssh's insecure habit",
    ['deploy', ...B, '--insecure'],
    usage('deploy', 'unknown flag --insecure; did you mean --insecure-skip-host-key-check?'),
    2,
  ],
  [
    "ansible-playbook's positional playbook",
    ['deploy', ...B, 'site.yml'],
    usage(
      'deploy',
      'unexpected argument "site.yml": dyce deploy takes no arguments; did you mean --playbook site.yml?',
    ),
    2,
  ],
  [
    '--host for --hosts',
    ['deploy', ...B, '--host', 'web1'],
    usage('deploy', 'unknown flag --host; did you mean --hosts?'),
    2,
  ],
  [
    "kamal's --destination",
    ['plan', ...B, '--destination', 'production'],
    usage('plan', 'unknown flag --destination'),
    2,
  ],
  [
    'an image for a rollback',
    ['rollback', ...B],
    usage(
      'rollback',
      "dyce rollback takes --image from the hosts' deploy history: drop it (to deploy a given version, use dyce deploy --version)",
    ),
    2,
  ],
  [
    'probe flags at deploy, every problem at once',
    ['deploy', ...B, '--attempts', '0', '--backoff', 'fast'],
    usage('deploy', 'unknown flag --attempts', 'unknown flag --backoff'),
    2,
  ],
  [
    'three problems in one run',
    ['deploy', '--replica', '3', '--image', 'app:v1', '--name', 'Web', '--dry-run', 'maybe'],
    usage(
      'deploy',
      'unknown flag --replica; did you mean --replicas?',
      '--dry-run is a switch and takes no value, got "maybe": write --dry-run, --dry-run=true or --dry-run=false',
      '--name must match [a-z0-9][a-z0-9_.-]* (lower-case letters, digits, _ . -), got "Web"',
      '--hosts or --inventory is required (where to deploy)',
    ),
    2,
  ],
  [
    "docker build's -t",
    ['build', ...BUILD, '-t', 'app:v1'],
    usage('build', "-t is a flag of dyce play (ansible-playbook's --tags), not of dyce build; did you mean --tags?"),
    2,
  ],
  [
    '--tag for --tags',
    ['build', ...BUILD, '--tag', 'v1'],
    usage('build', 'unknown flag --tag; did you mean --tags?'),
    2,
  ],
  [
    "docker's --build-arg",
    ['build', ...BUILD, '--build-arg', 'A=1'],
    usage('build', 'unknown flag --build-arg; did you mean --build-args?'),
    2,
  ],
  [
    'two build contexts',
    ['build', '.', './other', '--image', '127.0.0.1:5000/app'],
    usage('build', 'unexpected argument "./other": dyce build takes one CONTEXT'),
    2,
  ],
  [
    'a word after --push',
    ['build', ...BUILD, '--push', 'maybe'],
    usage('build', '--push is a switch and takes no value, got "maybe": write --push, --push=true or --push=false'),
    2,
  ],
  [
    "docker's --platform",
    ['build', ...BUILD, '--platform', 'linux/arm64'],
    usage('build', 'unknown flag --platform; did you mean --platforms?'),
    2,
  ],
  [
    "docker build's -f",
    ['build', ...BUILD, '-f', 'Dockerfile.prod'],
    usage('build', "-f is a flag of dyce play (ansible-playbook's --forks), not of dyce build; did you mean --file?"),
    2,
  ],
  [
    "kamal's --skip-push",
    ['build', ...BUILD, '--skip-push'],
    usage('build', 'unknown flag --skip-push; write --push=false'),
    2,
  ],
  [
    "docker login's --password",
    ['build', ...BUILD, '--password', 'hunter2'],
    usage('build', 'unknown flag --password; did you mean --registry-password-file?'),
    2,
  ],
  [
    "curl's -H",
    ['probe', URL1, '-H', 'Accept: json'],
    usage('probe', 'unknown flag -H: dyce probe has no short flags; did you mean --headers?'),
    2,
  ],
  [
    "curl's --retry",
    ['probe', URL1, '--retry', '3'],
    usage('probe', 'unknown flag --retry; did you mean --attempts?'),
    2,
  ],
  [
    "curl's -k",
    ['probe', URL1, '-k'],
    usage('probe', 'unknown flag -k: dyce probe has no short flags; did you mean --tls-insecure-skip-verify?'),
    2,
  ],
  [
    'two problems the probe finds in two places',
    ['probe', URL1, '--attempts', '0', '--backoff', 'fast'],
    usage(
      'probe',
      '--attempts must be at least 1, got 0',
      '--backoff must be a number of at least 1 (1 keeps the interval constant), got "fast"',
    ),
    2,
  ],
  [
    "curl's --max-time",
    ['probe', URL1, '--max-time', '5'],
    usage('probe', 'unknown flag --max-time; did you mean --timeout?'),
    2,
  ],
  [
    'a timeout twice',
    ['probe', URL1, '--timeout', '5', '--timeout', '6'],
    usage('probe', '--timeout is given twice; give it once'),
    2,
  ],
  ['no URL', ['probe', '--method', 'GET'], usage('probe', '--url is required'), 2],
  [
    "an ftp URL and curl's --data",
    ['probe', 'ftp://example.com/', '--data', 'x'],
    usage(
      'probe',
      'unknown flag --data; did you mean --body?',
      '--url: "ftp://example.com/" must start with http:// or https:// (or tcp://host:port)',
    ),
    2,
  ],
  [
    'too many lab hosts',
    ['lab', 'up', '--hosts', '12'],
    'error: dyce lab up:\n  - --hosts must be a whole number from 1 to 9, got "12"\n',
    2,
  ],
  [
    'a lab flag that is none',
    ['lab', 'status', '--verbose'],
    'error: dyce lab status: invalid arguments (dyce lab --help):\n  - unknown flag --verbose: dyce lab status takes no flags\n',
    2,
  ],
  [
    'an action-only input at the CLI',
    ['deploy', ...B, '--environment', 'production'],
    usage(
      'deploy',
      '--environment: GitHub deployments are recorded by the deploy action only (it knows the repository and the commit); drop it on the CLI',
    ),
    2,
  ],
  ['a misspelt command', ['deploi'], 'dyce: unknown command "deploi"; did you mean "deploy"?\n', 2],
  [
    'help for a misspelt command',
    ['help', 'deploi'],
    'dyce help: unknown command "deploi"; did you mean "deploy"?\n',
    2,
  ],
  ['a playbook without an inventory', ['play', 'site.yml'], 'error: give an inventory with -i FILE\n', 5],
];

describe('dyce CLI: bad command lines', () => {
  it('has a table of at least 40 cases', () => {
    expect(BAD.length).toBeGreaterThanOrEqual(40);
  });

  it.concurrent.each(BAD)('%s', async (_what, args, message, code) => {
    const r = await dyce(...args);
    expect(r.stdout).toBe(code === 5 || args[0] === 'deploi' || args[0] === 'help' ? r.stdout : '');
    // Usage text may follow (the overview after an unknown command, play's usage); the message comes first, whole.
    expect(r.stderr.startsWith(message), `${r.stderr}\n--- expected to start with ---\n${message}`).toBe(true);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    expect(r.code).toBe(code);
  });

  it('does not echo a refused secret', async () => {
    const r = await dyce('deploy', ...B, '--registry-password', 'planted-secret-9f3');
    expect(r.stderr).toContain('--registry-password is a secret');
    expect(r.stderr + r.stdout).not.toContain('planted-secret-9f3');
  });
});

const SPECS: [string, ActionSpec][] = [
  ['deploy', deploySpec as ActionSpec],
  ['plan', deploySpec as ActionSpec],
  ['rollback', deploySpec as ActionSpec],
  ['build', buildPushSpec as ActionSpec],
  ['probe', probeSpec as ActionSpec],
];

describe('dyce CLI: help, version', () => {
  it.each(SPECS)('dyce %s --help lists every flag with its type, default and the exit codes', async (cmd, spec) => {
    const r = await dyce(cmd, '--help');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    for (const [name, f] of Object.entries(spec.inputs)) {
      const head = f.meta.secret
        ? `  --${name}-file PATH|-\n`
        : f.kind === 'boolean'
          ? `  --${name}, --no-${name}\n`
          : `  --${name} `;
      expect(r.stdout, name).toContain(head);
      // Its block: the head line, then the description, wrapped; the default and the type's syntax at its end.
      const block = r.stdout
        .slice(r.stdout.indexOf(head))
        .split(/\n {2}--|\n\n/)[0]!
        .replace(/\s+/g, ' ');
      const flat = (s: string) => s.replace(/\s+/g, ' ').replace(/`/g, '');
      expect(block).toContain(flat(describeForCli(f.meta.description, new Set(Object.keys(spec.inputs)))).slice(0, 40));
      if (f.meta.default && f.meta.default !== '') expect(block, name).toContain(`default: ${flat(f.meta.default)}`);
      if (f.kind === 'duration') expect(block, name).toContain('a bare number is seconds');
    }
    expect(r.stdout).toMatch(/\nWhere to deploy:|\nImage, tags and registry:|\nRequest:/);
    expect(r.stdout).toContain('  --json\n');
    expect(r.stdout).toContain('Exit status:\n  0  success, or nothing to do\n  1  failed\n  2  bad input or usage');
    if (cmd === 'deploy' || cmd === 'rollback') expect(r.stdout).toContain('  3  rolled back');
  });

  it('dyce help <command> is dyce <command> --help', async () => {
    const [a, b] = await Promise.all([dyce('help', 'deploy'), dyce('deploy', '--help')]);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
  });

  it.each(['play', 'lab'])('dyce %s --help exits 0', async (cmd) => {
    const r = await dyce(cmd, '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/usage/i);
  });

  it('prints the command list and the exit codes for dyce --help, and exits 2 without a command', async () => {
    const r = await dyce('--help');
    expect(r.code).toBe(0);
    for (const c of ['lab up', 'build', 'deploy', 'plan', 'probe', 'play']) expect(r.stdout).toContain(`dyce ${c}`);
    expect(r.stdout).toContain('3 rolled back');
    const none = await dyce();
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('usage: dyce <command>');
  });

  it('dyce --version prints the package version', async () => {
    const { version } = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await dyce(flag);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`dyce ${version}\n`);
    }
  });
});

/** Validates a `--json` document: the envelope, then the command's outputs. Returns the document. */
function checkJson(stdout: string, command: string): JsonDocument {
  const lines = stdout.trim().split('\n');
  expect(lines, stdout).toHaveLength(1);
  const doc = JSON.parse(lines[0]!) as JsonDocument;
  const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
  const envelope = ajv.compile(JSON_DOCUMENT_SCHEMA);
  expect(envelope(doc), JSON.stringify(envelope.errors)).toBe(true);
  const outputs = ajv.compile(outputSchema(command)!);
  if (Object.keys(doc.outputs).length) expect(outputs(doc.outputs), JSON.stringify(outputs.errors)).toBe(true);
  expect(doc.command).toBe(command);
  return doc;
}

describe('dyce --json: one typed document for every command', () => {
  it('the schemas reject what they must (a string for a boolean, JSON in a string, a missing field)', () => {
    const ajv = new Ajv2020({ strict: true, allowUnionTypes: true });
    const envelope = ajv.compile(JSON_DOCUMENT_SCHEMA);
    const deploy = ajv.compile(outputSchema('deploy')!);
    const good = { schema: 'dyce/v1', command: 'deploy', success: false, exitCode: 1, outputs: {} };
    expect(envelope(good)).toBe(true);
    expect(envelope({ ...good, success: 'false' })).toBe(false);
    expect(envelope({ ...good, schema: 'dyce/v2' })).toBe(false);
    expect(envelope({ command: 'deploy', success: true, exitCode: 0, outputs: {} })).toBe(false);
    expect(deploy({ success: true, 'host-states': '{"web1":{"state":"ok"}}' })).toBe(false);
    expect(deploy({ success: true, 'failed-hosts': 'web1,web2' })).toBe(false);
    expect(deploy({ success: true, 'failed-hosts': ['web1'], 'host-states': { web1: { state: 'failed' } } })).toBe(
      true,
    );
  });

  it.each([
    ['deploy', [...B, '--replica', '3'], ['unknown flag --replica; did you mean --replicas?']],
    ['plan', [...B, '--dry-run=maybe'], ['--dry-run must be true or false, got "maybe"']],
    [
      'rollback',
      ['--hosts', 'web1 ansible_host=127.0.0.1', '--name', 'web', 'x'],
      ['unexpected argument "x": dyce rollback takes no arguments, only flags'],
    ],
    ['build', [...BUILD, '--tag', 'v1'], ['unknown flag --tag; did you mean --tags?']],
    ['probe', [URL1, '--attempts', '0'], ['--attempts must be at least 1, got 0']],
  ])('dyce %s --json on bad input: an error object, exit 2', async (command, args, issues) => {
    const r = await dyce(command, ...args, '--json');
    expect(r.code).toBe(2);
    const doc = checkJson(r.stdout, command);
    expect(doc).toMatchObject({ success: false, exitCode: 2, outputs: {} });
    expect(doc.error).toEqual({
      kind: 'usage',
      message: `dyce ${command}: invalid arguments (dyce ${command} --help lists every flag)`,
      issues,
      details: [],
    });
  });

  it('dyce probe --json: native numbers, booleans and arrays; an error object when it fails', async () => {
    const server = createServer((q, res) => {
      res.writeHead(q.url === '/down' ? 503 : 200, { 'content-type': 'application/json' });
      res.end('{"status":"UP"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const ok = await dyce('probe', `${origin}/`, '--json');
      expect(ok.code, ok.stderr).toBe(0);
      const doc = checkJson(ok.stdout, 'probe');
      expect(doc).toMatchObject({ success: true, exitCode: 0, outputs: { success: true, 'status-code': 200 } });
      expect(doc.error).toBeUndefined();
      expect(doc.outputs.results).toEqual([expect.objectContaining({ url: `${origin}/`, success: true })]);
      const down = await dyce('probe', `${origin}/down`, '--json');
      expect(down.code).toBe(1);
      const failed = checkJson(down.stdout, 'probe');
      expect(failed).toMatchObject({ success: false, exitCode: 1, outputs: { success: false, 'status-code': 503 } });
      expect(failed.error?.kind).toBe('failed');
      expect(failed.error?.message).toBe('probe failed: 1 of 1 URL');
      expect(failed.error?.details.join('\n')).toContain('503');
    } finally {
      server.close();
    }
  });

  it('dyce deploy --json when the host cannot be reached: failed-hosts is an array, host-states an object', async () => {
    const r = await dyce(
      'deploy',
      '--hosts',
      'web1 ansible_host=127.0.0.1 ansible_port=1\nweb2 ansible_host=127.0.0.1 ansible_port=1',
      '--image',
      'app:v1',
      '--name',
      'web',
      '--insecure-skip-host-key-check',
      '--json',
    );
    expect(r.code, r.stderr).toBe(1);
    const doc = checkJson(r.stdout, 'deploy');
    expect(doc.error?.kind).toBe('failed');
    expect(doc.outputs).toMatchObject({ success: false, 'failed-hosts': ['web1', 'web2'] });
    const states = doc.outputs['host-states'] as Record<string, { state: string; error: string }>;
    expect(states.web1!.state).toBe('failed');
    // In the CLI's terms: the key comes from a file (or DYCE_SSH_PRIVATE_KEY), never a flag value.
    expect(states.web1!.error).toContain('--ssh-private-key-file');
    expect(doc.error?.details.join('\n')).toContain('--ssh-private-key-file');
  });
});

describe('actionOutputText', () => {
  it('turns a typed output back into the action text (lists joined as the action writes them)', () => {
    expect(actionOutputText('failed-hosts', [])).toBe('');
    expect(actionOutputText('failed-hosts', ['web1', 'web2'])).toBe('web1,web2');
    expect(actionOutputText('tags', ['reg/app:v1', 'reg/app:latest'])).toBe('reg/app:v1\nreg/app:latest');
    expect(actionOutputText('success', false)).toBe('false');
    expect(actionOutputText('host-states', { web1: { state: 'ok' } })).toBe('{"web1":{"state":"ok"}}');
  });
});
