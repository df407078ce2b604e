/**
 * Lab bench: `dyce lab up` from cold (lab processes stopped, data kept) and warm (already up), and one SSH round trip
 * (`ssh host docker ps`) on the lab, the floor later benchmarks compare against. Optional `--fresh`: also time an up
 * with no lab data at all (keys, registry, images rebuilt).
 */
import { fileURLToPath } from 'node:url';
import { readLabEnv } from '../src/lab/env.js';
import { median, opensshArgv, ratioRow, row, run, timeIt } from './support.js';

const dyce = fileURLToPath(new URL('../bin/dyce.js', import.meta.url));
const up = () => run([process.execPath, dyce, 'lab', 'up']);
const down = () => run([process.execPath, dyce, 'lab', 'down']);

await up();
const env = readLabEnv();
const h = env.hosts[0]!;
const ssh = () => run(opensshArgv(env, h, 'docker ps'));

const rtt: number[] = [];
const warm: number[] = [];
for (let i = 0; i < 3; i++) await ssh();
for (let i = 0; i < 10; i++) {
  rtt.push(await timeIt(ssh));
  warm.push(await timeIt(up));
}
const cold: number[] = [];
for (let i = 0; i < 3; i++) {
  await down();
  cold.push(await timeIt(up));
}
console.log(`lab bench (${env.hosts.length} host(s))`);
console.log(row('ssh round trip: ssh vps1 docker ps', rtt));
console.log(row('dyce lab up, warm (everything running)', warm));
console.log(row('dyce lab up, cold (processes stopped, data kept)', cold));
console.log(
  ratioRow(
    'warm up / ssh round trip',
    warm.map((w, i) => w / rtt[i]!),
  ),
);
console.log(`ssh round trip floor for later benchmarks: ${median(rtt).toFixed(1)}ms`);
