import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import type { LabEnv } from '../../src/lab/env.js';
import {
  ensureMachine,
  ensureMachineImage,
  ensureMachineNetwork,
  type MachineContext,
} from '../../src/lab/machines.js';
import { APP_BASE_IMAGE } from '../../src/lab/sample-app.js';
import type { ExecResult } from '../../src/remote/executor.js';
import { runLocal } from '../../src/remote/local.js';
import { repoRoot } from './site.js';

/**
 * The lab side of site.yml's end-to-end test: fresh machine VPSs (the lab's own machines, src/lab/machines.ts),
 * images the roles pull from the lab registry, a lab CA, SSH to a machine, a snapshot of a host's end state and an
 * HTTPS load generator.
 */

export interface Machine {
  name: string;
  address: string;
  /** known_hosts line */
  knownHosts: string;
}

/** Fresh machines numbered INDEXES (recreated from the lab's machine image: a bare Debian 12 VPS each). */
export async function freshMachines(env: LabEnv, indexes: number[]): Promise<Machine[]> {
  const ctx: MachineContext = {
    dir: env.dir,
    dockerBin: env.dockerBin,
    runnerHost: env.runner.dockerHost,
    log: () => {},
  };
  const image = await ensureMachineImage(ctx);
  await ensureMachineNetwork(ctx);
  const labPub = readFileSync(`${env.sshKey}.pub`, 'utf8');
  return Promise.all(indexes.map((i) => ensureMachine(ctx, i, image, labPub, true)));
}

/** Removes exactly the machine containers (and their docker volumes) named dyce-lab-<name>. */
export async function removeMachines(env: LabEnv, machines: Machine[]): Promise<void> {
  for (const m of machines) {
    const c = `dyce-lab-${m.name}`;
    await runLocal([env.dockerBin, '-H', env.runner.dockerHost, 'rm', '--force', '--volumes', c]);
    await runLocal([env.dockerBin, '-H', env.runner.dockerHost, 'volume', 'rm', '--force', `${c}-docker`]);
  }
}

