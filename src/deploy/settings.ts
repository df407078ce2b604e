import { type DeployInputs, imageTag, mapObject, splitCommand } from '../config/actions/deploy.js';
import type { AppConfig } from '../plan/desired.js';
import { Secret } from '../util/secret.js';

/** Pure: parsed inputs -> what to run (host-independent). Secret inputs become Secret values here. */
export function appConfigFromInputs(i: DeployInputs): AppConfig {
  const command = i.command === undefined ? { words: [] } : splitCommand(i.command);
  const secrets = (entries: DeployInputs['secret-env']) =>
    Object.fromEntries((entries ?? []).map((e) => [e.key, new Secret(e.value)]));
  const image = imageRef(i.image, i.version);
  const cfg: AppConfig = {
    app: i.name,
    image,
    version: i.version?.trim() || versionOf(image),
    replicas: i.replicas,
    network: i['network-mode'],
    hostIp: i['host-ip'],
    portEnv: i['port-env'],
    env: mapObject(i.env),
    labels: mapObject(i.labels),
    volumes: i.volumes ?? [],
    command: 'words' in command ? command.words : [],
    restart: i['restart-policy'],
    secretEnv: secrets(i['secret-env']),
    secretFiles: secrets(i['secret-files']),
    logOptions: mapObject(i['log-options']),
  };
  if (i.port !== undefined) cfg.port = i.port;
  if (i['host-port'] !== undefined) cfg.hostPort = i['host-port'];
  if (i['log-driver']?.trim()) cfg.logDriver = i['log-driver'].trim();
  return cfg;
}

/** The image to run: an untagged (and undigested) image takes `version` as its tag, so a redeploy names the version once. */
export function imageRef(image: string, version: string | undefined): string {
  const ref = image.trim();
  const v = version?.trim();
  return v && !imageTag(ref) && !ref.includes('@sha256:') ? `${ref}:${v}` : ref;
}

/** The image tag, else the digest's first 12 hex digits. */
export function versionOf(image: string): string {
  const tag = imageTag(image);
  if (tag) return tag;
  const digest = image.split('@sha256:')[1];
  return digest ? `sha256:${digest.slice(0, 12)}` : 'latest';
}
