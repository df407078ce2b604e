import { userInfo } from 'node:os';
import { probeAccess } from '../commands/host-state.js';
import type { Host } from '../config/inventory.js';
import { type Executor, runChecked } from '../remote/executor.js';
import { UserError } from '../util/errors.js';

/** How Dyce reaches Docker and its state dir on a host. */
export interface HostAccess {
  user: string;
  /** Every command (docker and state dir) runs through `sudo -n`. */
  sudo: boolean;
  stateDir: string;
}

export const DEFAULT_STATE_DIR = '/var/lib/dyce';

/**
 * Root needs nothing (and costs no round trip). Any other user reaches Docker through the docker group or
 * `sudo -n`; when neither works the error says which is missing. A docker-group user without sudo keeps
 * Dyce's state under its home directory, which it can write.
 */
export async function resolveAccess(exec: Executor, host: Host): Promise<HostAccess> {
  // The executor knows the user it logged in as (the inventory's, or ~/.ssh/config's on the CLI).
  const user = host.connection === 'local' ? userInfo().username : (exec.user ?? host.user ?? 'root');
  if (user === 'root' && !host.become) return { user, sudo: false, stateDir: host.stateDir ?? DEFAULT_STATE_DIR };
  const r = await runChecked(exec, probeAccess(), { label: 'check docker access' });
  const [uid, home, docker, sudo] = r.stdout.trim().split('\n');
  if (uid === '0') return { user, sudo: false, stateDir: host.stateDir ?? DEFAULT_STATE_DIR };
  if (docker === 'docker missing')
    throw new UserError(`${host.name}: docker is not installed (no \`docker\` in PATH for user "${user}")`);
  const sudoOk = sudo === 'sudo ok';
  if (host.become || docker !== 'docker ok') {
    if (sudoOk) return { user, sudo: true, stateDir: host.stateDir ?? DEFAULT_STATE_DIR };
    throw new UserError(
      host.become
        ? `${host.name}: ansible_become is set but user "${user}" cannot run sudo without a password (sudo -n)`
        : `${host.name}: user "${user}" cannot use Docker: it is not in the docker group (docker: permission denied) and sudo -n needs a password. Add "${user}" to the docker group, or give it passwordless sudo, or connect as root`,
    );
  }
  return { user, sudo: false, stateDir: host.stateDir ?? `${home || `/home/${user}`}/.dyce` };
}
