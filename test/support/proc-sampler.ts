import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';

/**
 * Watches every process's argv on this machine (`/proc/<pid>/cmdline`, read every few milliseconds) for
 * secret values, to prove that a secret travels only through stdin or files.
 *
 * It runs as a separate process so that the test's own event loop (busy with SSH) cannot starve it. The
 * needles reach it on stdin, never on its command line, so it cannot find itself; it skips its own pid anyway.
 *
 * A sampler that finds nothing proves nothing unless it can find something: call `proveItself()` first. It
 * plants a short-lived process whose argv holds a needle and fails unless the sampler reports it.
 */
export interface ProcHit {
  pid: number;
  /** Which needle (index into the needles given). The value itself is never printed. */
  needle: number;
  /** The hit's argv with every needle replaced by <needle N>. */
  argv: string[];
}

export interface SamplerReport {
  hits: ProcHit[];
  sweeps: number;
}

// The child: sync sweeps scheduled with setTimeout, so stdin (stop) is still read between sweeps.
const CHILD = String.raw`
const fs = require('fs');
let cfg = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { cfg += d; const nl = cfg.indexOf('\n'); if (nl >= 0 && !started) start(JSON.parse(cfg.slice(0, nl))); });
process.stdin.on('end', () => { stop = true; });
let started = false, stop = false, sweeps = 0;
const seen = new Set();
function start(c) {
  started = true;
  const needles = c.needles.map((n) => Buffer.from(n, 'utf8'));
  const self = String(process.pid);
  const sweep = () => {
    for (const pid of fs.readdirSync('/proc')) {
      if (pid === self || pid.charCodeAt(0) > 57) continue;
      let buf;
      try { buf = fs.readFileSync('/proc/' + pid + '/cmdline'); } catch { continue; }
      for (let i = 0; i < needles.length; i++) {
        if (buf.indexOf(needles[i]) >= 0 && !seen.has(pid + ':' + i)) {
          seen.add(pid + ':' + i);
          let argv = buf.toString('utf8').split('\0').filter((a, j, all) => j < all.length - 1 || a !== '');
          argv = argv.map((a) => { for (let k = 0; k < c.needles.length; k++) a = a.split(c.needles[k]).join('<needle ' + k + '>'); return a; });
          process.stdout.write(JSON.stringify({ hit: { pid: Number(pid), needle: i, argv } }) + '\n');
        }
      }
    }
    sweeps++;
    if (stop) { process.stdout.write(JSON.stringify({ done: sweeps }) + '\n'); process.exit(0); }
    setTimeout(sweep, c.intervalMs);
  };
  process.stdout.write(JSON.stringify({ ready: true }) + '\n');
  sweep();
}
`;

export class ProcSampler {
  readonly #needles: string[];
  readonly #intervalMs: number;
  #child: ChildProcessWithoutNullStreams | undefined;
  readonly #hits: ProcHit[] = [];
  #sweeps = 0;
  #buffer = '';
  #onLine: ((msg: Record<string, unknown>) => void)[] = [];

  constructor(needles: readonly string[], opts: { intervalMs?: number } = {}) {
    if (needles.length === 0 || needles.some((n) => n.length < 4))
      throw new Error('ProcSampler: needles must be at least 4 characters (short ones match by chance)');
    this.#needles = [...needles];
    this.#intervalMs = opts.intervalMs ?? 2;
  }

  /** Starts sampling; resolves once the first sweep has begun. */
  async start(): Promise<void> {
    const child = spawn(process.execPath, ['-e', CHILD], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child = child;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      this.#buffer += d;
      let nl = this.#buffer.indexOf('\n');
      while (nl >= 0) {
        const msg = JSON.parse(this.#buffer.slice(0, nl)) as Record<string, unknown>;
        this.#buffer = this.#buffer.slice(nl + 1);
        if (msg.hit) this.#hits.push(msg.hit as ProcHit);
        if (typeof msg.done === 'number') this.#sweeps = msg.done;
        for (const f of this.#onLine) f(msg);
        nl = this.#buffer.indexOf('\n');
      }
    });
    await new Promise<void>((resolve, reject) => {
      this.#onLine.push((m) => m.ready && resolve());
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`proc sampler exited early (${code})`)));
      child.stdin.write(`${JSON.stringify({ needles: this.#needles, intervalMs: this.#intervalMs })}\n`);
    });
  }

  /** Hits so far (the sampler keeps running). */
  get hits(): readonly ProcHit[] {
    return this.#hits;
  }

  /** Waits until a hit for needle `i` arrives, or `timeoutMs` passes. */
  waitForHit(i: number, timeoutMs: number): Promise<ProcHit | undefined> {
    const found = this.#hits.find((h) => h.needle === i);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      this.#onLine.push((m) => {
        const hit = m.hit as ProcHit | undefined;
        if (hit && hit.needle === i) {
          clearTimeout(timer);
          resolve(hit);
        }
      });
    });
  }

  /**
   * The control run: a process whose argv holds needle `i` (a `sh -c 'sleep'` with the needle as an extra
   * argument) must be reported. Throws if it is not: then a clean report would mean nothing. The control's own
   * hit is removed from the report afterwards.
   */
  async proveItself(i = 0, hold = ['sh', '-c', 'sleep 2', 'dyce-planted']): Promise<ProcHit> {
    const planted = spawn(hold[0]!, [...hold.slice(1), this.#needles[i]!], { stdio: 'ignore' });
    try {
      const hit = await this.waitForHit(i, 3000);
      if (!hit || hit.pid !== planted.pid)
        throw new Error('proc sampler control run failed: it did not see the planted process, so it proves nothing');
      // The planted hit is expected: drop it so that `stop()` reports only real leaks.
      for (let k = this.#hits.length - 1; k >= 0; k--) if (this.#hits[k]!.pid === planted.pid) this.#hits.splice(k, 1);
      return hit;
    } finally {
      planted.kill('SIGKILL');
    }
  }

  /** Stops sampling after one last full sweep and reports every hit. */
  async stop(): Promise<SamplerReport> {
    const child = this.#child;
    if (!child) return { hits: [...this.#hits], sweeps: this.#sweeps };
    const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin.end();
    await done;
    this.#child = undefined;
    return { hits: [...this.#hits], sweeps: this.#sweeps };
  }
}
