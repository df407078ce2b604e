/**
 * SSH bench on the lab's vps1: Dyce's SshExecutor (ssh2, one connection and one long-lived remote sh) against the OpenSSH client
 * (`ssh host cmd`, a new connection per command, as Ansible does without ControlPersist), side by side.
 * Host keys are verified in both.
 */
import { readFileSync } from 'node:fs';
import { RecordingReporter } from '../src/github/reporter.js';
import { readLabEnv } from '../src/lab/env.js';
import { parseKnownHosts } from '../src/remote/known-hosts.js';
import { SshExecutor } from '../src/remote/ssh.js';
import { opensshArgv, ratioRow, row, run, sideBySide } from './support.js';

const env = readLabEnv();
const h = env.hosts[0]!;
const key = readFileSync(env.sshKey);
const COMMANDS = 10;

const openssh = (cmd: string) => run(opensshArgv(env, h, cmd));

const executor = () =>
  new SshExecutor(
    {
      host: h.name,
      address: h.address,
      port: h.sshPort,
      user: 'root',
      privateKey: key,
      hostKey: { kind: 'known-hosts', entries: parseKnownHosts(h.knownHosts) },
    },
    { reporter: new RecordingReporter() },
  );

async function dyceOnce(): Promise<void> {
  const ex = executor();
  try {
    const r = await ex.run(['docker', 'ps']);
    if (r.code !== 0) throw new Error(`docker ps exited ${r.code}: ${r.stderr}`);
  } finally {
    await ex.close();
  }
}

async function dyceMany(): Promise<void> {
  const ex = executor();
  try {
    for (let i = 0; i < COMMANDS; i++) await ex.run(['true']);
  } finally {
    await ex.close();
  }
}

async function opensshMany(): Promise<void> {
  for (let i = 0; i < COMMANDS; i++) await openssh('true');
}

const reused = executor();
await reused.connect();
const oneCmd = await sideBySide(
  () => reused.run(['docker', 'ps']),
  () => openssh('docker ps'),
  10,
);
await reused.close();
const single = await sideBySide(dyceOnce, () => openssh('docker ps'), 10);
const many = await sideBySide(dyceMany, opensshMany, 5);

console.log('ssh bench (lab vps1, host keys verified on both sides)');
console.log(row('dyce: docker ps on an open connection', oneCmd.a));
console.log(row('openssh: ssh vps1 docker ps', oneCmd.b));
console.log(row('dyce: connect + docker ps + close', single.a));
console.log(row(`dyce: ${COMMANDS} commands on one connection`, many.a));
console.log(row(`openssh: ${COMMANDS} ssh invocations`, many.b));
console.log(ratioRow('open connection / ssh round trip', oneCmd.ratios));
console.log(ratioRow('dyce connect+command / ssh round trip', single.ratios, '≤ 1'));
console.log(ratioRow(`dyce ${COMMANDS} commands / ${COMMANDS} ssh invocations`, many.ratios, '< 0.5'));
