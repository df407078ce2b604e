import { describe, expect, it } from 'vitest';
import { deployRules, deploySpec, imageRegistry, imageTag, splitCommand } from '../../../src/config/actions/deploy.js';
import { actionSpecs } from '../../../src/config/actions/index.js';
import { parseInputs, type RawInputs } from '../../../src/config/input-spec.js';
import { deployInputIssues } from '../../support/deploy-fixtures.js';

const base: RawInputs = {
  hosts: 'vps1 ansible_host=127.0.0.1 ansible_port=2222',
  image: '127.0.0.1:5000/dyce/sample-app:v1',
  name: 'melton-app',
};

function parse(extra: RawInputs) {
  return parseInputs(deploySpec, { ...base, ...extra }, deployRules);
}

const issues = (extra: RawInputs): string[] => deployInputIssues({ ...base, ...extra });

describe('deploy inputs', () => {
  it('is listed among the actions', () => {
    expect(actionSpecs.map((s) => s.id)).toContain('deploy');
  });

  it('parses the Melton shape with the defaults', () => {
    const i = parse({
      replicas: '4',
      port: '8000',
      'network-mode': 'host',
      volumes: '/root/melton-app/staticfiles:/code/api/static/',
      'log-driver': 'loki',
      'log-options': 'loki-url=http://localhost:3100/loki/api/v1/push\nloki-external-labels=tag=melton',
      'secret-env': 'DJANGO_SECRET_KEY=a$b`c"d',
      'secret-files': 'tls.key<<EOF\n-----BEGIN KEY-----\nabc\nEOF',
    });
    expect(i.replicas).toBe(4);
    expect(i['host-ip']).toBe('127.0.0.1');
    expect(i['restart-policy']).toBe('unless-stopped');
    expect(i['lock-wait']).toBe(120_000);
    expect(i['secret-env']).toEqual([{ key: 'DJANGO_SECRET_KEY', value: 'a$b`c"d', line: 1 }]);
    expect(i['secret-files']?.[0]?.value).toBe('-----BEGIN KEY-----\nabc');
    expect(i['log-options']?.[1]).toMatchObject({ key: 'loki-external-labels', value: 'tag=melton' });
  });

  it.each([
    [{ replicas: '0' }, 'input "replicas" must be at least 1, got 0'],
    [{ replicas: '-2' }, 'input "replicas" must be at least 1, got -2'],
    [{ name: 'Melton_App' }, 'input "name" must match [a-z0-9][a-z0-9_.-]*'],
    [{ name: '-x' }, 'input "name" must match'],
    [{ image: '127.0.0.1:5000/dyce/sample-app' }, 'input "image" needs a tag or digest'],
    [{ hosts: '' }, 'input "hosts" or input "inventory" is required'],
    [{ inventory: 'hosts.ini' }, 'exclude each other'],
    [{ 'registry-username': 'u' }, 'input "registry-password" is required with "registry-username"'],
    [{ 'host-port': '9000' }, 'input "host-port" needs input "port"'],
    [{ 'host-ip': 'localhost' }, 'input "host-ip" must be an IP address'],
    [{ 'network-mode': 'host' }, 'input "port" is required with network-mode host'],
    [{ 'restart-policy': 'sometimes' }, 'input "restart-policy" must be'],
    [{ volumes: 'data' }, 'input "volumes": expected source:/target'],
    [{ labels: 'dyce.app=x' }, 'labels starting with dyce. are Dyce'],
    [{ 'log-options': 'mode=non-blocking' }, 'input "log-options" needs input "log-driver"'],
    [
      { 'log-driver': 'loki', 'log-options': 'loki-retires=5' },
      'loki-retires (line 1) is not an option of the loki log driver (did you mean loki-retries?)',
    ],
    // The real Loki driver's validateDriverOpt lets json-file's `tag`, `labels-regex` and `compress` through: no.
    [{ 'log-driver': 'loki', 'log-options': 'tag={{.Name}}' }, 'tag (line 1) is not an option of the loki log driver'],
    [{ command: 'gunicorn "app' }, 'input "command": unclosed double quote'],
    [{ 'lock-stale': '1s' }, 'input "lock-stale" must be at least 3s'],
    [{ version: 'v1 beta' }, 'input "version" must be letters, digits'],
    // The reference grammar: an option smuggled as an image, an upper-case repository, a bad digest.
    [{ image: '--privileged=true:v1' }, 'input "image" is not an image reference ("--privileged=true" is not a valid'],
    [{ image: '-v/:/host:ro' }, 'input "image" is not an image reference'],
    [{ image: 'Reg/App:v1' }, 'input "image" is not an image reference (repository names must be lower-case'],
    [{ image: 'app@sha256:xyz' }, 'input "image": the digest must be @sha256: and 64 lower-case hex digits'],
  ])('refuses %j', (extra, message) => {
    expect(issues(extra).join('\n')).toContain(message);
  });

  it('refuses a secret-env value with a newline, naming the key and never the value', () => {
    const found = issues({ 'secret-env': 'OK=fine\nDB_PASSWORD<<EOF\nline-one-s3cr3t\nline-two\nEOF' });
    expect(found.join('\n')).toContain('the value of DB_PASSWORD contains a newline (line 2)');
    expect(found.join('\n')).not.toContain('s3cr3t');
  });

  it("accepts the loki driver's options and Docker's generic ones", () => {
    const i = parse({
      'log-driver': 'loki',
      'log-options': 'loki-retries=5\nloki-batch-size=400\nmode=non-blocking\nmax-buffer-size=4m\nkeep-file=true',
    });
    expect(i['log-options']).toHaveLength(5);
  });
});

describe('image refs and commands', () => {
  it.each([
    ['nginx:1.27', 'nginx:1.27'.split(':')[1], undefined],
    ['127.0.0.1:5000/dyce/app:v1', 'v1', '127.0.0.1:5000'],
    ['127.0.0.1:5000/dyce/app', undefined, '127.0.0.1:5000'],
    ['ghcr.io/acme/app:v1@sha256:abc', 'v1', 'ghcr.io'],
    ['meltondevops/melton-app-server:v1.4.2', 'v1.4.2', undefined],
  ])('%s has tag %s and registry %s', (ref, tag, registry) => {
    expect(imageTag(ref)).toBe(tag);
    expect(imageRegistry(ref)).toBe(registry);
  });

  it('splits a command like a shell, without expanding anything', () => {
    expect(splitCommand(`gunicorn -b "0.0.0.0:8000" 'a b' $(id) \`x\` c\\ d`)).toEqual({
      words: ['gunicorn', '-b', '0.0.0.0:8000', 'a b', '$(id)', '`x`', 'c d'],
    });
  });
});
