/**
 * The README's main job on the embedded default: bring the lab up (a disposable VPS on this machine),
 * then run the pipeline against it. Each stage prints what it did; the first failure stops the demo.
 */
import { labUp } from '../src/lab/lab.js';
import { runLocal } from '../src/remote/local.js';

const started = Date.now();
const say = (m: string) => process.stdout.write(`${m}\n`);

say('== 1. lab: a disposable VPS on this machine (dockerd, private registry, sshd, nginx)');
const env = await labUp({ log: say });
const vps = env.hosts[0]!;
say(`   ${vps.name}: ssh ${vps.address}:${vps.sshPort} (host key ${vps.fingerprint}), registry ${env.registry.url}`);

say('== 2. smoke check: ssh with a verified host key, docker on the VPS, the sample app in the registry');
const ssh = await runLocal([
  'ssh', '-i', env.sshKey, '-p', String(vps.sshPort), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes',
  '-o', `UserKnownHostsFile=${env.knownHostsFile}`, `deploy@${vps.address}`, 'sudo -n docker version --format "{{.Server.Version}}"',
]);
if (ssh.code !== 0) {
  process.stderr.write(`demo: ssh to ${vps.name} failed: ${ssh.stderr}\n`);
  process.exit(1);
}
say(`   docker ${ssh.stdout.trim()} answers on ${vps.name} as the non-root user deploy (through sudo)`);
say(`   sample app: ${env.sampleApp.image}:{${env.sampleApp.tags.join(',')}}`);
say(`== demo done in ${((Date.now() - started) / 1000).toFixed(1)}s`);
