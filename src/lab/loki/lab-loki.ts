/**
 * The Loki part of `dyce lab up`, in one call: publish the plugin to the lab registry under a content tag (skipped
 * when that tag is what the previous `lab up` published), then make `loki` an enabled plugin on the chosen hosts.
 * The receiver itself runs as its own process: `dyce lab serve-loki --port 3100 --dir <lab>/loki`
 * (lokiReceiverMain in receiver.ts).
 */
import { join } from 'node:path';
import type { Executor } from '../../remote/executor.js';
import {
  type DockerTarget,
  type EnsureOutcome,
  ensureLokiPlugin,
  LOKI_PLUGIN_ALIAS,
  lokiPluginVersion,
  publishLokiPlugin,
} from './plugin.js';

export const LOKI_PLUGIN_REPOSITORY = 'dyce/loki-docker-driver';

export interface LabLokiOptions {
  /** The daemon that builds and pushes; its `config` must be logged into the registry. */
  runner: DockerTarget;
  /** host:port of the lab registry, e.g. 127.0.0.1:5000. */
  registry: string;
  /** The hosts that get the plugin installed now (others are left without it, for deploys to install). */
  hosts: { name: string; docker: DockerTarget }[];
  /** The ref published by the previous `lab up` (from lab.json): publishing is skipped when unchanged. */
  previousRef?: string | undefined;
  /** Scratch space for the rootfs. */
  workDir: string;
  alias?: string;
  exec?: Executor;
  log?: (msg: string) => void;
}

export interface LabLokiResult {
  /** What to record in lab.json and give to `docker plugin install` (e.g. 127.0.0.1:5000/dyce/loki-docker-driver:sha-…). */
  ref: string;
  /** The same build under a stable tag, for workflows: <registry>/dyce/loki-docker-driver:latest. */
  latestRef: string;
  published: boolean;
  hosts: Record<string, EnsureOutcome>;
}

export async function labLokiUp(opts: LabLokiOptions): Promise<LabLokiResult> {
  const log = opts.log ?? (() => {});
  const ref = `${opts.registry}/${LOKI_PLUGIN_REPOSITORY}:${await lokiPluginVersion()}`;
  const latestRef = `${opts.registry}/${LOKI_PLUGIN_REPOSITORY}:latest`;
  const published = ref !== opts.previousRef;
  if (published) {
    log(`loki plugin: publishing ${ref}`);
    await publishLokiPlugin({
      docker: opts.runner,
      ref,
      workDir: join(opts.workDir, 'loki-plugin'),
      alsoAs: [latestRef],
      ...(opts.exec ? { exec: opts.exec } : {}),
    });
  }
  const hosts: Record<string, EnsureOutcome> = {};
  for (const h of opts.hosts) {
    hosts[h.name] = await ensureLokiPlugin({
      docker: h.docker,
      ref,
      alias: opts.alias ?? LOKI_PLUGIN_ALIAS,
      // Lab hosts share one kernel and so one hostname; the label tells them apart as separate VPSs would.
      settings: { LOKI_HOST_LABEL: h.name },
      replaceOther: true,
      ...(opts.exec ? { exec: opts.exec } : {}),
    });
    log(`loki plugin on ${h.name}: ${hosts[h.name]}`);
  }
  return { ref, latestRef, published, hosts };
}
