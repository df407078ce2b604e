import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployRules, deploySpec } from '../../../src/config/actions/deploy.js';
import { parseInputs, type RawInputs } from '../../../src/config/input-spec.js';
import { runDeployInputs } from '../../../src/deploy/entry.js';
import { inlineSecretWarnings, runDeployPlaybook } from '../../../src/deploy/playbook.js';
import { RecordingReporter } from '../../../src/github/reporter.js';
import { InputError, UserError } from '../../../src/util/errors.js';
import { MELTON_PLAYBOOK } from '../../support/melton.js';

/**
 * The deploy action's `playbook:` path on this machine (`ansible_connection=local`): the tasks here run no
 * command, so nothing on the machine changes. Against the lab: test/lab/deploy-playbook.test.ts.
 */
const dir = mkdtempSync(join(tmpdir(), 'dyce-deploy-pb-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

const SECRET = 'planted-S3cret-value';
const playbook = file(
  'site.yml',
  `- hosts: all
  gather_facts: false
  tasks:
    - name: Check the vars
      assert:
        that:
          - REGISTRY == "reg:5000"
          - DOCKER_TAG == "v2"
          - DOCKER_PASSWORD == "${SECRET}"
          - replicas | int == 3
    - name: Something that changes
      debug:
        msg: "tag {{ DOCKER_TAG }}"
      changed_when: true
`,
);

function inputs(raw: RawInputs) {
  return parseInputs(
    deploySpec,
    { hosts: 'here ansible_connection=local', playbook, 'insecure-skip-host-key-check': 'false', ...raw },
    deployRules,
  );
}

describe('deploy with playbook:', () => {
  it('runs the playbook with extra vars (secret ones win, masked first) and writes changed, recap, host states', async () => {
    const reporter = new RecordingReporter();
    const r = await runDeployInputs(
      inputs({
        'extra-vars': `REGISTRY=reg:5000 DOCKER_TAG=v1\n{"replicas": 3}\n@${file('vars.yml', 'DOCKER_TAG: v2\n')}`,
        'secret-extra-vars': `DOCKER_PASSWORD=${SECRET}\nREGISTRY=reg:5000`,
      }),
      reporter,
    );
    expect(r.deploy).toBeUndefined();
    expect(r.changed).toBe(true);
    expect(reporter.secrets).toContain(SECRET);
    expect(reporter.outputs.changed).toBe('true');
    expect(JSON.parse(reporter.outputs.recap!)).toEqual({
      here: { ok: 2, changed: 1, unreachable: 0, failed: 0, skipped: 0, rescued: 0, ignored: 0 },
    });
    expect(JSON.parse(reporter.outputs['host-states']!)).toEqual({ here: { state: 'changed' } });
    expect(reporter.outputs['failed-hosts']).toBe('');
    expect(reporter.lines.join('\n')).toMatch(/TASK \[Something that changes\][\s\S]*changed: \[here\]/);
    expect(reporter.lines.join('\n')).toMatch(/here\s+: ok=2\s+changed=1/);
    expect(reporter.summaries.join('\n')).toContain('| here | 2 | 1 | 0 | 0 | 0 | 0 |');
  });

  it('a failing task fails the step, with the recap and failed-hosts written', async () => {
    const reporter = new RecordingReporter();
    const error = await runDeployPlaybook(
      inputs({
        'extra-vars': 'REGISTRY=other DOCKER_TAG=v2 replicas=3',
        'secret-extra-vars': `DOCKER_PASSWORD=${SECRET}`,
      }),
      reporter,
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toContain(`playbook ${playbook} failed on 1 host: here`);
    expect(JSON.parse(reporter.outputs.recap!).here).toMatchObject({ ok: 0, failed: 1 });
    expect(reporter.outputs['failed-hosts']).toBe('here');
    expect(reporter.outputs.changed).toBe('false');
  });

  it('an undefined variable is refused before any host is touched, naming file:line', async () => {
    const reporter = new RecordingReporter();
    const error = await runDeployPlaybook(inputs({}), reporter).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).issues.join('\n')).toMatch(/site\.yml:13: .*'DOCKER_TAG' is undefined/);
    expect(reporter.outputs.recap).toBe('{}');
    expect(reporter.lines.join('\n')).not.toContain('TASK [');
  });

  it('dry-run is check mode', async () => {
    const reporter = new RecordingReporter();
    const o = await runDeployPlaybook(
      inputs({
        'extra-vars': 'REGISTRY=reg:5000 DOCKER_TAG=v2 replicas=3',
        'secret-extra-vars': `DOCKER_PASSWORD=${SECRET}`,
        'dry-run': 'true',
      }),
      reporter,
    );
    expect(o.check).toBe(true);
    expect(reporter.summaries.join('\n')).toContain('(check mode: nothing changed)');
  });

  it('a cancelled run (SIGTERM, timeout) stops before the next task', async () => {
    const reporter = new RecordingReporter();
    const controller = new AbortController();
    controller.abort('SIGTERM received');
    const error = await runDeployPlaybook(
      inputs({
        'extra-vars': 'REGISTRY=reg:5000 DOCKER_TAG=v2 replicas=3',
        'secret-extra-vars': `DOCKER_PASSWORD=${SECRET}`,
      }),
      reporter,
      { signal: controller.signal },
    ).catch((e: unknown) => e);
    expect((error as UserError).message).toContain('stopped before its next task: SIGTERM received');
    expect(reporter.lines.join('\n')).not.toContain('TASK [');
  });

  it('a run that matches no host fails (a typo in limit is not a green deploy)', async () => {
    const reporter = new RecordingReporter();
    const error = await runDeployPlaybook(inputs({ limit: 'web' }), reporter).catch((e: unknown) => e);
    expect((error as UserError).message).toBe(
      `playbook ${playbook} ran on no host: no host of the inventory matches its plays' hosts and limit "web"`,
    );
    expect(reporter.outputs.recap).toBe('{}');
  });

  it('names the extra-vars line that is not an -e argument', async () => {
    const error = await runDeployPlaybook(
      inputs({ 'extra-vars': 'REGISTRY=reg:5000\nDOCKER_TAG: v2' }),
      new RecordingReporter(),
    ).catch((e: unknown) => e);
    expect((error as UserError).message).toBe('input "extra-vars" line 2: expected key=value, got "DOCKER_TAG:"');
  });

  it('warns about a secret-looking name given in extra-vars, never printing its value', () => {
    expect(inlineSecretWarnings(['DOCKER_PASSWORD=x A=1', '{"api_token": "t"}', '@secrets.yml'])).toEqual([
      'extra var DOCKER_PASSWORD looks secret and was given in extra-vars, where it can be read (workflow file, process list): give it in secret-extra-vars',
      'extra var api_token looks secret and was given in extra-vars, where it can be read (workflow file, process list): give it in secret-extra-vars',
    ]);
  });
});

describe('deploy with playbook: bad playbooks and inventories touch no host', () => {
  // The host is a local TCP listener standing in for sshd: it counts connections (and drops them).
  let server: Server;
  let connections = 0;
  let hosts = '';
  beforeAll(async () => {
    server = createServer((sock) => {
      connections++;
      sock.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    hosts = `indenwolken ansible_host=127.0.0.1 ansible_port=${(server.address() as { port: number }).port} ansible_user=root`;
  });
  afterAll(() => server.close());

  const melton = readFileSync(MELTON_PLAYBOOK, 'utf8');
  const vars = {
    'extra-vars': 'REGISTRY=r:5000 DOCKER_TAG=v1 DOCKER_USERNAME=u',
    'secret-extra-vars': 'DOCKER_PASSWORD=pw-1234',
  };
  const run = async (name: string, text: string, over: RawInputs = {}) => {
    const d = join(dir, name.replace(/\W+/g, '-'));
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'playbook.yml'), text);
    const before = connections;
    const error = await runDeployPlaybook(
      parseInputs(
        deploySpec,
        {
          hosts,
          playbook: join(d, 'playbook.yml'),
          // A well-formed key no host knows: the connection is tried (and dropped by the listener).
          'ssh-private-key': generateKeyPairSync('rsa', {
            modulusLength: 2048,
            privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
            publicKeyEncoding: { type: 'pkcs1', format: 'pem' },
          }).privateKey,
          'insecure-skip-host-key-check': 'true',
          timeout: '20s',
          ...vars,
          ...over,
        },
        deployRules,
      ),
      new RecordingReporter(),
    ).catch((e: unknown) => e);
    return { error: error as Error, connections: connections - before };
  };

  it('control: the unchanged Melton playbook does reach for the host', async () => {
    const r = await run('control', melton);
    expect(r.connections).toBeGreaterThan(0);
    expect(r.error.message).toContain('failed on 1 host: indenwolken');
  }, 30_000);

  it.each([
    [
      'an unknown module',
      melton.replace('docker_image:', 'docker_imagez:'),
      {},
      /playbook\.yml:25: unknown module or task keyword "docker_imagez"/,
    ],
    [
      'an unknown filter',
      melton.replace('{{ base_port + item | int }}', '{{ base_port + item | integer }}'),
      {},
      /playbook\.yml:35: unknown filter "integer"/,
    ],
    [
      'an undefined variable',
      melton,
      { 'secret-extra-vars': '' },
      /playbook\.yml:22: .*'DOCKER_PASSWORD' is undefined/,
    ],
    ['bad YAML', melton.replace('  vars:', '  vars: [oops'), {}, /playbook\.yml:\d+: invalid YAML/],
    [
      'a bad inventory',
      melton,
      { hosts: 'indenwolken ansible_host=127.0.0.1 ansible_port=notaport' },
      /hosts:1: host "indenwolken": ansible_port: must be a whole number/,
    ],
    [
      'a when that is not an expression',
      melton.replace('      loop: [', '      when: "x = = 1"\n      loop: ['),
      {},
      /playbook\.yml:16: when is not an expression/,
    ],
  ] as const)('%s: refused with file:line, no connection', async (name, text, over, message) => {
    const r = await run(name, text, over);
    expect(r.error).toBeInstanceOf(InputError);
    expect([r.error.message, ...(r.error as InputError).issues].join('\n')).toMatch(message);
    expect(r.connections).toBe(0);
  });
});
