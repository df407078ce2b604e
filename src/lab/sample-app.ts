/**
 * The lab's sample app: a small HTTP server run by the machine's own `node` binary, copied with the shared libraries
 * it links into the app base image (`dyce-lab/app-base`, busybox + node), so that the image builds offline.
 * It stands in for a real app server (gunicorn, node, puma): a kernel listen backlog of 511, so that a burst of
 * connections waits in the queue instead of being dropped. (Session 1's busybox `nc -ll -e` server had a backlog
 * of 2: under load nginx's connects timed out, and a test of zero downtime measured the sample app, not Dyce.)
 * Endpoints: GET /health, GET /version, POST /echo, GET /sleep?ms=N, POST /admin/health?state=fail|ok, GET /.
 * Behaviour knobs (env, baked per tag by build args): APP_VERSION, HEALTH=ok|fail, STARTUP_DELAY (seconds), PORT.
 * Every response closes its connection. One log line per request goes to stderr (the container log).
 * On SIGTERM it stops accepting, lets requests in flight finish, and exits.
 */
export const SAMPLE_APP_SERVER = `'use strict';
const http = require('node:http');
const fs = require('node:fs');
const version = process.env.APP_VERSION || 'v0';
const port = Number(process.env.PORT || 8000);
const delay = Number(process.env.STARTUP_DELAY || 0);
const log = (line) => process.stderr.write(line + '\\n');
const unhealthy = () => process.env.HEALTH === 'fail' || fs.existsSync('/tmp/unhealthy');

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://app');
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const reply = (status, body) => {
      const headers = { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body), Connection: 'close' };
      res.writeHead(status, { ...headers, 'X-App-Version': version });
      res.end(body);
      log('version=' + version + ' method=' + req.method + ' path=' + url.pathname + ' status=' + status);
    };
    const route = req.method + ' ' + url.pathname;
    if (route === 'GET /health') return unhealthy() ? reply(503, 'unhealthy ' + version) : reply(200, 'ok ' + version);
    if (route === 'GET /version') return reply(200, version);
    if (route === 'POST /echo') return reply(200, Buffer.concat(chunks));
    if (route === 'GET /sleep') {
      const ms = /^[0-9]+$/.test(url.searchParams.get('ms') || '') ? Number(url.searchParams.get('ms')) : 0;
      return setTimeout(() => reply(200, 'slept ' + ms + 'ms'), ms);
    }
    if (route === 'POST /admin/health') {
      if (url.searchParams.get('state') === 'fail') fs.writeFileSync('/tmp/unhealthy', '');
      else fs.rmSync('/tmp/unhealthy', { force: true });
      return reply(200, 'done');
    }
    if (route === 'GET /') return reply(200, 'dyce sample app ' + version);
    return reply(404, 'not found');
  });
});
server.keepAliveTimeout = 0;

// Like a real app server: on SIGTERM stop accepting, let the requests in flight finish, then exit.
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  server.close(() => {
    log('sample app ' + version + ' stopped');
    process.exit(0);
  });
  setTimeout(() => process.exit(0), 10000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

log('sample app ' + version + ' starting on port ' + port + ' (startup delay ' + delay + 's, health ' + (process.env.HEALTH || 'ok') + ')');
setTimeout(() => {
  server.listen({ port, backlog: 511 }, () => log('sample app ' + version + ' listening on ' + port));
}, delay * 1000);
`;

/** The app base image: the lab's busybox base plus the machine's `node` and the libraries it links. */
export const APP_BASE_IMAGE = 'dyce-lab/app-base:latest';

export const SAMPLE_APP_DOCKERFILE = `ARG BASE=${APP_BASE_IMAGE}
FROM \${BASE}
ARG APP_VERSION=v1
ARG HEALTH=ok
ARG STARTUP_DELAY=0
ENV APP_VERSION=\${APP_VERSION} HEALTH=\${HEALTH} STARTUP_DELAY=\${STARTUP_DELAY} PORT=8000
COPY server.js /app/
EXPOSE 8000
LABEL org.opencontainers.image.title=dyce-sample-app
STOPSIGNAL SIGTERM
ENTRYPOINT ["/bin/node", "/app/server.js"]
`;

/** The tags the lab builds and pushes: ordinary versions, one that never becomes healthy, one slow to start. */
export const SAMPLE_APP_VARIANTS: { tag: string; args: Record<string, string> }[] = [
  { tag: 'v1', args: { APP_VERSION: 'v1' } },
  { tag: 'v2', args: { APP_VERSION: 'v2' } },
  { tag: 'v3', args: { APP_VERSION: 'v3' } },
  { tag: 'v4', args: { APP_VERSION: 'v4' } },
  { tag: 'never-healthy', args: { APP_VERSION: 'never-healthy', HEALTH: 'fail' } },
  { tag: 'slow-start', args: { APP_VERSION: 'slow-start', STARTUP_DELAY: '8' } },
];

/** Commands the base image needs from busybox, as symlinks in its rootfs. */
export const BASE_IMAGE_APPLETS = [
  'sh',
  'usleep',
  'sleep',
  'date',
  'head',
  'tr',
  'sed',
  'wc',
  'printf',
  'echo',
  'cat',
  'ls',
  'rm',
  'touch',
  'env',
  'id',
  'ps',
  'kill',
  'mkdir',
  'grep',
  'stat',
];
