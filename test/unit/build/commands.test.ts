import { describe, expect, it, test } from 'vitest';
import {
  type BuildRequest,
  buildCommand,
  buildkitProbe,
  capabilityIssues,
  loginCommand,
  logoutCommand,
  ociLabels,
  pushCommand,
  serverHasBuildkit,
} from '../../../src/build/commands.js';
import { backoffMs, classifyRegistryFailure } from '../../../src/build/retry.js';

const req: BuildRequest = {
  context: '/src/app',
  dockerfile: '/src/app/Dockerfile',
  refs: ['r/app:v1', 'r/app:sha-0123456'],
  labels: { 'org.opencontainers.image.version': 'v1' },
  buildArgs: [{ key: 'MODE', value: 'prod' }],
  secretBuildArgs: ['API_KEY'],
  secretFiles: [{ id: 'token', path: '/tmp/s/secret-0' }],
  cacheFrom: [],
  cacheTo: [],
  platforms: [],
  iidFile: '/tmp/b/iid',
  load: true,
  pushFromBuilder: false,
};

describe('build argv', () => {
  it('BuildKit through the docker client: DOCKER_BUILDKIT=1, secrets as files, secret build args by name only', () => {
    const c = buildCommand({ kind: 'buildkit', docker: '/usr/bin/docker' }, req);
    expect(c.env).toEqual({ DOCKER_BUILDKIT: '1' });
    expect(c.argv.join(' ')).toBe(
      '/usr/bin/docker build --progress=plain --file /src/app/Dockerfile --tag r/app:v1 --tag r/app:sha-0123456 --label org.opencontainers.image.version=v1 --build-arg MODE=prod --build-arg API_KEY --secret id=token,src=/tmp/s/secret-0 --iidfile /tmp/b/iid /src/app',
    );
  });

  it('buildx: loads into the local store for a separate push, or pushes itself for several platforms', () => {
    const one = buildCommand(
      { kind: 'buildx', docker: 'docker' },
      { ...req, cacheTo: ['type=gha'], metadataFile: '/m' },
    );
    expect(one.argv.slice(0, 4)).toEqual(['docker', 'buildx', 'build', '--progress=plain']);
    expect(one.argv).toContain('--load');
    expect(one.argv.join(' ')).toContain('--cache-to type=gha');
    expect(one.argv.join(' ')).toContain('--metadata-file /m');
    const multi = buildCommand(
      { kind: 'buildx', docker: 'docker' },
      { ...req, platforms: ['linux/amd64', 'linux/arm64'], load: false, pushFromBuilder: true },
    );
    expect(multi.argv).toContain('--push');
    expect(multi.argv).not.toContain('--load');
    expect(multi.argv.join(' ')).toContain('--platform linux/amd64,linux/arm64');
    expect(multi.argv.at(-1)).toBe('/src/app');
  });

  it('classic builder: DOCKER_BUILDKIT=0; inline cache becomes the BUILDKIT_INLINE_CACHE arg only with BuildKit', () => {
    const c = buildCommand({ kind: 'classic', docker: 'docker' }, { ...req, secretFiles: [], target: 'prod' });
    expect(c.env).toEqual({ DOCKER_BUILDKIT: '0' });
    expect(c.argv.slice(0, 2)).toEqual(['docker', 'build']);
    expect(c.argv.join(' ')).toContain('--target prod');
    const inline = buildCommand({ kind: 'buildkit', docker: 'docker' }, { ...req, cacheTo: ['type=inline'] });
    expect(inline.argv.join(' ')).toContain('--build-arg BUILDKIT_INLINE_CACHE=1');
    expect(inline.argv).not.toContain('--cache-to');
  });

  test.each([
    ['buildkit', false, false],
    ['classic', false, false],
    ['buildx', false, false],
    ['buildkit', true, true],
    ['classic', true, true],
    ['buildx', true, true],
  ] as const)('%s: no-cache=%s, pull=%s become --no-cache and --pull', (kind, noCache, pull) => {
    const argv = buildCommand({ kind, docker: 'docker' }, { ...req, noCache, pull }).argv;
    expect(argv.includes('--no-cache')).toBe(noCache);
    expect(argv.includes('--pull')).toBe(pull);
  });

  it('buildx: provenance and sbom passed as given, pushed from the builder, loaded only when asked', () => {
    const c = buildCommand(
      { kind: 'buildx', docker: 'docker' },
      { ...req, provenance: 'mode=max', sbom: 'true', load: false, pushFromBuilder: true },
    );
    expect(c.argv).toEqual(expect.arrayContaining(['--provenance=mode=max', '--sbom=true', '--push']));
    expect(c.argv).not.toContain('--load');
    const both = buildCommand({ kind: 'buildx', docker: 'docker' }, { ...req, load: true, pushFromBuilder: true });
    expect(both.argv).toEqual(expect.arrayContaining(['--load', '--push']));
    // docker build has no such flags: they are refused before (capabilityIssues), never passed.
    const bk = buildCommand({ kind: 'buildkit', docker: 'docker' }, { ...req, provenance: 'true', sbom: 'true' });
    expect(bk.argv.join(' ')).not.toMatch(/--provenance|--sbom|--load|--push/);
  });

  test.each([
    [
      'classic',
      { secretFiles: [{ id: 'a', path: '' }], cacheTo: [], platforms: [] },
      /secrets.*BuildKit.*install the buildx plugin/,
    ],
    ['classic', { secretFiles: [], cacheTo: ['type=inline'], platforms: [] }, /cache-to.*buildx/],
    ['buildkit', { secretFiles: [], cacheTo: ['type=registry,ref=x'], platforms: [] }, /type=inline/],
    ['buildkit', { secretFiles: [], cacheTo: [], platforms: ['linux/amd64', 'linux/arm64'] }, /several "platforms"/],
    ['buildkit', { secretFiles: [], cacheTo: [], platforms: [], provenance: 'mode=max' }, /"provenance" needs buildx/],
    ['classic', { secretFiles: [], cacheTo: [], platforms: [], sbom: 'true' }, /"sbom" needs buildx/],
    ['buildkit', { secretFiles: [], cacheTo: [], platforms: [], load: false }, /"load: false" needs buildx/],
  ] as const)('%s builder refuses %j', (kind, request, message) => {
    expect(capabilityIssues(kind, request).join('\n')).toMatch(message);
  });

  test.each([
    ['buildkit', { secretFiles: [{ id: 'a', path: '' }], cacheTo: ['type=inline'], platforms: ['linux/amd64'] }],
    [
      'buildx',
      { secretFiles: [{ id: 'a', path: '' }], cacheTo: ['type=gha'], platforms: ['linux/amd64', 'linux/arm64'] },
    ],
    ['classic', { secretFiles: [], cacheTo: [], platforms: [] }],
    ['buildkit', { secretFiles: [], cacheTo: [], platforms: [], provenance: 'false', sbom: 'false', load: true }],
    ['buildx', { secretFiles: [], cacheTo: [], platforms: [], provenance: 'mode=max', sbom: 'true', load: false }],
  ] as const)('%s builder accepts %j', (kind, request) => {
    expect(capabilityIssues(kind, request)).toEqual([]);
  });
});

