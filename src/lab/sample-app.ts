/**
 * The lab's sample app: a tiny HTTP server in busybox sh, so that its image builds offline from the
 * busybox-static base. `nc -ll -e` forks the handler for every connection (concurrent, like a real server).
 * Endpoints: GET /health, GET /version, POST /echo, GET /sleep?ms=N, POST /admin/health?state=fail|ok.
 * Behaviour knobs (env, baked per tag by build args): APP_VERSION, HEALTH=ok|fail, STARTUP_DELAY (seconds).
 * One log line per request goes to stderr (the container log).
 */
export const SAMPLE_APP_HANDLER = `#!/bin/busybox sh
# One HTTP/1.1 request per connection; the response always closes the connection.
read -r method target proto || exit 0
len=0
while IFS= read -r line; do
  line=\${line%$(printf '\\r')}
  [ -z "$line" ] && break
  case "$line" in
    [Cc]ontent-[Ll]ength:*) len=\${line#*:}; len=\${len// /} ;;
  esac
done
path=\${target%%\\?*}
query=
case "$target" in *\\?*) query=\${target#*\\?} ;; esac
param() { echo "$query" | tr '&' '\\n' | sed -n "s/^$1=//p" | head -n 1; }
status=200
ctype=text/plain
body=
case "$method $path" in
  "GET /health")
    if [ "$HEALTH" = fail ] || [ -e /tmp/unhealthy ]; then status=503; body="unhealthy $APP_VERSION"; else body="ok $APP_VERSION"; fi ;;
  "GET /version") body="$APP_VERSION" ;;
  "POST /echo")
    if [ "$len" -gt 0 ] 2>/dev/null; then body=$(head -c "$len"); fi ;;
  "GET /sleep")
    ms=$(param ms); case "$ms" in ''|*[!0-9]*) ms=0 ;; esac
    usleep $((ms * 1000)); body="slept \${ms}ms" ;;
  "POST /admin/health")
    if [ "$(param state)" = fail ]; then touch /tmp/unhealthy; else rm -f /tmp/unhealthy; fi; body=done ;;
  "GET /")
    body="dyce sample app $APP_VERSION" ;;
  *) status=404; body="not found" ;;
esac
case $status in 200) reason=OK ;; 404) reason="Not Found" ;; 503) reason="Service Unavailable" ;; *) reason=Error ;; esac
printf 'HTTP/1.1 %s %s\\r\\nContent-Type: %s\\r\\nContent-Length: %s\\r\\nX-App-Version: %s\\r\\nConnection: close\\r\\n\\r\\n%s' \\
  "$status" "$reason" "$ctype" "$(printf %s "$body" | wc -c)" "$APP_VERSION" "$body"
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) version=$APP_VERSION method=$method path=$path status=$status" >&2
`;

export const SAMPLE_APP_ENTRYPOINT = `#!/bin/busybox sh
# Starts the server on $PORT after STARTUP_DELAY seconds (to imitate a slow-starting app).
: "\${PORT:=8000}"
echo "sample app $APP_VERSION starting on port $PORT (startup delay \${STARTUP_DELAY:-0}s, health \${HEALTH:-ok})" >&2
if [ "\${STARTUP_DELAY:-0}" -gt 0 ] 2>/dev/null; then sleep "$STARTUP_DELAY"; fi
echo "sample app $APP_VERSION listening on $PORT" >&2
busybox nc -ll -p "$PORT" -e /app/handler.sh &
server=$!
# Like a real app server: on SIGTERM stop accepting, let requests in flight finish (up to 2s), then exit.
# (As PID 1 without a handler, the shell would ignore SIGTERM and every stop would wait out Docker's timeout.)
drain() {
  kill "$server" 2>/dev/null
  n=0
  while [ $n -lt 40 ] && ps | grep -q '[h]andler.sh'; do usleep 50000; n=$((n + 1)); done
  echo "sample app $APP_VERSION stopped" >&2
  exit 0
}
trap drain TERM INT
wait "$server"
`;

export const SAMPLE_APP_DOCKERFILE = `ARG BASE=dyce-lab/base:latest
FROM \${BASE}
ARG APP_VERSION=v1
ARG HEALTH=ok
ARG STARTUP_DELAY=0
ENV APP_VERSION=\${APP_VERSION} HEALTH=\${HEALTH} STARTUP_DELAY=\${STARTUP_DELAY} PORT=8000
COPY handler.sh entrypoint.sh /app/
EXPOSE 8000
LABEL org.opencontainers.image.title=dyce-sample-app
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/entrypoint.sh"]
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
  'nc',
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
