import { describe, expect, it } from 'vitest';
import { deployRules, deploySpec, imageDeployInputs } from '../../../src/config/actions/deploy.js';
import { parseInputs, type RawInputs } from '../../../src/config/input-spec.js';
import { hostKeyPolicy, readTargetHosts } from '../../../src/deploy/connect.js';
import { appConfigFromInputs, versionOf } from '../../../src/deploy/settings.js';

const parse = (extra: RawInputs) =>
  parseInputs(
    deploySpec,
    {
      hosts:
        '[web]\nvps1 ansible_host=127.0.0.1 ansible_port=2222\nvps2 ansible_host=127.0.0.1 ansible_port=2223 dyce_port_base=1000\n[all:vars]\nansible_user=deploy',
      image: 'reg/app:v1',
      name: 'app',
      ...extra,
    },
    deployRules,
  );

describe('deploy targets', () => {
  it('reads inline INI lines with groups and [all:vars], and applies limit', async () => {
    const all = await readTargetHosts(parse({}));
    expect(all.map((h) => [h.name, h.port, h.user, h.portBase])).toEqual([
      ['vps1', 2222, 'deploy', undefined],
      ['vps2', 2223, 'deploy', 1000],
    ]);
    expect((await readTargetHosts(parse({ limit: 'vps2' }))).map((h) => h.name)).toEqual(['vps2']);
    await expect(readTargetHosts(parse({ limit: 'nope' }))).rejects.toThrow('limit "nope" matches no host');
  });

  it('names the line of a malformed inventory', async () => {
    await expect(readTargetHosts(parse({ hosts: 'vps1 ansible_port=x' }))).rejects.toThrow(/hosts:1: .*ansible_port/);
  });

  it('verifies host keys unless told not to', () => {
    expect(() => hostKeyPolicy(parse({}))).toThrow('host keys are verified: give input "known-hosts"');
    expect(hostKeyPolicy(parse({ 'insecure-skip-host-key-check': 'true' }))).toEqual({ kind: 'insecure' });
    expect(
      hostKeyPolicy(parse({ 'host-fingerprint': 'SHA256:UAP46wM0guBqLtvowcYjZqKBXja+yB6DSCbjaTlCYEg' })).kind,
    ).toBe('fingerprint');
  });

  it('never lets known-hosts and a fingerprint (or either and the insecure switch) silently win over the other', () => {
    const kh = '[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB2BZ/M3Hw033cYm9jjhSItADv4wXxHCmbjFemDBPTtM';
    const fp = 'SHA256:UAP46wM0guBqLtvowcYjZqKBXja+yB6DSCbjaTlCYEg';
    expect(() => hostKeyPolicy(parse({ 'known-hosts': kh, 'host-fingerprint': fp }))).toThrow(/exclude each other/);
    expect(() => hostKeyPolicy(parse({ 'known-hosts': kh, 'insecure-skip-host-key-check': 'true' }))).toThrow(
      /exclude each other/,
    );
    expect(() => hostKeyPolicy(parse({ 'host-fingerprint': fp, 'insecure-skip-host-key-check': 'true' }))).toThrow(
      /exclude each other/,
    );
  });
});

describe('app settings', () => {
  it('takes the version from the tag or the digest, and keeps secrets as Secret values', () => {
    expect(versionOf('reg/app:v1.4.2')).toBe('v1.4.2');
    expect(versionOf(`reg/app@sha256:${'ab'.repeat(32)}`)).toBe('sha256:abababababab');
    const cfg = appConfigFromInputs(
      imageDeployInputs(parse({ 'secret-env': 'A=s3cret', command: 'gunicorn -b "0.0.0.0:8000"' })),
    );
    expect(cfg.version).toBe('v1');
    expect(cfg.command).toEqual(['gunicorn', '-b', '0.0.0.0:8000']);
    expect(JSON.stringify(cfg)).not.toContain('s3cret');
    expect(cfg.secretEnv.A!.reveal()).toBe('s3cret');
  });
});
