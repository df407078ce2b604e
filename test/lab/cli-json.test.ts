/**
 * `dyce <command> --json` against the lab: each document checked against the published schema (envelope and the
 * command's outputs), through plan (its steps), deploy, a rollout that rolls back (exit 3), and a rollback.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, describe, expect, it } from 'vitest';
import { JSON_DOCUMENT_SCHEMA, type JsonDocument, outputSchema } from '../../src/cli/json.js';
import { labSecrets, nginxAppFlags, removeNginxApp, runDyce } from '../support/dyce-cli.js';
import { host, lab, uniqueName } from '../support/lab.js';

const env = lab();
const vps2 = host(env, 'vps2');
const app = uniqueName('json');
const hostPort = 25_000 + 10 * Math.floor(Math.random() * 200);
const flags = (over: Record<string, string>) => ({
  ...nginxAppFlags(env, vps2, { name: app, serverName: `${app}.lab.test`, hostPort }),
  'drain-timeout': '1s',
  ...over,
});
const image = (tag: string) => `${env.sampleApp.image}:${tag}`;

const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
const envelope = ajv.compile(JSON_DOCUMENT_SCHEMA);

async function dyceJson(
  command: string,
  over: Record<string, string>,
): Promise<{ code: number; doc: JsonDocument; stderr: string }> {
  const r = await runDyce(command, flags(over), labSecrets(env));
  const lines = r.stdout.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  const doc = JSON.parse(lines[0]!) as JsonDocument;
  expect(envelope(doc), JSON.stringify(envelope.errors)).toBe(true);
  const outputs = ajv.compile(outputSchema(command)!);
  expect(outputs(doc.outputs), JSON.stringify(outputs.errors)).toBe(true);
  expect(doc).toMatchObject({ command, exitCode: r.code, success: r.code === 0 });
  return { code: r.code, doc, stderr: r.stderr };
}

afterAll(() => removeNginxApp(vps2, app));

describe('dyce --json in the lab', () => {
  it('plan lists its steps; deploy, a rolled-back deploy (exit 3) and a rollback print typed outputs', {
    timeout: 240_000,
  }, async () => {
    const plan = await dyceJson('plan', { image: image('v1') });
    expect(plan.code).toBe(0);
    const steps = (
      plan.doc.outputs.plan as { host: string; changed: boolean; steps: { kind: string; replica: string }[] }[]
    )[0]!;
    expect(steps).toMatchObject({ host: 'vps2', changed: true });
    expect(steps.steps.map((s) => [s.kind, s.replica])).toEqual([
      ['create', `${app}1`],
      ['create', `${app}2`],
    ]);

    const v1 = await dyceJson('deploy', { image: image('v1') });
    expect(v1.code).toBe(0);
    expect(v1.doc.outputs).toMatchObject({ success: true, changed: true, 'rolled-back': false, 'failed-hosts': [] });
    expect(v1.doc.outputs['host-states']).toEqual({ vps2: { state: 'changed' } });

    const again = await dyceJson('plan', { image: image('v1') });
    expect((again.doc.outputs.plan as { changed: boolean }[])[0]!.changed).toBe(false);

    const bad = await dyceJson('deploy', { image: image('never-healthy'), 'health-deadline': '3s' });
    expect(bad.code).toBe(3);
    expect(bad.doc.error?.kind).toBe('rolled-back');
    expect(bad.doc.outputs).toMatchObject({ success: false, 'rolled-back': true, 'failed-hosts': ['vps2'] });
    // The gate is not silent while it waits: its state every second of a 3 s deadline (check, what it saw, time left).
    const waits = bad.stderr.split('\n').filter((l) => l.includes('waiting for health'));
    expect(waits.length, bad.stderr).toBeGreaterThanOrEqual(1);
    expect(waits[0]).toMatch(
      new RegExp(
        `^vps2: ${app}\\d[^:]*: waiting for health: check \\d+ saw HTTP 503: "unhealthy never-healthy", [\\d.]+m?s left$`,
      ),
    );
    expect(bad.stderr).toContain('did not become healthy within 3s');

    const v2 = await dyceJson('deploy', { image: image('v2') });
    expect(v2.code).toBe(0);
    const back = await dyceJson('rollback', {});
    expect(back.code).toBe(0);
    expect(back.doc.outputs).toMatchObject({ success: true, version: 'v1' });
  });
});