describe('registry argv', () => {
  it('logs in with --password-stdin: the password is stdin, never argv', () => {
    const c = loginCommand('docker', '127.0.0.1:5000', 'dyce', 's3cr3t');
    expect(c.argv).toEqual(['docker', 'login', '--username', 'dyce', '--password-stdin', '127.0.0.1:5000']);
    expect(c.stdin).toBe('s3cr3t');
    expect(c.argv.join(' ')).not.toContain('s3cr3t');
    expect(loginCommand('docker', 'docker.io', 'u', 'p').argv.at(-1)).toBe('--password-stdin');
  });
  it('logout, push and the BuildKit probe', () => {
    expect(logoutCommand('docker', 'ghcr.io').argv).toEqual(['docker', 'logout', 'ghcr.io']);
    expect(pushCommand('docker', 'r/app:v1').argv).toEqual(['docker', 'push', 'r/app:v1']);
    expect(buildkitProbe('/usr/bin/docker')).toEqual({
      argv: ['/usr/bin/docker', 'build', '--help'],
      env: { DOCKER_BUILDKIT: '1' },
    });
  });

  test.each([
    ['linux 20.10.24+dfsg1', true],
    ['linux 28.2.2', true],
    ['linux 18.09.0', true],
    ['linux 18.06.1-ce', false],
    ['windows 20.10.0', false],
    ['', false],
  ])('daemon %j can run BuildKit: %s', (version, yes) => {
    expect(serverHasBuildkit(version)).toBe(yes);
  });
});

describe('OCI labels', () => {
  it('adds source, revision, created, version and title', () => {
    expect(
      ociLabels({
        source: 'https://github.com/org/melton',
        revision: 'abc',
        created: new Date('2026-01-02T03:04:05Z'),
        version: 'v1.4.2',
        title: 'melton-app-server',
      }),
    ).toEqual({
      'org.opencontainers.image.source': 'https://github.com/org/melton',
      'org.opencontainers.image.revision': 'abc',
      'org.opencontainers.image.created': '2026-01-02T03:04:05.000Z',
      'org.opencontainers.image.version': 'v1.4.2',
      'org.opencontainers.image.title': 'melton-app-server',
    });
  });
});

describe('registry failures', () => {
  test.each([
    [
      'Error response from daemon: login attempt to http://127.0.0.1:5000/v2/ failed with status: 401 Unauthorized',
      'auth',
    ],
    ['unauthorized: authentication required', 'auth'],
    ['denied: requested access to the resource is denied', 'auth'],
    ['received unexpected HTTP status: 503 Service Unavailable', 'transient'],
    ['received unexpected HTTP status: 500 Internal Server Error', 'transient'],
    ['toomanyrequests: You have reached your pull rate limit', 'transient'],
    ['429 Too Many Requests', 'transient'],
    [
      'Get "http://127.0.0.1:5001/v2/": read tcp 127.0.0.1:1->127.0.0.1:5001: read: connection reset by peer',
      'transient',
    ],
    ['net/http: TLS handshake timeout', 'transient'],
    ['Put "http://r/v2/x/blobs/uploads/1": EOF', 'transient'],
    ['dial tcp 127.0.0.1:5000: connect: connection refused', 'transient'],
    ['name unknown: repository name not known to registry', 'fatal'],
    ['manifest invalid: manifest invalid', 'fatal'],
    ['An image does not exist locally with the tag: r/app', 'fatal'],
  ])('%s -> %s', (text, kind) => {
    expect(classifyRegistryFailure(text)).toBe(kind);
  });

  it('never treats a refused login as transient, even when the text mentions a timeout', () => {
    expect(classifyRegistryFailure('401 Unauthorized (after timeout)')).toBe('auth');
  });

  it('backs off exponentially up to a cap', () => {
    expect([1, 2, 3, 4].map((a) => backoffMs(a, 1000))).toEqual([1000, 2000, 4000, 8000]);
    expect(backoffMs(10, 1000)).toBe(30_000);
  });
});
