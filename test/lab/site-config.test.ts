import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runLocal } from '../../src/remote/local.js';
import { tempDir } from '../support/lab.js';
import {
  ansiblePlaybook,
  copyPlaybooks,
  dyceAccepts,
  dycePlay,
  mutate,
  PLAYBOOKS,
  renderPlaybook,
} from '../support/site.js';
import { makeCa } from '../support/site-lab.js';

/**
 * playbooks/ (issue #17) before any VPS: both tools accept site.yml, and what the roles' templates render is accepted
 * by the programs that read it (nginx -t, promtool, amtool, blackbox_exporter --config.check, JSON). Each check is
 * shown to fail on a broken copy first.
 */

const dir = tempDir('dyce-site-config-');
const INVENTORY = join(PLAYBOOKS, 'inventory.example.ini');
const TOKEN = '987654:planted-bot-token-Zq9';
const vars = (tlsDir: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    ingress_tls_dir: tlsDir,
    ingress_listen_ipv6: false,
    ingress_static_dir: '/srv/site-test/static',
    app_replicas: 3,
    app_host_port: 9101,
    monitoring_probe_urls: ['https://app.example.test/api/', 'https://app.example.test/'],
    monitoring_alert_for: '42s',
    monitoring_telegram_api_url: 'http://127.0.0.1:9/telegram',
    monitoring_telegram_bot_token: TOKEN,
    monitoring_telegram_chat_id: '-100777',
    ...extra,
  });

let tlsDir = '';

beforeAll(() => {
  // nginx -t reads the certificate and key the site names.
  tlsDir = join(dir, 'tls');
  mkdirSync(tlsDir);
  const pki = makeCa(tlsDir, ['127.0.0.1']);
  copyFileSync(pki.cert, join(tlsDir, 'dyce-app.crt'));
  copyFileSync(pki.key, join(tlsDir, 'dyce-app.key'));
});

/** A copy of playbooks/ in DIR/NAME with FROM replaced by TO in ROLE's tasks; returns the copy's site.yml. */
function brokenSite(name: string, role: string, from: string, to: string): string {
  const copy = copyPlaybooks(join(dir, name));
  mutate(join(copy, 'roles', role, 'tasks', 'main.yml'), from, to);
  return join(copy, 'site.yml');
}

describe('site.yml is accepted by both tools', () => {
  it('ansible-playbook --syntax-check accepts site.yml and refuses a broken role', async () => {
    const ok = await ansiblePlaybook(['--syntax-check', '-i', INVENTORY, join(PLAYBOOKS, 'site.yml')]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);

    const broken = brokenSite('broken-syntax', 'firewall', '  ufw:\n    state: enabled', '  ufw:\n  state: enabled');
    const bad = await ansiblePlaybook(['--syntax-check', '-i', INVENTORY, broken]);
    expect(bad.code).not.toBe(0);
  });

  it('dyce play --syntax-check accepts site.yml, or refuses only modules still to come', async () => {
    const r = await dycePlay(['--syntax-check', '-i', INVENTORY, join(PLAYBOOKS, 'site.yml')]);
    // While the host modules land (issue #16), the only problems allowed are these known gaps, by name: modules
    // still to come, copy's `validate`, and handlers not found because their module is one of those.
    const problems = r.stderr.split('\n').filter((l) => /^\s+- /.test(l));
    const pending = [
      /unknown module or task keyword "(command|copy|template|service|file|user|authorized_key|ufw)"/,
      /(copy|template): unsupported parameter "validate"/,
      /notify: no handler named "(restart docker|restart loki|reload nginx|restart blackbox_exporter|reload prometheus|reload alertmanager)"/,
    ];
    expect(r.code === 0 || problems.length > 0, r.stderr).toBe(true);
    expect(problems.filter((l) => !pending.some((p) => p.test(l)))).toEqual([]);

    // A mistake in a role is found through the play's roles:, with its file and line.
    const broken = brokenSite('broken-dyce', 'app', '  loop_control:\n', '  loop_contrl:\n');
    const bad = await dycePlay(['--syntax-check', '-i', INVENTORY, broken]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/roles\/app\/tasks\/main\.yml:\d+:.*loop_contrl/);
  });
});

/** Renders every role template with ansible-playbook into OUT; returns the files by name. */
async function renderWithAnsible(playbooks: string, out: string, extra: Record<string, unknown> = {}) {
  mkdirSync(out, { recursive: true });
  const file = join(out, '..', `${out.split('/').pop()}-render.yml`);
  writeFileSync(file, renderPlaybook(playbooks, out));
  const r = await ansiblePlaybook(['-i', 'localhost,', file, '-e', vars(tlsDir, extra)]);
  expect(r.stdout + r.stderr).not.toContain(TOKEN);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  const read = (n: string) => readFileSync(join(out, n), 'utf8');
  return read;
}

async function nginxTest(siteFile: string): Promise<{ code: number; out: string }> {
  const conf = join(dir, `nginx-${Math.random().toString(36).slice(2)}.conf`);
  writeFileSync(
    conf,
    `error_log ${dir}/nginx-error.log;\npid ${dir}/nginx.pid;\nevents {}\nhttp {\n  access_log off;\n  include ${siteFile};\n}\n`,
  );
  const r = await runLocal(['nginx', '-t', '-p', `${dir}/`, '-c', conf]);
  return { code: r.code, out: r.stdout + r.stderr };
}

