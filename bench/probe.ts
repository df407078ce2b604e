/**
 * Probe bench, side by side in one run (servers in a separate process, so they do not share the probe's event loop):
 *  (a) 100 local URLs probed concurrently by one `runProbe`, against the slowest of them probed alone. Goal <= 1.2x.
 *  (b) the probe's in-process time for one request (the engine's own measure, fresh connection, body read) against
 *      curl's own %{time_total} on the same URL (also a fresh connection). Goal <= 1.2x.
 *  (c) against blackbox_exporter's /probe on the same target (Debian's prometheus-blackbox-exporter, started here):
 *      each prober's own duration (Dyce's in-process measure vs blackbox's probe_duration_seconds), and the
 *      `dyce probe URL` CLI as a process vs `curl` asking blackbox's /probe, the two things a user would run.
 * Each also prints a floor: the same requests made with a bare `http.get` (fresh connection, body drained), so the
 * share of the gap that belongs to Node's HTTP stack rather than to the engine is visible.
 * Run: npx tsx bench/probe.ts
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeSpec } from '../src/config/actions/probe.js';
import { parseInputs } from '../src/config/input-spec.js';
import { RecordingReporter } from '../src/github/reporter.js';
import { assembleProbeConfig } from '../src/probe/config.js';
import { runProbe } from '../src/probe/run.js';
import { ratioRow, row, run } from './support.js';

// Four servers; path /d/<ms> answers after <ms> milliseconds (the "app time"), /fast at once.
const SERVER = `
const http = require('node:http');
const ports = [];
let n = 0;
for (let i = 0; i < 4; i++) {
  const s = http.createServer((req, res) => {
    const m = /^\\/d\\/(\\d+)/.exec(req.url);
    const send = () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"status":"UP"}'); };
    if (m) setTimeout(send, Number(m[1])); else send();
  });
  s.listen(0, '127.0.0.1', () => { ports.push(s.address().port); if (++n === 4) console.log(JSON.stringify(ports)); });
}`;

const child = spawn(process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
const ports = await new Promise<number[]>((resolve) =>
  child.stdout.once('data', (d) => resolve(JSON.parse(String(d)))),
);

async function probeOnce(urls: string[]): Promise<{ wall: number; durations: number[] }> {
  const reporter = new RecordingReporter();
  const config = assembleProbeConfig(parseInputs(probeSpec, { url: urls.join('\n'), timeout: '10s' }));
  const t = performance.now();
  const r = await runProbe(config, reporter, { env: {} });
  const wall = performance.now() - t;
  if (!r.success) throw new Error(`bench probe failed: ${r.results.find((x) => !x.success)?.reason}`);
  return { wall, durations: r.results.map((x) => x.last.durationMs) };
}

/** Node's own floor: one bare request on a fresh connection, body drained. */
function bare(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      })
      .on('error', reject);
  });
}

