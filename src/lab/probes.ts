import { request } from 'node:http';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** GET over a unix socket (dockerd's /_ping) or TCP; resolves the status code, or undefined on a connection error. */
export function httpStatus(
  target: { socketPath: string } | { port: number; host?: string },
  path: string,
  headers: Record<string, string> = {},
  timeoutMs = 2000,
): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = request(
      {
        ...('socketPath' in target
          ? { socketPath: target.socketPath }
          : { host: target.host ?? '127.0.0.1', port: target.port }),
        path,
        method: 'GET',
        headers,
        timeout: timeoutMs,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/** Resolves true when the port answers with an SSH banner. */
export function sshBanner(port: number, host = '127.0.0.1', timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('data', (d) => done(d.toString('latin1').startsWith('SSH-')));
    s.once('error', () => done(false));
  });
}

export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  onTimeout: () => string = () => '',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 50;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(delay);
    delay = Math.min(delay * 2, 500);
  }
  const extra = onTimeout();
  throw new Error(`${what} did not become ready within ${Math.round(timeoutMs / 1000)}s${extra ? `\n${extra}` : ''}`);
}
