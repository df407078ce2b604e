import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dockerWithStdinEnvFile, ENV_FILE_PLACEHOLDER } from '../../../src/commands/docker.js';
import { type Host, parseInventory } from '../../../src/config/inventory.js';
import { RecordingReporter } from '../../../src/github/reporter.js';
import { containerDifferences, hasCredentials, type ObservedContainer } from '../../../src/playbook/modules/docker.js';
import { JsonCollector, TextPrinter } from '../../../src/playbook/output.js';
import { parsePlaybook } from '../../../src/playbook/parse.js';
import { PlaybookRefused, runPlaybook } from '../../../src/playbook/run.js';
import { type ExecOptions, type ExecResult, type Executor, RecordingExecutor } from '../../../src/remote/executor.js';
import { runLocal } from '../../../src/remote/local.js';
import { MELTON_DIR } from '../../support/melton.js';

const melton = readFileSync(join(MELTON_DIR, 'playbook.yml'), 'utf8');
const meltonHosts = readFileSync(join(MELTON_DIR, 'hosts'), 'utf8');
const PASSWORD = 'pl4nted-Passw0rd';
const MELTON_VARS = {
  REGISTRY: '127.0.0.1:5000',
  DOCKER_TAG: 'v1.4.2',
  DOCKER_USERNAME: 'dyce',
  DOCKER_PASSWORD: PASSWORD,
};

/** A host that has ca-certificates and curl, no containers, no image, no docker login. */
function freshHost(argv: readonly string[], _opts: ExecOptions): ExecResult {
  const ok = (stdout = ''): ExecResult => ({ code: 0, stdout, stderr: '' });
  if (argv[0] === 'dpkg-query')
    return ok(
      argv
        .slice(3)
        .map((n) => `${n} ii  1.0`)
        .join('\n'),
    );
  if (argv[0] === 'cat') return { code: 1, stdout: '', stderr: 'No such file' };
  if (argv.includes('image') && argv.includes('inspect')) return { code: 1, stdout: '', stderr: 'No such image' };
  if (argv[0] === 'sh' && String(argv[2]).includes('id -u')) return ok('0\n/root\ndocker ok\nsudo ok\n');
  if (argv[0] === 'sh' && String(argv[2]).includes('container inspect')) return ok('[]\n--dyce--\n');
  return ok();
}

interface Run {
  exitCode: number;
  calls: { host: string; argv: string[]; opts: ExecOptions }[];
  connected: string[];
  json: JsonCollector;
  text: string;
  reporter: RecordingReporter;
}

async function run(
  playbook: string,
  opts: {
    hosts?: string;
    extra?: Record<string, unknown>;
    check?: boolean;
    tags?: string[];
    answer?: typeof freshHost;
    unreachable?: string[];
  } = {},
): Promise<Run> {
  const inventory = parseInventory(opts.hosts ?? meltonHosts, { source: 'hosts' });
  const calls: Run['calls'] = [];
  const connected: string[] = [];
  const json = new JsonCollector();
  let text = '';
  const printer = new TextPrinter((s) => {
    text += s;
  });
  const reporter = new RecordingReporter();
  // Both printers see every event, as one run would print with or without --json.
  const events = new Proxy(json, {
    get(target, key) {
      const a = (target as unknown as Record<string | symbol, unknown>)[key];
      const b = (printer as unknown as Record<string | symbol, unknown>)[key];
      if (typeof a === 'function' && typeof b === 'function')
        return (...args: unknown[]) => {
          (a as (...x: unknown[]) => void).apply(target, args);
          (b as (...x: unknown[]) => void).apply(printer, args);
        };
      return a;
    },
  });
  const r = await runPlaybook(parsePlaybook(playbook, 'playbook.yml'), {
    inventory,
    extraVars: opts.extra ?? MELTON_VARS,
    check: opts.check ?? false,
    ...(opts.tags ? { tags: opts.tags } : {}),
    reporter,
    events,
    connect: async (h: Host) => {
      connected.push(h.name);
      if (opts.unreachable?.includes(h.name)) throw new Error(`${h.name}: connection refused`);
      const exec = new RecordingExecutor(h.name, opts.answer ?? freshHost);
      const orig = exec.run.bind(exec);
      exec.run = async (argv, o = {}) => {
        calls.push({ host: h.name, argv: [...argv], opts: o });
        return orig(argv, o);
      };
      return exec;
    },
  });
  return { exitCode: r.exitCode, calls, connected, json, text, reporter };
}