/** Runs SCRIPT with bash as root on M over SSH (host key verified). */
export function onMachine(env: LabEnv, knownHostsFile: string, m: Machine, script: string): Promise<ExecResult> {
  return runLocal(
    [
      'ssh',
      '-i',
      env.sshKey,
      '-o',
      `UserKnownHostsFile=${knownHostsFile}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      'ConnectTimeout=10',
      `root@${m.address}`,
      'bash -s',
    ],
    { stdin: script, timeoutMs: 300_000 },
  );
}

/**
 * Images the roles use in the lab, pushed to the lab registry: the lab's Loki-compatible receiver (bundled from
 * src/lab/loki/receiver.ts onto the lab's node base image) and a busybox image for the system-log shippers.
 */
export async function pushSiteImages(env: LabEnv, dir: string): Promise<{ receiver: string; busybox: string }> {
  const docker = (args: string[]) =>
    runLocal([env.dockerBin, ...args], {
      env: { ...process.env, DOCKER_HOST: env.runner.dockerHost, DOCKER_CONFIG: env.runner.dockerConfig },
    });
  const must = async (args: string[]) => {
    const r = await docker(args);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const entry = join(dir, 'receiver-entry.ts');
  writeFileSync(
    entry,
    `import { lokiReceiverMain } from ${JSON.stringify(join(repoRoot, 'src/lab/loki/receiver.ts'))};\nlokiReceiverMain(process.argv.slice(2)).then((c) => process.exit(c));\n`,
  );
  const ctx = join(dir, 'receiver-image');
  execFileSync(
    join(repoRoot, 'node_modules/.bin/esbuild'),
    [
      entry,
      '--bundle',
      '--platform=node',
      '--target=node20',
      `--outfile=${join(ctx, 'receiver.js')}`,
      '--log-level=error',
    ],
    { stdio: 'ignore' },
  );
  writeFileSync(
    join(ctx, 'Dockerfile'),
    `FROM ${APP_BASE_IMAGE}\nCOPY receiver.js /receiver.js\nEXPOSE 3100\nENTRYPOINT ["/bin/node", "/receiver.js", "--host", "0.0.0.0", "--port", "3100", "--dir", "/data"]\n`,
  );
  const receiver = `${env.registry.url}/dyce/loki-receiver:site`;
  await must(['build', '-q', '-t', receiver, ctx]);
  await must(['push', '-q', receiver]);
  const busybox = `${env.registry.url}/dyce/busybox:site`;
  await must(['tag', env.baseImage, busybox]);
  await must(['push', '-q', busybox]);
  return { receiver, busybox };
}

/** A lab CA and one server certificate for NAMES/addresses, in DIR: ca.crt, web.crt, web.key. */
export function makeCa(dir: string, addresses: string[]): { ca: string; cert: string; key: string } {
  const p = (n: string) => join(dir, n);
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  run(
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.crt')].concat([
      '-days',
      '2',
      '-subj',
      '/CN=dyce site test CA',
    ]),
  );
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('web.key'), '-out', p('web.csr'), '-subj', '/CN=web']);
  writeFileSync(p('ext'), `subjectAltName=${addresses.map((a) => `IP:${a}`).join(',')}\n`);
  run(
    ['x509', '-req', '-in', p('web.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial'].concat([
      '-out',
      p('web.crt'),
      '-days',
      '2',
      '-extfile',
      p('ext'),
    ]),
  );
  return { ca: p('ca.crt'), cert: p('web.crt'), key: p('web.key') };
}

/**
 * What site.yml leaves on a host, as text: packages, managed files (content for configuration, a hash for
 * secrets and certificates, mode and owner for all), ufw, services, the deploy user, containers and plugins.
 */
export const SNAPSHOT_SCRIPT = readFileSync(join(import.meta.dirname, 'site-snapshot.sh'), 'utf8');

/** A host's snapshot with its own and its peers' addresses replaced by role names, so that pairs compare. */
export async function snapshot(
  env: LabEnv,
  knownHostsFile: string,
  m: Machine,
  names: Record<string, string>,
): Promise<string> {
  const r = await onMachine(env, knownHostsFile, m, SNAPSHOT_SCRIPT);
  let text = r.stdout;
  for (const [address, name] of Object.entries(names)) text = text.split(address).join(name);
  return text;
}

export interface HttpsLoadResult {
  ok: number;
  failed: number;
  reasons: Record<string, number>;
  /** Distinct bodies of the answers, in the order first seen (the versions that served). */
  bodies: string[];
}

/** CONCURRENCY clients each sending GET URL on a new connection, verified against CA, until stop(). */
export function startHttpsLoad(url: string, ca: string, concurrency = 4): { stop(): Promise<HttpsLoadResult> } {
  const result: HttpsLoadResult = { ok: 0, failed: 0, reasons: {}, bodies: [] };
  const caPem = readFileSync(ca);
  let running = true;
  const one = () =>
    new Promise<void>((resolve) => {
      const req = https.get(url, { ca: caPem, agent: false, timeout: 15_000 }, (res) => {
        let body = '';
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => {
          if (res.statusCode === 200) {
            result.ok++;
            if (!result.bodies.includes(body)) result.bodies.push(body);
          } else {
            result.failed++;
            result.reasons[`status ${res.statusCode}`] = (result.reasons[`status ${res.statusCode}`] ?? 0) + 1;
          }
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e: NodeJS.ErrnoException) => {
        result.failed++;
        const k = e.code ?? e.message;
        result.reasons[k] = (result.reasons[k] ?? 0) + 1;
        resolve();
      });
    });
  const worker = async () => {
    while (running) await one();
  };
  const workers = Array.from({ length: concurrency }, worker);
  return {
    async stop() {
      running = false;
      await Promise.all(workers);
      return result;
    },
  };
}

export interface SiteInputs {
  varsFile: string;
  /** 0600: the registry password, the Telegram bot token and chat id. */
  secretsFile: string;
}

/**
 * site.yml's variables for the lab (in DIR): the lab registry, the lab's Loki plugin and receiver, the lab CA's
 * certificate, the sample app, and an alert chain made fast (seconds instead of minutes) towards TELEGRAM_URL.
 */
export function writeSiteInputs(
  env: LabEnv,
  dir: string,
  o: {
    images: { receiver: string; busybox: string };
    ca: { ca: string; cert: string; key: string };
    telegramUrl: string;
    token: string;
    chatId: string;
  },
): SiteInputs {
  const varsFile = join(dir, 'site-vars.json');
  writeFileSync(
    varsFile,
    JSON.stringify({
      docker_registry: env.registry.url,
      docker_registry_username: env.registry.username,
      docker_loki_plugin_image: env.loki?.latestPluginRef ?? `${env.registry.url}/dyce/loki-docker-driver:latest`,
      docker_deploy_authorized_keys: [readFileSync(`${env.wrongSshKey}.pub`, 'utf8').trim()],
      logging_backend: 'receiver',
      logging_receiver_image: o.images.receiver,
      logging_shipper_image: o.images.busybox,
      ingress_tls_cert_src: o.ca.cert,
      ingress_tls_key_src: o.ca.key,
      ingress_listen_ipv6: false,
      app_image: `${env.sampleApp.image}:v1`,
      monitoring_probe_ca_cert_src: o.ca.ca,
      monitoring_alert_for: '6s',
      monitoring_scrape_interval: '2s',
      monitoring_evaluation_interval: '2s',
      monitoring_group_wait: '1s',
      monitoring_group_interval: '2s',
      monitoring_telegram_api_url: o.telegramUrl,
    }),
  );
  const secretsFile = join(dir, 'secrets.json');
  writeFileSync(
    secretsFile,
    JSON.stringify({
      docker_registry_password: env.registry.password,
      monitoring_telegram_bot_token: o.token,
      monitoring_telegram_chat_id: o.chatId,
    }),
    { mode: 0o600 },
  );
  return { varsFile, secretsFile };
}

/** An inventory in DIR with WEB in [web] and MON in [monitoring], which probes the web host's HTTPS URL. */
export function pairInventory(dir: string, label: string, web: Machine, mon: Machine): string {
  const inventory = join(dir, `inventory-${label}.ini`);
  writeFileSync(
    inventory,
    [
      '[web]',
      `${web.name} ansible_host=${web.address} ansible_user=root`,
      '[monitoring]',
      `${mon.name} ansible_host=${mon.address} ansible_user=root`,
      '[monitoring:vars]',
      `monitoring_probe_urls=["https://${web.address}/"]`,
      '',
    ].join('\n'),
  );
  return inventory;
}

/** Switches off the lab's forward of its own Loki receiver to 127.0.0.1:3100 (a bare VPS has none there). */
export async function bareVps(env: LabEnv, knownHostsFile: string, m: Machine): Promise<void> {
  const r = await onMachine(
    env,
    knownHostsFile,
    m,
    'systemctl disable --now dyce-lab-forward-3100.socket 2>/dev/null; true',
  );
  if (r.code !== 0) throw new Error(`${m.name}: ${r.stderr}`);
}

/** ansible-playbook's or dyce play's argv tail and environment for site.yml over SSH to lab machines. */
export function siteRunArgs(
  env: LabEnv,
  tool: 'ansible' | 'dyce',
  knownHostsFile: string,
): { args: string[]; env: Record<string, string> } {
  return tool === 'ansible'
    ? {
        args: ['--private-key', env.sshKey],
        env: {
          ANSIBLE_SSH_ARGS: `-o UserKnownHostsFile=${knownHostsFile} -o StrictHostKeyChecking=yes -o ControlMaster=auto -o ControlPersist=60s`,
          ANSIBLE_PIPELINING: '1',
        },
      }
    : { args: ['--known-hosts', knownHostsFile], env: { DYCE_SSH_PRIVATE_KEY: readFileSync(env.sshKey, 'utf8') } };
}
