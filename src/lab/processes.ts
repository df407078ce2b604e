import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A process the lab started, recorded so that `lab down` stops exactly it and nothing else. */
export interface ProcessRecord {
  name: string;
  pid: number;
  /** The kernel's start time of the process: with the PID, it identifies the process. */
  startTime: string;
  argv: string[];
  log: string;
  startedAt: string;
}

function recordPath(pidDir: string, name: string): string {
  return join(pidDir, `${name}.json`);
}

export function readRecord(pidDir: string, name: string): ProcessRecord | undefined {
  const p = recordPath(pidDir, name);
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as ProcessRecord;
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot), or undefined if the process is gone or a zombie. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z') return undefined;
    return fields[19];
  } catch {
    return undefined;
  }
}

/**
 * Whether the recorded process is still the one we started: same PID AND same kernel start time, so a PID
 * reused by an unrelated process is never signalled. (Command lines cannot be compared: sshd and nginx
 * rewrite their process titles.)
 */
export function isRunning(rec: ProcessRecord | undefined): rec is ProcessRecord {
  if (!rec) return false;
  return startTimeOf(rec.pid) === rec.startTime;
}

/** Starts a long-lived process detached from this one (own session), logging to a file, and records it. */
export function startProcess(
  pidDir: string,
  name: string,
  argv: string[],
  opts: { log: string; env?: NodeJS.ProcessEnv; cwd?: string },
): ProcessRecord {
  const fd = openSync(opts.log, 'a');
  try {
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    if (!child.pid) throw new Error(`could not start ${argv[0]}`);
    child.unref();
    const startTime = startTimeOf(child.pid);
    if (startTime === undefined) throw new Error(`${argv[0]} exited at once; see ${opts.log}`);
    const rec: ProcessRecord = {
      name,
      pid: child.pid,
      startTime,
      argv,
      log: opts.log,
      startedAt: new Date().toISOString(),
    };
    writeFileSync(recordPath(pidDir, name), `${JSON.stringify(rec, null, 2)}\n`);
    return rec;
  } finally {
    closeSync(fd);
  }
}

/** Stops a recorded process: SIGTERM, then SIGKILL after graceMs. Returns whether it was running. */
export async function stopProcess(pidDir: string, name: string, graceMs = 30_000): Promise<boolean> {
  const rec = readRecord(pidDir, name);
  const running = isRunning(rec);
  if (running) {
    try {
      process.kill(rec.pid, 'SIGTERM');
    } catch {}
    const deadline = Date.now() + graceMs;
    while (isRunning(rec) && Date.now() < deadline) await sleep(100);
    if (isRunning(rec)) {
      try {
        process.kill(rec.pid, 'SIGKILL');
      } catch {}
      while (isRunning(rec)) await sleep(50);
    }
  }
  rmSync(recordPath(pidDir, name), { force: true });
  return running;
}

export function tailFile(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
