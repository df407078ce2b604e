import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { runLocal } from '../remote/local.js';
import { UserError } from '../util/errors.js';

/** Debian packages the lab runs on. All install offline from Debian's archive. */
export const LAB_PACKAGES = [
  'docker.io',
  'docker-registry',
  'openssh-server',
  'openssh-client',
  'nginx',
  'busybox-static',
  'apache2-utils',
  'sudo',
  'iproute2',
  'openssl',
  'curl',
];

export async function missingPackages(pkgs: string[]): Promise<string[]> {
  const r = await runLocal(['dpkg-query', '-W', '-f=${Package} ${db:Status-Abbrev}\n', ...pkgs]);
  const installed = new Set(
    r.stdout
      .split('\n')
      .filter((l) => / ii ?$/.test(l.trimEnd()) || / ii$/.test(l.trim()))
      .map((l) => l.split(' ')[0]),
  );
  return pkgs.filter((p) => !installed.has(p));
}

/**
 * Installs what is missing with apt-get. A policy-rc.d that denies service starts is in place during the
 * install, so that Debian's postinst scripts do not start a system nginx or dockerd the lab did not ask for.
 */
export async function ensurePackages(pkgs: string[], log: (m: string) => void): Promise<void> {
  const missing = await missingPackages(pkgs);
  if (missing.length === 0) return;
  log(`installing ${missing.join(' ')} (apt-get)`);
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const update = await runLocal(['apt-get', 'update', '-qq'], { env });
    if (update.code !== 0) throw new UserError(`apt-get update failed:\n${update.stderr.trim()}`);
    const install = await runLocal(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...missing], { env });
    if (install.code !== 0)
      throw new UserError(
        `apt-get install ${missing.join(' ')} failed:\n${install.stderr.trim().split('\n').slice(-10).join('\n')}`,
      );
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
}