const statuses = (r: Run) =>
  r.json.run.plays.flatMap((p) =>
    p.tasks.map((t) => [
      t.task.name,
      Object.values(t.hosts)
        .map((h) => h.status)
        .join(),
    ]),
  );

const MUTATING = /^(docker (run|create|rm|stop|start|restart|login|pull)|apt-get (install|remove|update))\b/;
const commandLine = (argv: string[]) =>
  argv
    .filter((a) => a !== 'env' && !a.includes('='))
    .filter((a, i, all) => !(all[i - 1] === '--config'))
    .filter((a) => a !== '--config' && a !== '-q' && a !== '-y' && a !== '-o')
    .join(' ');

describe('the Melton playbook with --check on a recording executor', () => {
  it('plans every task and changes nothing', async () => {
    const r = await run(melton, { check: true });
    expect(r.exitCode).toBe(0);
    expect(statuses(r)).toEqual([
      ['Install required system packages', 'ok'],
      ['Log into the private registry', 'changed'],
      ['Pull the image', 'changed'],
      ['Create default containers', 'changed'],
    ]);
    expect(r.calls.length).toBeGreaterThan(0);
    const mutating = r.calls.filter((c) => MUTATING.test(commandLine(c.argv)));
    expect(mutating).toEqual([]);
    expect(r.text).toContain('PLAY RECAP');
    expect(r.text).toMatch(/indenwolken\s+: ok=4\s+changed=3\s+unreachable=0\s+failed=0\s+skipped=0/);
  });

  it('runs the real commands without --check: password on stdin only, containers named from the loop', async () => {
    const r = await run(melton);
    expect(r.exitCode).toBe(0);
    const login = r.calls.find((c) => c.argv.includes('login'))!;
    expect(login.argv).toEqual([
      'docker',
      '--config',
      '/root/.docker',
      'login',
      '127.0.0.1:5000',
      '--username',
      'dyce',
      '--password-stdin',
    ]);
    expect(login.opts).toMatchObject({ stdin: PASSWORD, sudo: true });
    // The planted password is findable (stdin holds it) but never in any argv.
    expect(r.calls.some((c) => c.opts.stdin === PASSWORD)).toBe(true);
    expect(r.calls.filter((c) => c.argv.join(' ').includes(PASSWORD))).toEqual([]);
    expect(r.reporter.secrets).toContain(PASSWORD);
    const runCalls = r.calls.filter((c) => c.argv.includes('run'));
    const runs = runCalls.map((c) => c.argv);
    expect(runs).toHaveLength(2);
    // Env values travel in a 0600 file written from stdin, never as --env words.
    expect(runCalls.map((c) => c.opts.stdin)).toEqual(['PORT=8001\n', 'PORT=8002\n']);
    expect(runs[0]).toEqual([
      'sh',
      '-c',
      expect.stringContaining('mktemp'),
      ENV_FILE_PLACEHOLDER,
      'docker',
      '--config',
      '/root/.docker',
      'run',
      '--detach',
      '--name',
      'melton-app1',
      '--restart',
      'unless-stopped',
      '--network',
      'host',
      '--env-file',
      ENV_FILE_PLACEHOLDER,
      '--volume',
      '/root/melton-app/staticfiles:/code/api/static/:rw',
      '--log-driver',
      'loki',
      '--log-opt',
      'loki-url=http://localhost:3100/loki/api/v1/push',
      '--log-opt',
      'loki-retries=5',
      '--log-opt',
      'loki-batch-size=400',
      '--log-opt',
      'loki-external-labels=tag=melton',
      '127.0.0.1:5000/meltondevops/melton-app-server:v1.4.2',
    ]);
    expect(runs[1]).toContain('melton-app2');
    expect(r.text).toContain("[WARNING]: Non-string value found for log_options option 'loki-retries'");
  });

  it('refuses an undefined variable before connecting to any host, naming file:line and the chain', async () => {
    const { DOCKER_PASSWORD: _p, ...noPassword } = MELTON_VARS;
    const err = await run(melton, { extra: noPassword }).catch((e) => e);
    expect(err).toBeInstanceOf(PlaybookRefused);
    expect((err as PlaybookRefused).exitCode).toBe(2);
    expect((err as PlaybookRefused).issues).toEqual([
      `playbook.yml:22: task "Log into the private registry" on indenwolken: 'DOCKER_PASSWORD' is undefined (used by 'docker_password')`,
    ]);
  });
});

