import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePlayFlags } from '../../../src/cli/play.js';
import { runLocal } from '../../../src/remote/local.js';
import { MELTON_DIR } from '../../support/melton.js';

/**
 * `dyce play` refuses bad playbooks and inventories with file:line and touches no host: the inventory points at a
 * local TCP listener standing in for the host, which must see no connection at all.
 */

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const dir = mkdtempSync(join(tmpdir(), 'dyce-play-cli-'));
let server: Server;
let connections = 0;
let hostsFile = '';
let knownHosts = '';
// A well-formed key and a known_hosts file, so that a good playbook does reach for the host (the control below).
const KEY = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  publicKeyEncoding: { type: 'pkcs1', format: 'pem' },
}).privateKey;

beforeAll(async () => {
  server = createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  hostsFile = join(dir, 'hosts');
  knownHosts = join(dir, 'known_hosts');
  writeFileSync(
    knownHosts,
    `[127.0.0.1]:${port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICkk+PnRIQgh299GK72//1crBQ5O00IifLDhVbUSL5G8\n`,
  );
  writeFileSync(
    hostsFile,
    `[servers]\nindenwolken ansible_host=127.0.0.1 ansible_port=${port}\n\n[all:vars]\nansible_user=root\n`,
  );
});
afterAll(() => server.close());

function play(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runLocal(
    [
      process.execPath,
      '--import',
      'tsx',
      join(repoRoot, 'src/cli/main.ts'),
      'play',
      ...args,
      '--known-hosts-file',
      knownHosts,
    ],
    { cwd: repoRoot, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, DYCE_SSH_PRIVATE_KEY: KEY } },
  );
}

const melton = readFileSync(join(MELTON_DIR, 'playbook.yml'), 'utf8');
const VARS = ['-e', 'REGISTRY=r:5000 DOCKER_TAG=v1 DOCKER_USERNAME=u', '-e', '{"DOCKER_PASSWORD": "pw-1234"}'];

describe('dyce play refuses bad input before touching any host', () => {
  const cases: { name: string; playbook?: string; inventory?: string; vars?: string[]; code: number; error: RegExp }[] =
    [
      {
        name: 'an unknown module',
        playbook: melton.replace('docker_image:', 'docker_imagez:'),
        code: 4,
        error: /playbook\.yml:25: unknown module or task keyword "docker_imagez"/,
      },
      {
        name: 'an unknown filter',
        playbook: melton.replace('{{ base_port + item | int }}', '{{ base_port + item | integer }}'),
        code: 4,
        error: /playbook\.yml:35: unknown filter "integer"/,
      },
      {
        name: 'an undefined variable',
        vars: ['-e', 'REGISTRY=r:5000 DOCKER_TAG=v1 DOCKER_USERNAME=u'],
        code: 2,
        error: /playbook\.yml:22: task "Log into the private registry" on indenwolken: 'DOCKER_PASSWORD' is undefined/,
      },
      {
        name: 'bad YAML',
        playbook: melton.replace('  vars:', '  vars: [oops'),
        code: 4,
        error: /playbook\.yml:\d+: invalid YAML/,
      },
      {
        name: 'a bad inventory',
        inventory: '[servers]\nindenwolken ansible_host=127.0.0.1 ansible_port=notaport\n',
        code: 4,
        error: /hosts:2: host "indenwolken": ansible_port: must be a whole number/,
      },
      {
        name: 'a when that is not an expression',
        playbook: melton.replace('      loop: [', '      when: "x = = 1"\n      loop: ['),
        code: 4,
        error: /playbook\.yml:16: when is not an expression/,
      },
    ];

  it.each(cases)(
    '$name: exit $code, file:line, no connection',
    async (c) => {
      const pb = join(dir, `${c.name.replace(/\W+/g, '-')}`, 'playbook.yml');
      mkdirSync(dirname(pb), { recursive: true });
      writeFileSync(pb, c.playbook ?? melton);
      let inv = hostsFile;
      if (c.inventory) {
        inv = join(dirname(pb), 'hosts');
        writeFileSync(inv, c.inventory);
      }
      const before = connections;
      const r = await play(['-i', inv, pb, ...(c.vars ?? VARS)]);
      expect(r.code, r.stderr).toBe(c.code);
      expect(r.stderr).toMatch(c.error);
      expect(r.stderr).not.toContain('internal error');
      expect(connections - before).toBe(0);
    },
    30_000,
  );

  it('control: a good playbook does connect to the host (so a count of 0 above means something)', async () => {
    const pb = join(dir, 'control', 'playbook.yml');
    mkdirSync(dirname(pb), { recursive: true });
    writeFileSync(pb, melton);
    const before = connections;
    const r = await play(['-i', hostsFile, pb, ...VARS]);
    expect(r.code, r.stderr).toBe(4);
    expect(connections - before).toBeGreaterThan(0);
  }, 30_000);

  it('warns about a secret on the command line without printing it', async () => {
    const r = await play(['-i', hostsFile, join(dir, 'nope.yml'), ...VARS]);
    expect(r.stderr).toContain('DOCKER_PASSWORD looks secret');
    expect(r.stderr).not.toContain('pw-1234');
  }, 30_000);

  it('refuses unknown options with exit 5', async () => {
    const r = await play(['-i', hostsFile, 'x.yml', '--frobnicate']);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('unknown option --frobnicate');
  }, 30_000);
});

describe('parsePlayFlags', () => {
  it('reads Ansible-style flags', () => {
    expect(
      parsePlayFlags([
        '-i',
        'hosts',
        'pb.yml',
        '-e',
        'a=1',
        '--extra-vars=@f.yml',
        '-C',
        '--tags',
        'x,y',
        '-l',
        'web',
        '--json',
      ]),
    ).toMatchObject({
      inventory: 'hosts',
      playbooks: ['pb.yml'],
      extra: [
        { text: 'a=1', origin: '-e' },
        { text: '@f.yml', origin: '-e' },
      ],
      check: true,
      tags: ['x', 'y'],
      limit: 'web',
      json: true,
    });
    expect(() => parsePlayFlags(['pb.yml'])).toThrow(/inventory/);
    // --syntax-check touches no host: it needs no inventory.
    expect(parsePlayFlags(['--syntax-check', 'pb.yml'])).toMatchObject({ syntaxOnly: true, playbooks: ['pb.yml'] });
    expect(parsePlayFlags(['-i', 'h', '--check', '--diff', 'pb.yml'])).toMatchObject({ check: true, diff: true });
  });
});