async function wallOf(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

try {
  // (a) 100 URLs with app times from 20ms to 119ms, in a fixed shuffled order (the engine cannot know which one is
  // slowest, so the bench does not put it first or last); the slowest is /d/119.
  const delays = Array.from({ length: 100 }, (_, i) => 20 + ((i * 37) % 100));
  const urls = delays.map((d, i) => `http://127.0.0.1:${ports[i % 4]}/d/${d}?u=${i}`);
  const slowest = urls[delays.indexOf(119)]!;
  const all: number[] = [];
  const one: number[] = [];
  const ratiosA: number[] = [];
  const floor: number[] = [];
  const curlFloor: number[] = [];
  const vsCurl: number[] = [];
  await probeOnce(urls);
  await probeOnce([slowest]);
  for (let i = 0; i < 10; i++) {
    const a = (await probeOnce(urls)).wall;
    const b = (await probeOnce([slowest])).wall;
    all.push(a);
    one.push(b);
    ratiosA.push(a / b);
    floor.push((await wallOf(() => Promise.all(urls.map(bare)))) / (await wallOf(() => bare(slowest))));
    const curlAll = await wallOf(() =>
      run(['curl', '-s', '--parallel', '--parallel-max', '100', ...urls.flatMap((u) => ['-o', '/dev/null', u])]),
    );
    curlFloor.push(curlAll / (await wallOf(() => run(['curl', '-s', '-o', '/dev/null', slowest]))));
    vsCurl.push(a / curlAll);
  }
  console.log('probe bench');
  console.log(row('(a) 100 URLs concurrently (20..119ms each)', all));
  console.log(row('(a) slowest URL alone (119ms)', one));
  console.log(ratioRow('(a) 100 concurrently / slowest alone', ratiosA, '<= 1.2x'));
  console.log(ratioRow('(a) floor: bare http.get, same comparison', floor));
  console.log(ratioRow('(a) floor: curl --parallel, same comparison', curlFloor));
  // curl's wall time includes its process start (a few ms), which favours the probe slightly.
  console.log(ratioRow('(a) probe 100 / curl --parallel 100 (wall)', vsCurl));

  // (b) per request: the engine's measure vs curl's time_total, same URL, fresh connection each.
  const curlTotal = async (url: string) =>
    Number(await run(['curl', '-s', '-o', '/dev/null', '-w', '%{time_total}', url])) * 1000;
  for (const [label, url] of [
    ['(b) /fast (no app time)', `http://127.0.0.1:${ports[0]}/fast`],
    ['(b) /d/20 (20ms app time)', `http://127.0.0.1:${ports[1]}/d/20`],
  ] as const) {
    const mine: number[] = [];
    const curl: number[] = [];
    const ratios: number[] = [];
    const floorB: number[] = [];
    for (let i = 0; i < 3; i++) {
      await probeOnce([url]);
      await curlTotal(url);
    }
    for (let i = 0; i < 30; i++) {
      const p = (await probeOnce([url])).durations[0]!;
      const c = await curlTotal(url);
      mine.push(p);
      curl.push(c);
      ratios.push(p / c);
      floorB.push((await wallOf(() => bare(url))) / (await curlTotal(url)));
    }
    console.log(row(`${label}: probe in-process`, mine));
    console.log(row(`${label}: curl %{time_total}`, curl));
    console.log(ratioRow(`${label}: probe / curl`, ratios, '<= 1.2x'));
    console.log(ratioRow(`${label}: floor: bare http.get / curl`, floorB));
  }

  // (c) against blackbox_exporter's /probe.
  const bin = '/usr/bin/prometheus-blackbox-exporter';
  if (!existsSync(bin)) console.log('(c) skipped: prometheus-blackbox-exporter is not installed');
  else {
    const dir = mkdtempSync(join(tmpdir(), 'dyce-bench-bb-'));
    writeFileSync(join(dir, 'bb.yml'), 'modules:\n  http_2xx:\n    prober: http\n    timeout: 10s\n');
    const bbPort = 19000 + Math.floor(Math.random() * 1000);
    const bb = spawn(bin, [`--config.file=${join(dir, 'bb.yml')}`, `--web.listen-address=127.0.0.1:${bbPort}`], {
      stdio: 'ignore',
    });
    try {
      for (let i = 0; i < 100; i++) {
        if (
          await fetch(`http://127.0.0.1:${bbPort}/-/healthy`).then(
            (r) => r.ok,
            () => false,
          )
        )
          break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const url = `http://127.0.0.1:${ports[2]}/d/20`;
      const probeUrl = `http://127.0.0.1:${bbPort}/probe?module=http_2xx&target=${encodeURIComponent(url)}`;
      const bbDuration = async () => {
        const text = await (await fetch(probeUrl)).text();
        return Number(/^probe_duration_seconds (\S+)/m.exec(text)?.[1]) * 1000;
      };
      const mine: number[] = [];
      const theirs: number[] = [];
      const ratios: number[] = [];
      const cli: number[] = [];
      const curlBb: number[] = [];
      const cliRatios: number[] = [];
      for (let i = 0; i < 3; i++) {
        await probeOnce([url]);
        await bbDuration();
      }
      for (let i = 0; i < 20; i++) {
        const p = (await probeOnce([url])).durations[0]!;
        const b = await bbDuration();
        mine.push(p);
        theirs.push(b);
        ratios.push(p / b);
        const c = await wallOf(() => run([process.execPath, 'bin/dyce.js', 'probe', url]));
        const k = await wallOf(() => run(['curl', '-s', '-o', '/dev/null', probeUrl]));
        cli.push(c);
        curlBb.push(k);
        cliRatios.push(c / k);
      }
      console.log(row('(c) /d/20: probe in-process', mine));
      console.log(row('(c) /d/20: blackbox probe_duration_seconds', theirs));
      console.log(ratioRow('(c) /d/20: probe / blackbox (each its own measure)', ratios, '<= 1.2x'));
      console.log(row('(c) `dyce probe URL` as a process', cli));
      console.log(row('(c) `curl` of blackbox /probe (exporter already running)', curlBb));
      console.log(ratioRow('(c) dyce CLI process / curl of a running blackbox', cliRatios));
    } finally {
      bb.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  }
} finally {
  child.kill();
}