describe('variables', () => {
  it('follow Ansible precedence: extra > set_fact > task vars > vars_files > play vars > host vars > group vars', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dyce-play-'));
    writeFileSync(join(dir, 'vars.yml'), 'from_file: file\nplay_vs_file: file\n');
    const hosts = '[web]\nh1 ansible_host=10.0.0.1 hv=host gv=host\n[web:vars]\ngv=group\nonly_group=group\n';
    const pb = `- hosts: web
  gather_facts: false
  vars_files: [${join(dir, 'vars.yml')}]
  vars: {hv: play, play_vs_file: play, tv: play, sf: play, ev: play}
  tasks:
    - set_fact: {sf: fact, ev: fact}
    - debug:
        msg: "{{ only_group }} {{ gv }} {{ hv }} {{ play_vs_file }} {{ tv }} {{ sf }} {{ ev }}"
      vars: {tv: task, sf: task}
`;
    const r = await run(pb, { hosts, extra: { ev: 'extra' } });
    expect(r.exitCode).toBe(0);
    const debug = r.json.run.plays[0]!.tasks[1]!.hosts.h1!;
    expect(debug.msg).toBe('group host play file task fact extra');
  });

  it('loops, when, register, changed_when, failed_when and ignore_errors', async () => {
    const pb = `- hosts: all
  gather_facts: false
  tasks:
    - debug: msg="{{ item }}"
      loop: [a, b, c]
      when: item != "b"
      register: out
    - assert:
        that:
          - out.results | length == 3
          - out.results[1].skipped
      changed_when: true
    - debug: msg=x
      failed_when: "'x' == 'x'"
      ignore_errors: true
    - debug: msg="{{ num }}"
      with_sequence: start=1 end=3 format=n%02d
      loop_control: {loop_var: num, label: "L{{ num }}"}
`;
    const r = await run(pb);
    expect(r.exitCode).toBe(0);
    expect(statuses(r)).toEqual([
      ['debug', 'ok'],
      ['assert', 'changed'],
      ['debug', 'failed'],
      ['debug', 'ok'],
    ]);
    expect(r.text).toContain('skipping: [indenwolken] => (item=b)');
    expect(r.text).toContain('...ignoring');
    expect(r.text).toContain('(item=Ln02)');
    expect(r.text).toMatch(/ok=4\s+changed=1\s+unreachable=0\s+failed=0\s+skipped=0\s+rescued=0\s+ignored=1/);
  });

  it('hides no_log results and registers their values as secrets', async () => {
    const pb = `- hosts: all
  gather_facts: false
  tasks:
    - debug: msg="the secret is {{ token }}"
      no_log: true
`;
    const r = await run(pb, { extra: { token: 'tok-123456' } });
    expect(r.text).toContain("'no_log: true' was specified");
    expect(r.text).not.toContain('tok-123456');
    expect(r.reporter.secrets).toContain('the secret is tok-123456');
  });

  it('applies environment and become to the module commands, and warns about secret-looking environment', async () => {
    const pb = `- hosts: all
  gather_facts: false
  tasks:
    - apt: name=curl
      become: true
      environment: {HTTP_PROXY: "http://proxy:3128", API_TOKEN: "{{ DOCKER_TAG }}"}
`;
    const r = await run(pb);
    const q = r.calls.find((c) => c.argv.includes('dpkg-query'))!;
    expect(q.argv.slice(0, 3)).toEqual(['env', 'HTTP_PROXY=http://proxy:3128', 'API_TOKEN=v1.4.2']);
    expect(q.opts.sudo).toBe(true);
    expect(r.text).toMatch(/\[WARNING\]: playbook\.yml:6: environment API_TOKEN looks secret/);
  });

  it('runs only selected tags', async () => {
    const pb = `- hosts: all
  gather_facts: false
  tasks:
    - debug: msg=a
      tags: [one]
    - debug: msg=b
      tags: two
`;
    const r = await run(pb, { tags: ['two'] });
    expect(r.json.run.plays[0]!.tasks.map((t) => t.hosts.indenwolken!.msg)).toEqual(['b']);
  });
});

