/** True when the text holds Jinja markers at all. */
export function isTemplate(text: string): boolean {
  return text.includes('{{') || text.includes('{%') || text.includes('{#');
}

/**
 * A literal that is never rendered (`!unsafe` in YAML): text with template markers becomes one Jinja string
 * expression that renders to exactly that text, so every consumer of templates handles it unchanged.
 */
export function unsafeText(text: string): string {
  if (!isTemplate(text)) return text;
  return `{{ "${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}" }}`;
}

/** `unsafeText` applied to every string of a value (keys included). */
export function unsafeDeep(value: unknown): unknown {
  if (typeof value === 'string') return unsafeText(value);
  if (Array.isArray(value)) return value.map(unsafeDeep);
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [unsafeText(k), unsafeDeep(v)]));
  return value;
}
