import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deployRules, deploySpec } from '../../../src/config/actions/deploy.js';
import { parseInputs, type RawInputs } from '../../../src/config/input-spec.js';
import { inlineSecretWarnings, runDeployInputs, runDeployPlaybook } from '../../../src/deploy/playbook.js';
import { RecordingReporter } from '../../../src/github/reporter.js';
import { InputError, UserError } from '../../../src/util/errors.js';

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

  it('warns about a secret-looking name given in extra-vars, never printing its value', () => {
    expect(inlineSecretWarnings(['DOCKER_PASSWORD=x A=1', '{"api_token": "t"}', '@secrets.yml'])).toEqual([
      'extra var DOCKER_PASSWORD looks secret and was given in extra-vars, where it can be read (workflow file, process list): give it in secret-extra-vars',
      'extra var api_token looks secret and was given in extra-vars, where it can be read (workflow file, process list): give it in secret-extra-vars',
    ]);
  });
});
