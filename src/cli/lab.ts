import { type LabEnv, labInventory, readLabEnv } from '../lab/env.js';
import { labDown, labStatus, labUp } from '../lab/lab.js';
import { InputError } from '../util/errors.js';
import type { CliReporter } from './reporter.js';

const USAGE = `usage: dyce lab up [--hosts N] | down | status | env [--json] | inventory [--user root|deploy]`;

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
  const flag = (name: string) => {
    const i = rest.indexOf(`--${name}`);
    return i >= 0 ? (rest[i + 1] ?? '') : undefined;
  };
  switch (sub) {
    case 'up': {
      const n = flag('hosts');
      const hosts = n === undefined ? undefined : Number(n);
      if (hosts !== undefined && (!Number.isInteger(hosts) || hosts < 1 || hosts > 9))
        throw new InputError([`--hosts must be a whole number from 1 to 9, got ${JSON.stringify(n)}`], 'dyce lab up');
      const started = Date.now();
      const env = await labUp({ ...(hosts ? { hosts } : {}), log: (m) => reporter.info(m) });
      reporter.info(
        `lab is up in ${((Date.now() - started) / 1000).toFixed(1)}s: ${env.hosts.map((h) => `${h.name} ssh ${h.address}:${h.sshPort}`).join(', ')}; registry ${env.registry.url}`,
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
      process.stdout.write(rest.includes('--json') ? `${JSON.stringify(env, null, 2)}\n` : shellAssignments(env));
      return 0;
    }
    case 'serve-loki': {
      // The lab's Loki-compatible receiver in the foreground; `lab up` runs it as a recorded background process.
      reporter.uninstall();
      const { lokiReceiverMain } = await import('../lab/loki/receiver.js');
      return lokiReceiverMain(rest);
    }
    case 'inventory': {
      process.stdout.write(labInventory(readLabEnv(), flag('user') ?? 'root'));
      return 0;
    }
    default:
      process.stderr.write(`${USAGE}\n`);
      return 2;
  }
}
