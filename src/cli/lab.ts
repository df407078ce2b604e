import { type LabEnv, labInventory, readLabEnv } from '../lab/env.js';
import { labDown, labStatus, labUp } from '../lab/lab.js';
import { InputError } from '../util/errors.js';
import type { CliReporter } from './reporter.js';

const USAGE = `dyce lab: a disposable lab "VPS" (or N) on this machine, for development and tests

usage:
  dyce lab up [--hosts N]            bring up, idempotently, N hosts (1 to 9; default 1): dockerd, sshd, nginx, a registry
        [--machines N]               and N machine VPSs (0 to 9): Debian 12 systems of their own (systemd, sshd, ufw, dockerd)
  dyce lab down                      stop exactly the processes the lab started (its data stays)
  dyce lab status                    what runs
  dyce lab env [--json]              hosts, ports, users, key path, known_hosts lines, registry (--json: everything)
  dyce lab inventory [--user root|deploy]   an Ansible INI inventory of the lab

Exit status:
  0  success
  1  failed
  2  bad input or usage: nothing was touched
  3  (status) something is not running
`;

/** Each subcommand's flags: a value flag's name, or a switch's name with a trailing "!". */
const LAB_FLAGS: Record<string, readonly string[]> = {
  up: ['hosts', 'machines'],
  down: [],
  status: [],
  env: ['json!'],
  inventory: ['user'],
};

/** Strict: every flag known to the subcommand, no stray word; every problem in one InputError. */
function labFlags(sub: string, argv: readonly string[]): Record<string, string | true> {
  const allowed = LAB_FLAGS[sub] ?? [];
  const out: Record<string, string | true> = {};
  const issues: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const name = a.startsWith('--') ? a.slice(2, eq < 0 ? undefined : eq) : undefined;
    if (name === undefined) {
      issues.push(`unexpected argument ${JSON.stringify(a)}: dyce lab ${sub} takes no arguments, only flags`);
      continue;
    }
    if (allowed.includes(`${name}!`)) {
      out[name] = true;
      continue;
    }
    if (!allowed.includes(name)) {
      issues.push(
        `unknown flag --${name}: dyce lab ${sub} takes ${allowed.length ? allowed.map((f) => `--${f.replace('!', '')}`).join(', ') : 'no flags'}`,
      );
      continue;
    }
    const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (v === undefined || v.startsWith('--')) issues.push(`--${name} needs a value`);
    else out[name] = v;
  }
  if (issues.length) throw new InputError(issues, `dyce lab ${sub}: invalid arguments (dyce lab --help)`);
  return out;
}

function shellAssignments(env: LabEnv): string {
  const q = (v: string | number) => `'${String(v).replace(/'/g, `'\\''`)}'`;
  const lines = [
    `DYCE_LAB_DIR=${q(env.dir)}`,
    `DYCE_LAB_SSH_KEY=${q(env.sshKey)}`,
    `DYCE_LAB_KNOWN_HOSTS_FILE=${q(env.knownHostsFile)}`,
    `DYCE_LAB_REGISTRY=${q(env.registry.url)}`,
    `DYCE_LAB_REGISTRY_USERNAME=${q(env.registry.username)}`,
    `DYCE_LAB_REGISTRY_PASSWORD_FILE=${q(env.registry.passwordFile)}`,
    `DYCE_LAB_SAMPLE_IMAGE=${q(env.sampleApp.image)}`,
    `DYCE_LAB_HOSTS=${q(env.hosts.map((h) => h.name).join(' '))}`,
  ];
  if (env.loki) lines.push(`DYCE_LAB_LOKI_URL=${q(env.loki.url)}`);
  for (const h of env.hosts) {
    const p = `DYCE_LAB_${h.name.toUpperCase()}`;
    lines.push(
      `${p}_SSH=${q(`${h.address}:${h.sshPort}`)}`,
      `${p}_KNOWN_HOSTS=${q(h.knownHosts)}`,
      `${p}_DOCKER_HOST=${q(h.dockerHost)}`,
      `${p}_STATE_DIR=${q(h.stateDir)}`,
      `${p}_PORT_BASE=${q(h.portBase)}`,
      `${p}_NGINX_HTTP=${q(h.nginx.httpPort)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export async function labCommand(argv: string[], reporter: CliReporter): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help' || rest.includes('--help')) {
    (sub === undefined ? process.stderr : process.stdout).write(USAGE);
    return sub === undefined ? 2 : 0;
  }
  if (sub === 'serve-loki') {
    // The lab's Loki-compatible receiver in the foreground; `lab up` runs it as a recorded background process.
    reporter.uninstall();
    const { lokiReceiverMain } = await import('../lab/loki/receiver.js');
    return lokiReceiverMain(rest);
  }
  if (!(sub in LAB_FLAGS)) {
    process.stderr.write(`dyce lab: unknown subcommand "${sub}"\n\n${USAGE}`);
    return 2;
  }
  const flags = labFlags(sub, rest);
  const flag = (name: string) => flags[name] as string | undefined;
  switch (sub) {
    case 'up': {
      const n = flag('hosts');
      const hosts = n === undefined ? undefined : Number(n);
      if (hosts !== undefined && (!Number.isInteger(hosts) || hosts < 1 || hosts > 9))
        throw new InputError([`--hosts must be a whole number from 1 to 9, got ${JSON.stringify(n)}`], 'dyce lab up');
      const m = flag('machines');
      const machines = m === undefined ? undefined : Number(m);
      if (machines !== undefined && (!Number.isInteger(machines) || machines < 0 || machines > 9))
        throw new InputError(
          [`--machines must be a whole number from 0 to 9, got ${JSON.stringify(m)}`],
          'dyce lab up',
        );
      const started = Date.now();
      const env = await labUp({
        ...(hosts ? { hosts } : {}),
        ...(machines ? { machines } : {}),
        log: (msg) => reporter.info(msg),
      });
      reporter.info(
        `lab is up in ${((Date.now() - started) / 1000).toFixed(1)}s: ${[...env.hosts, ...(env.machines ?? [])].map((h) => `${h.name} ssh ${h.address}:${h.sshPort}`).join(', ')}; registry ${env.registry.url}`,
      );
      reporter.info('`dyce lab env` prints everything a test or a user needs; `dyce lab down` stops it.');
      return 0;
    }
    case 'down': {
      const stopped = await labDown((m) => reporter.info(m));
      reporter.info(stopped.length ? `lab is down (${stopped.length} processes stopped)` : 'lab was not running');
      return 0;
    }
    case 'status': {
      const st = labStatus();
      if (st.length === 0) process.stdout.write('lab: nothing running\n');
      for (const s of st)
        process.stdout.write(`${s.name.padEnd(20)} ${s.running ? `running (pid ${s.pid})` : 'not running'}\n`);
      return st.every((s) => s.running) && st.length > 0 ? 0 : 3;
    }
    case 'env': {
      const env = readLabEnv();
      process.stdout.write(flags.json ? `${JSON.stringify(env, null, 2)}\n` : shellAssignments(env));
      return 0;
    }
    case 'inventory': {
      process.stdout.write(labInventory(readLabEnv(), flag('user') ?? 'root'));
      return 0;
    }
    default:
      return 2;
  }
}
