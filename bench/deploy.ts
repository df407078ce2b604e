/**
 * Deploy bench on the lab's vps1: Dyce's deploy engine against ansible-playbook (community.docker) doing the same
 * job in the shape of the Melton playbook (login, pull, N containers on host networking with a PORT each),
 * side by side in one run. Host keys are verified on both sides.
 *
 * - first deploy of 4 replicas (containers removed before each run; the image is already on the host for both);
 * - no-op rerun (nothing changed), also against one SSH connection + `docker ps`, the floor any tool pays.
 *
 * Dyce runs in-process (what the action does after Node has started); ansible-playbook is a process per run.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deployRules, deploySpec } from '../src/config/actions/deploy.js';
import { parseInputs } from '../src/config/input-spec.js';
import { runDeploy } from '../src/deploy/entry.js';
import { RecordingReporter } from '../src/github/reporter.js';
import { readLabEnv } from '../src/lab/env.js';
import { parseKnownHosts } from '../src/remote/known-hosts.js';
import { runLocal } from '../src/remote/local.js';
import { SshExecutor } from '../src/remote/ssh.js';
import { ansibleInventory, ansiblePlaybook, ratioRow, row, sideBySide, writeAnsibleVars } from './support.js';

const env = readLabEnv();
const h = env.hosts[0]!;
const REPLICAS = 4;
const image = `${env.sampleApp.image}:v1`;
const dir = mkdtempSync(join(tmpdir(), 'dyce-bench-deploy-'));
const ANS = 'bench-ansible-app';
const DYCE = 'bench-dyce-app';

writeFileSync(join(dir, 'hosts'), ansibleInventory(env, [h]));
// The Melton playbook's tasks (apt dropped: nothing to install on the lab host; that only flatters Ansible).
writeFileSync(
  join(dir, 'playbook.yml'),
  `- hosts: all
  become: true
  gather_facts: false
  vars:
    create_containers: ${REPLICAS}
    default_container_name: ${ANS}
    default_container_image: "{{ REGISTRY }}/dyce/sample-app"
    base_port: 18800
  tasks:
    - name: Log into the private registry
      community.docker.docker_login:
        registry_url: "{{ REGISTRY }}"
        username: "{{ DOCKER_USERNAME }}"
        password: "{{ DOCKER_PASSWORD }}"
    - name: Pull the image
      community.docker.docker_image:
        name: "{{ default_container_image }}:{{ DOCKER_TAG }}"
        source: pull
    - name: Create default containers
      community.docker.docker_container:
        name: "{{ default_container_name }}{{ item }}"
        image: "{{ default_container_image }}:{{ DOCKER_TAG }}"
        network_mode: host
        env:
          PORT: "{{ base_port + item | int }}"
        state: started
        restart_policy: unless-stopped
      with_sequence: count={{ create_containers }}
`,
);

const vars = writeAnsibleVars(join(dir, 'vars.json'), {
  REGISTRY: env.registry.url,
  DOCKER_TAG: 'v1',
  DOCKER_USERNAME: env.registry.username,
  DOCKER_PASSWORD: env.registry.password,
});
const ansible = () => ansiblePlaybook(join(dir, 'hosts'), join(dir, 'playbook.yml'), ['--extra-vars', `@${vars}`]);

const inputs = parseInputs(
  deploySpec,
  {
    hosts: `${h.name} ansible_host=${h.address} ansible_port=${h.sshPort} ansible_user=root dyce_state_dir=${h.stateDir}`,
    'known-hosts': h.knownHosts,
    'ssh-private-key': readFileSync(env.sshKey, 'utf8'),
    image,
    'registry-username': env.registry.username,
    'registry-password': env.registry.password,
    name: DYCE,
    replicas: String(REPLICAS),
    'network-mode': 'host',
    port: '18900',
  },
  deployRules,
);
const dyce = async () => {
  const r = await runDeploy(inputs, new RecordingReporter());
  if (!r.hosts[0] || r.hosts[0].error) throw new Error(`dyce deploy failed: ${r.hosts[0]?.error}`);
  return r;
};

const hostDocker = (args: string[]) =>
  runLocal(['docker', ...args], { env: { ...process.env, DOCKER_HOST: h.dockerHost } });
async function clean(prefix: string): Promise<void> {
  const names = Array.from({ length: REPLICAS }, (_, i) => `${prefix}${i + 1}`);
  await hostDocker(['rm', '-f', ...names]);
}

async function sshPlusDockerPs(): Promise<void> {
  const ex = new SshExecutor(
    {
      host: h.name,
      address: h.address,
      port: h.sshPort,
      user: 'root',
      privateKey: readFileSync(env.sshKey),
      hostKey: { kind: 'known-hosts', entries: parseKnownHosts(h.knownHosts) },
    },
    { reporter: new RecordingReporter() },
  );
  try {
    const r = await ex.run(['docker', 'ps']);
    if (r.code !== 0) throw new Error(`docker ps exited ${r.code}`);
  } finally {
    await ex.close();
  }
}

try {
  const first = await sideBySide(
    async () => {
      await clean(ANS);
      await ansible();
    },
    async () => {
      await clean(DYCE);
      await dyce();
    },
    3,
  );
  const noop = await sideBySide(ansible, dyce, 5);
  const floor = await sideBySide(dyce, sshPlusDockerPs, 5);
  const nothingChanged = await dyce();
  if (nothingChanged.changed) throw new Error('the no-op rerun changed something');

  console.log(`deploy bench (lab ${h.name}, ${REPLICAS} replicas of ${image}, host keys verified)`);
  console.log(row('ansible-playbook: first deploy (incl. rm -f)', first.a));
  console.log(row('dyce: first deploy (incl. rm -f)', first.b));
  console.log(row('ansible-playbook: no-op rerun', noop.a));
  console.log(row('dyce: no-op rerun', noop.b));
  console.log(row('ssh connect + docker ps', floor.b));
  console.log(ratioRow('first deploy: ansible / dyce', first.ratios, '≥ 5×'));
  console.log(ratioRow('no-op rerun: ansible / dyce', noop.ratios, '≥ 20×'));
  console.log(ratioRow('no-op rerun: dyce / (ssh + docker ps)', floor.ratios, '≤ 1.5×'));
} finally {
  await clean(ANS);
  await clean(DYCE);
}
