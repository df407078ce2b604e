import { describe, expect, it } from 'vitest';
import { ensureLokiPlugin } from '../../../src/lab/loki/plugin.js';
import { RecordingExecutor } from '../../../src/remote/executor.js';

const REF = '127.0.0.1:5000/dyce/loki-docker-driver:sha-1';
const docker = { bin: 'docker', host: 'unix:///h2.sock' };

/** A daemon's plugin list as `docker plugin inspect` would answer, and what install/enable/rm do to it. */
function fakeDaemon(initial?: { enabled: boolean; reference: string; enableFails?: boolean }) {
  let plugin = initial ? { ...initial } : undefined;
  return new RecordingExecutor('h2', (argv) => {
    const verb = argv.slice(argv.indexOf('plugin') + 1);
    if (verb[0] === 'inspect') {
      return plugin
        ? {
            code: 0,
            stdout: JSON.stringify([
              { Name: 'loki:latest', Enabled: plugin.enabled, PluginReference: plugin.reference },
            ]),
            stderr: '',
          }
        : { code: 1, stdout: '[]', stderr: 'Error: No such plugin: loki' };
    }
    if (verb[0] === 'enable') {
      if (plugin?.enableFails) return { code: 1, stdout: '', stderr: 'rootfs missing' };
      if (plugin) plugin.enabled = true;
      return { code: 0, stdout: '', stderr: '' };
    }
    if (verb[0] === 'rm') {
      plugin = undefined;
      return { code: 0, stdout: '', stderr: '' };
    }
    if (verb[0] === 'install') {
      plugin = { enabled: true, reference: argv.at(-1)! };
      return { code: 0, stdout: '', stderr: '' };
    }
    return { code: 2, stdout: '', stderr: `unexpected ${argv.join(' ')}` };
  });
}

const verbs = (e: RecordingExecutor) =>
  e.calls.map((c) => c.argv.slice(c.argv.indexOf('plugin') + 1, c.argv.indexOf('plugin') + 2)[0]);

describe('ensureLokiPlugin', () => {
  it('installs with --alias loki when absent, then leaves it alone', async () => {
    const exec = fakeDaemon();
    expect(await ensureLokiPlugin({ docker, ref: REF, exec, settings: { LOKI_HOST_LABEL: 'vps2' } })).toBe('installed');
    expect(exec.calls[1]!.argv).toEqual([
      'docker',
      '-H',
      'unix:///h2.sock',
      'plugin',
      'install',
      '--grant-all-permissions',
      '--alias',
      'loki',
      REF,
      'LOKI_HOST_LABEL=vps2',
    ]);
    expect(await ensureLokiPlugin({ docker, ref: REF, exec })).toBe('present');
    expect(verbs(exec)).toEqual(['inspect', 'install', 'inspect']);
  });

  it('enables a disabled leftover, and reinstalls one that cannot be enabled', async () => {
    const disabled = fakeDaemon({ enabled: false, reference: REF });
    expect(await ensureLokiPlugin({ docker, ref: REF, exec: disabled })).toBe('enabled');
    const broken = fakeDaemon({ enabled: false, reference: REF, enableFails: true });
    expect(await ensureLokiPlugin({ docker, ref: REF, exec: broken })).toBe('reinstalled');
    expect(verbs(broken)).toEqual(['inspect', 'enable', 'rm', 'install']);
  });

  it('keeps a plugin from another reference unless told to replace it', async () => {
    const exec = fakeDaemon({ enabled: true, reference: 'grafana/loki-docker-driver:3.3.2-amd64' });
    expect(await ensureLokiPlugin({ docker, ref: REF, exec })).toBe('present');
    expect(await ensureLokiPlugin({ docker, ref: REF, exec, replaceOther: true })).toBe('reinstalled');
    expect(await ensureLokiPlugin({ docker, ref: REF, exec, replaceOther: true })).toBe('present');
  });
});
