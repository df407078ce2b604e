import { labUp } from '../../src/lab/lab.js';

/**
 * Brings the lab up once for the lab project (idempotent: a running lab is reused in well under a second).
 * DYCE_LAB_HOSTS sets how many VPSs (CI uses 3, the many-host tests need them).
 */
export default async function setup(): Promise<void> {
  const hosts = Number(process.env.DYCE_LAB_HOSTS ?? '3');
  await labUp({ hosts, log: (m) => process.stderr.write(`[lab] ${m}\n`) });
}