describe('exit codes and hosts', () => {
  it('2 when a task fails; the host stops there', async () => {
    const pb = `- hosts: all\n  gather_facts: false\n  tasks:\n    - assert: {that: "1 == 2", fail_msg: nope}\n    - debug: msg=never\n`;
    const r = await run(pb);
    expect(r.exitCode).toBe(2);
    expect(r.text).toContain('fatal: [indenwolken]: FAILED! => {"failed":true,"changed":false,"msg":"nope"');
    expect(r.text).toContain('NO MORE HOSTS LEFT');
    expect(r.json.run.stats.indenwolken).toMatchObject({ failed: 1, ok: 0 });
  });

  it('4 when a host is unreachable; the others go on', async () => {
    const hosts = '[s]\na ansible_host=10.0.0.1\nb ansible_host=10.0.0.2\n';
    const pb = `- hosts: all\n  gather_facts: false\n  tasks:\n    - apt: name=curl\n    - apt: name=curl\n`;
    const r = await run(pb, { hosts, unreachable: ['a'] });
    expect(r.exitCode).toBe(4);
    expect(r.json.run.stats).toMatchObject({ a: { unreachable: 1 }, b: { ok: 2 } });
    expect(r.text).toContain('fatal: [a]: UNREACHABLE!');
  });

  it('a loop over an empty list skips without connecting', async () => {
    const pb = `- hosts: all\n  gather_facts: false\n  tasks:\n    - apt: name={{ item }}\n      loop: []\n`;
    const r = await run(pb);
    expect(r.connected).toEqual([]);
    expect(statuses(r)).toEqual([['apt', 'skipped']]);
  });

  it('gathers facts only when a task uses them', async () => {
    const pb = `- hosts: all\n  tasks:\n    - debug: msg="{{ ansible_os_family }}/{{ ansible_facts.architecture }}"\n`;
    const r = await run(pb, {
      answer: (argv, o) =>
        String(argv[2]).includes('os-release')
          ? {
              code: 0,
              stdout: 'id=debian\nversion=12\narch=x86_64\ncodename=bookworm\nsystem=Linux\nnodename=vps1\n',
              stderr: '',
            }
          : freshHost(argv, o),
    });
    expect(r.json.run.plays[0]!.tasks.map((t) => t.task.name)).toEqual(['Gathering Facts', 'debug']);
    expect(r.json.run.plays[0]!.tasks[1]!.hosts.indenwolken!.msg).toBe('Debian/x86_64');
    const r2 = await run(`- hosts: all\n  tasks:\n    - debug: msg=hi\n`);
    expect(r2.json.run.plays[0]!.tasks.map((t) => t.task.name)).toEqual(['debug']);
  });
});

describe('env values through a 0600 file from stdin', () => {
  it('the real shell wrapper writes the file 0600, passes its path in place of the placeholder, then removes it', async () => {
    const argv = dockerWithStdinEnvFile([
      'sh',
      '-c',
      'echo "$1"; cat "$1"; stat -c %a "$1"',
      'sh',
      ENV_FILE_PLACEHOLDER,
    ]);
    const r = await runLocal(argv, { stdin: 'SECRET=s3cr3t value\n' });
    expect(r.code, r.stderr).toBe(0);
    const [path, content, mode] = r.stdout.split('\n');
    expect(content).toBe('SECRET=s3cr3t value');
    expect(mode).toBe('600');
    expect(path).not.toBe(ENV_FILE_PLACEHOLDER);
    expect((await runLocal(['test', '-e', path!])).code).toBe(1);
    expect(argv.join(' ')).not.toContain('s3cr3t');
  });

  it('keeps the exit status of the command', async () => {
    const r = await runLocal(dockerWithStdinEnvFile(['sh', '-c', 'exit 7']), { stdin: 'A=1\n' });
    expect(r.code).toBe(7);
  });
});

