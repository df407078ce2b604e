import { imageTag } from '../config/actions/deploy.js';
import { UserError } from '../util/errors.js';

/**
 * Tags that name one build for good: semantic versions (`v1.4.2`, `1.4`, `2`, `1.4.2-rc.1`, `3.12-alpine`),
 * docker/metadata-action's `sha-<commit>` and a bare commit hash. Anything else (`latest`, `main`, `edge`, `pr-12`)
 * is moved by every push of the branch it follows.
 */
const VERSION_LIKE = [/^v?\d+(\.\d+)*([-+_][0-9A-Za-z][0-9A-Za-z.+_-]*)?$/, /^sha-[0-9a-f]{7,64}$/, /^[0-9a-f]{7,64}$/];

/** Pure: whether an image reference names a tag that a later push can move (not a digest, not version-like). */
export function isMutableTag(ref: string): boolean {
  if (ref.includes('@sha256:')) return false;
  const tag = imageTag(ref) ?? 'latest';
  return !VERSION_LIKE.some((re) => re.test(tag));
}

/**
 * Pure: the warning a deploy gives once when `pull: missing` meets a tag that can be rebuilt under the same name:
 * a host that already has the tag never pulls it again, so the containers keep running the old build.
 */
export function mutableTagWarning(image: string, pull: 'missing' | 'always'): string | undefined {
  if (pull !== 'missing' || !isMutableTag(image)) return undefined;
  const tag = imageTag(image) ?? 'latest';
  return `image ${image}: the tag "${tag}" can be rebuilt and pushed again under the same name, and with pull: missing a host that already has it does not pull it again (its replicas keep running the old build). Set pull: always to pull on every deploy and replace replicas whose image changed, or deploy a version tag (e.g. v1.4.2 or sha-<commit>)`;
}

/** What the pull round trip learned: the image ID the tag names now, and each observed container's image ID. */
export interface Pulled {
  imageId: string;
  /** Container ID -> the ID of the image it was created from. Containers gone meanwhile are absent. */
  containers: Map<string, string>;
}

const IMAGE_ID = /^sha256:[0-9a-f]{64}$/;

/** Pure: the answer of `pullAndIdentify` (`image <id>`, then `container <id> <image id>` lines) -> Pulled. */
export function parsePulled(text: string, host: string): Pulled {
  let imageId: string | undefined;
  const containers = new Map<string, string>();
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ');
    if (f[0] === 'image' && f.length === 2 && IMAGE_ID.test(f[1]!)) imageId = f[1];
    else if (f[0] === 'container' && f.length === 3 && IMAGE_ID.test(f[2]!)) containers.set(f[1]!, f[2]!);
  }
  if (!imageId)
    throw new UserError(`${host}: the pulled image has no ID (unexpected answer from docker image inspect)`);
  return { imageId, containers };
}

/** A short image ID for messages: `sha256:` and the first 12 hex digits, as `docker images` shows them. */
export function shortImageId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}
