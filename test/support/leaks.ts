/**
 * The leak search used by the build-push tests: where, in some bytes, a secret value shows up: as itself, as any
 * of its lines (a multi-line value is often printed a line at a time), or base64-encoded (docker config, some
 * APIs). Tests must show it finds a planted value before trusting an empty answer.
 */
export function findSecret(haystack: Buffer | string, secret: string): string[] {
  const hay = Buffer.isBuffer(haystack) ? haystack : Buffer.from(haystack, 'utf8');
  const needles = new Map<string, string>();
  needles.set('value', secret);
  for (const [i, line] of secret.split('\n').entries()) if (line.trim().length >= 8) needles.set(`line ${i + 1}`, line);
  needles.set('base64', Buffer.from(secret).toString('base64'));
  const found: string[] = [];
  for (const [what, needle] of needles) {
    let at = hay.indexOf(needle);
    while (at >= 0) {
      found.push(`${what} at byte ${at}`);
      at = hay.indexOf(needle, at + 1);
    }
  }
  return found;
}
