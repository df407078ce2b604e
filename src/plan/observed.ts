import { UserError } from '../util/errors.js';
import { LABEL } from './desired.js';

/** A container as the planner sees it: what `docker inspect` said, reduced to what decisions need. */
export interface ObservedContainer {
  id: string;
  name: string;
  running: boolean;
  /** created, running, restarting, exited, paused, dead. */
  status: string;
  image: string;
  /** The ID of the image it was created from (known only after a `pull: always` round trip, see pullAndIdentify). */
  imageId?: string;
  labels: Record<string, string>;
  /** dyce.app, when the container is Dyce's. */
  app?: string;
  replica?: number;
  version?: string;
  specHash?: string;
  port?: number;
}

/**
 * Pure: the observe script's container lines (`docker ps --format`, tab-separated: id, name, state, image,
 * then the labels dyce.app, dyce.replica, dyce.version, dyce.spec-hash, dyce.port) -> observed containers.
 */
export function parsePsLines(text: string, host: string): ObservedContainer[] {
  const out: ObservedContainer[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const f = line.split('\t');
    if (f.length < 9 || !/^[0-9a-f]{12,64}$/.test(f[0]!))
      throw new UserError(`${host}: unexpected docker ps output: ${JSON.stringify(line.slice(0, 120))}`);
    const [id, name, state, image, app, replica, version, specHash, port] = f as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const labels: Record<string, string> = {};
    const o: ObservedContainer = { id, name, running: state === 'running', status: state, image, labels };
    if (app) o.app = labels[LABEL.app] = app;
    if (/^\d+$/.test(replica) && Number(replica) > 0) {
      o.replica = Number(replica);
      labels[LABEL.replica] = replica;
    }
    if (version) o.version = labels[LABEL.version] = version;
    if (specHash) o.specHash = labels[LABEL.specHash] = specHash;
    if (/^\d+$/.test(port) && Number(port) > 0) {
      o.port = Number(port);
      labels[LABEL.port] = port;
    }
    out.push(o);
  }
  return out;
}