describe('docker_container comparisons (community.docker defaults)', () => {
  const args = {
    name: 'app1',
    image: 'r/app:v1',
    state: 'started' as const,
    network_mode: 'host',
    env: { PORT: '8001' },
    volumes: ['/s:/code/static/'],
    restart_policy: 'unless-stopped' as const,
    log_driver: 'json-file',
    log_options: { 'max-size': '10m' },
    pull: false,
    recreate: false,
    restart: false,
    detach: true,
    force_kill: false,
    keep_volumes: true,
  };
  const spec = {
    name: 'app1',
    image: 'r/app:v1',
    env: [['PORT', '8001']] as [string, string][],
    labels: [],
    networkMode: 'host',
    publish: [],
    volumes: ['/s:/code/static/:rw'],
    restart: 'unless-stopped',
    logDriver: 'json-file',
    logOptions: [['max-size', '10m']] as [string, string][],
  };
  const container = (
    over: Partial<ObservedContainer['HostConfig']> = {},
    env = ['PORT=8001', 'PATH=/bin'],
  ): ObservedContainer => ({
    Id: 'c1',
    Image: 'sha256:aaa',
    State: { Running: true, Status: 'running' },
    Config: { Env: env, Cmd: ['/start'], Labels: { extra: 'x' } },
    HostConfig: {
      NetworkMode: 'host',
      Binds: ['/s:/code/static/:rw'],
      RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 },
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
      ...over,
    },
  });

  it('finds nothing when every user-set parameter matches (more env, labels, log options are fine)', () => {
    expect(containerDifferences(args, spec, container(), 'sha256:aaa')).toEqual([]);
  });

  it('finds each differing parameter', () => {
    expect(containerDifferences(args, spec, container(), 'sha256:bbb')).toEqual(['image']);
    expect(containerDifferences(args, spec, container({}, ['PORT=9']), 'sha256:aaa')).toEqual(['env']);
    expect(containerDifferences(args, spec, container({ NetworkMode: 'bridge' }), 'sha256:aaa')).toEqual([
      'network_mode',
    ]);
    expect(containerDifferences(args, spec, container({ Binds: ['/other:/code/static/'] }), 'sha256:aaa')).toEqual([
      'volumes',
    ]);
    expect(containerDifferences(args, spec, container({ RestartPolicy: { Name: 'always' } }), 'sha256:aaa')).toEqual([
      'restart_policy',
    ]);
    expect(
      containerDifferences(args, spec, container({ LogConfig: { Type: 'loki', Config: {} } }), 'sha256:aaa'),
    ).toEqual(['log_driver', 'log_options']);
    expect(containerDifferences(args, { ...spec, command: ['/other'] }, container(), 'sha256:aaa')).toEqual([
      'command',
    ]);
  });

  it('reads stored docker credentials', () => {
    const cfg = JSON.stringify({ auths: { 'r:5000': { auth: Buffer.from('u:p').toString('base64') } } });
    expect(hasCredentials(cfg, 'r:5000', 'u', 'p')).toBe(true);
    expect(hasCredentials(cfg, 'r:5000', 'u', 'q')).toBe(false);
    expect(hasCredentials('not json', 'r:5000', 'u', 'p')).toBe(false);
  });
});

describe('cancellation', () => {
  /** A host whose commands never answer; `close()` may end them (an SSH connection) or not (a hung one). */
  class HungExecutor implements Executor {
    readonly host = 'h1';
    closed = false;
    started: string[] = [];
    #release: ((r: ExecResult) => void) | undefined;
    constructor(private readonly closeEndsCommands: boolean) {}
    run(argv: readonly string[]): Promise<ExecResult> {
      this.started.push(argv[0]!);
      return new Promise((r) => {
        this.#release = r;
      });
    }
    async close(): Promise<void> {
      this.closed = true;
      if (this.closeEndsCommands) this.#release?.({ code: 255, stdout: '', stderr: 'connection closed' });
    }
  }
  const pb = parsePlaybook(
    '- hosts: all\n  gather_facts: false\n  tasks:\n    - apt: name=curl state=present\n    - debug: msg=never\n',
    'hang.yml',
  );

  it.each([
    ['closing the connection ends the command', true],
    ['even a command that never ends', false],
  ])('a hung task is abandoned after the grace period: %s', async (_name, closeEnds) => {
    const exec = new HungExecutor(closeEnds);
    const controller = new AbortController();
    const json = new JsonCollector();
    const r = runPlaybook(pb, {
      inventory: parseInventory('h1 ansible_host=127.0.0.1', { source: 'hosts', format: 'ini' }),
      extraVars: {},
      connect: async () => exec,
      reporter: new RecordingReporter(),
      events: json,
      signal: controller.signal,
      cancelGraceMs: 50,
    });
    await new Promise((res) => setTimeout(res, 50));
    expect(exec.started).toEqual(['dpkg-query']);
    controller.abort('SIGTERM received');
    const result = await r;
    expect(result).toMatchObject({ exitCode: 1, cancelled: 'SIGTERM received' });
    expect(exec.closed).toBe(true);
    // The second task never started.
    expect(json.run.plays[0]!.tasks.map((t) => t.task.module)).toEqual(['apt']);
  });
});