describe('the roles render configurations their programs accept', () => {
  it('ingress: nginx -t accepts the site; it proxies to an upstream of every replica port, 301s HTTP, hides tokens', async () => {
    const out = join(dir, 'render-ok');
    const read = await renderWithAnsible(PLAYBOOKS, out);
    const site = read('site.conf');
    const t = await nginxTest(join(out, 'site.conf'));
    expect(t.out).toMatch(/test is successful/);
    expect(t.code).toBe(0);
    expect(site.match(/^\s*server 127\.0\.0\.1:(\d+) /gm)?.map((l) => l.trim().split(/[ :]/)[2])).toEqual([
      '9101',
      '9102',
      '9103',
    ]);
    expect(site).toMatch(/location \/ \{\s*return 301 https:\/\/\$host\$request_uri;/);
    expect(site).toMatch(/listen 443 ssl/);
    expect(site).toMatch(/location \/static\/ \{\s*alias \/srv\/site-test\/static\/;/);
    expect(site).toMatch(/proxy_next_upstream error timeout/);
    expect(site.match(/server_tokens off;/g)).toHaveLength(2);

    // The same check notices a broken site.
    const broken = join(dir, 'broken-site.conf');
    writeFileSync(broken, site.replace('proxy_next_upstream_tries 0;', 'proxy_next_upstream_tries;'));
    expect((await nginxTest(broken)).code).not.toBe(0);
  });

  it("monitoring: promtool, amtool and blackbox_exporter accept the files; Melton's relabelling, rule and resolved messages", async () => {
    const out = join(dir, 'render-mon');
    const read = await renderWithAnsible(PLAYBOOKS, out);
    const check = async (argv: string[]) => (await runLocal(argv)).code;
    expect(await check(['promtool', 'check', 'rules', join(out, 'rules.yml')])).toBe(0);
    expect(await check(['promtool', 'check', 'config', '--syntax-only', join(out, 'prometheus.yml')])).toBe(0);
    expect(await check(['amtool', 'check-config', join(out, 'alertmanager.yml')])).toBe(0);
    expect(
      await check(['prometheus-blackbox-exporter', '--config.check', `--config.file=${join(out, 'blackbox.yml')}`]),
    ).toBe(0);

    const rules = read('rules.yml');
    expect(rules).toMatch(/expr: probe_success == 0\n\s*for: 42s\n/);
    expect(rules).toContain('summary: "Endpoint {{ $labels.instance }} is down"');
    const prom = read('prometheus.yml');
    expect(prom).toContain('- "https://app.example.test/api/"');
    expect(prom).toMatch(
      /- source_labels: \[__address__\]\s+target_label: __param_target\s+- source_labels: \[__param_target\]\s+target_label: instance\s+- target_label: __address__\s+replacement: 127\.0\.0\.1:9115/,
    );
    const am = read('alertmanager.yml');
    expect(am).toContain('api_url: "http://127.0.0.1:9/telegram"');
    expect(am).toContain('send_resolved: true');
    expect(am).toContain('chat_id: -100777');
    expect(am).toContain('{{ .Labels.instance }}');

    // The checks notice broken files.
    writeFileSync(join(out, 'rules-bad.yml'), rules.replace('probe_success == 0', 'probe_success == '));
    expect(await check(['promtool', 'check', 'rules', join(out, 'rules-bad.yml')])).not.toBe(0);
    writeFileSync(join(out, 'am-bad.yml'), am.replace('chat_id: -100777', 'chat_id: "x"'));
    expect(await check(['amtool', 'check-config', join(out, 'am-bad.yml')])).not.toBe(0);
  });

  it('docker: daemon.json is JSON with the publish address, log defaults that keep containers stoppable', async () => {
    const read = await renderWithAnsible(PLAYBOOKS, join(dir, 'render-docker'), {
      docker_insecure_registries: ['10.0.0.5:5000', 'lab:5000'],
    });
    const daemon = JSON.parse(read('daemon.json')) as Record<string, unknown>;
    expect(daemon).toEqual({
      ip: '127.0.0.1',
      'insecure-registries': ['10.0.0.5:5000', 'lab:5000'],
      'live-restore': true,
      'log-driver': 'json-file',
      'log-opts': { mode: 'non-blocking', 'max-buffer-size': '4m', 'max-size': '10m', 'max-file': '3' },
    });
  });

  it('dyce play renders the same bytes as ansible-playbook (when dyce play has the template module)', async (ctx) => {
    const has = await dyceAccepts(
      dir,
      'template',
      '- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n    - template: {src: a.j2, dest: /tmp/x}\n',
    );
    if (!has) ctx.skip();
    const ansibleOut = join(dir, 'cmp-ansible');
    const read = await renderWithAnsible(PLAYBOOKS, ansibleOut);
    const dyceOut = join(dir, 'cmp-dyce');
    mkdirSync(dyceOut);
    const file = join(dir, 'cmp-dyce-render.yml');
    writeFileSync(file, renderPlaybook(PLAYBOOKS, dyceOut));
    const r = await dycePlay(['-i', 'localhost,', file, '-e', vars(tlsDir)]);
    expect(r.stdout + r.stderr).not.toContain(TOKEN);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const name of ['daemon.json', 'loki.yml', 'site.conf', 'blackbox.yml', 'prometheus.yml', 'rules.yml']) {
      expect(readFileSync(join(dyceOut, name), 'utf8'), name).toBe(read(name));
    }
    expect(readFileSync(join(dyceOut, 'alertmanager.yml'), 'utf8')).toBe(read('alertmanager.yml'));
  });
});
