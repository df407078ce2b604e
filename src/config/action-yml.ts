import { stringify } from 'yaml';
import type { ActionSpec } from './input-spec.js';

export const GENERATED_HEADER =
  '# Generated from src/config/actions/*.ts by `npm run build`. Edit the spec, not this file.\n';

/** Renders an action's action.yml from its spec (the single source of inputs and outputs). */
export function renderActionYml(spec: ActionSpec): string {
  const inputs: Record<string, Record<string, unknown>> = {};
  for (const [name, f] of Object.entries(spec.inputs)) {
    const entry: Record<string, unknown> = {
      description: describe(f.meta.description, f.kind, f.meta.choices, f.meta.secret),
    };
    entry.required = f.meta.required === true;
    if (f.meta.default !== undefined) entry.default = f.meta.default;
    inputs[name] = entry;
  }
  const outputs: Record<string, { description: string }> = {};
  for (const [name, o] of Object.entries(spec.outputs)) outputs[name] = { description: o.description };
  const runs: Record<string, string> = { using: 'node24', main: 'dist/index.js' };
  if (spec.post) {
    runs.post = 'dist/index.js';
    runs['post-if'] = 'always()';
  }
  const doc: Record<string, unknown> = { name: spec.name, description: spec.description, author: 'Dyce' };
  if (spec.branding) doc.branding = spec.branding;
  doc.inputs = inputs;
  doc.outputs = outputs;
  doc.runs = runs;
  return GENERATED_HEADER + stringify(doc, { lineWidth: 0 });
}

function describe(description: string, kind: string, choices?: readonly string[], secret?: boolean): string {
  const notes: string[] = [];
  if (kind === 'duration') notes.push('duration: 500ms, 10s, 5m, 72h or 30d; a bare number means seconds');
  if (kind === 'list') notes.push('newline- or comma-separated');
  if (kind === 'lines') notes.push('one per line');
  if (kind === 'map') notes.push('KEY=value lines; KEY<<EOF ... EOF for multi-line values');
  if (kind === 'boolean') notes.push('true or false');
  if (choices) notes.push(`one of: ${choices.join(', ')}`);
  if (secret) notes.push('secret: masked in logs');
  return notes.length ? `${description} (${notes.join('; ')})` : description;
}

/** A Markdown table of an action's inputs, for the README. */
export function renderInputTable(spec: ActionSpec): string {
  const rows = ['| input | kind | default | description |', '|---|---|---|---|'];
  for (const [name, f] of Object.entries(spec.inputs)) {
    const kind = f.meta.secret ? `${f.kind}, secret` : f.kind;
    const def = f.meta.required ? '**required**' : f.meta.default !== undefined ? `\`${f.meta.default}\`` : '';
    rows.push(
      `| \`${name}\` | ${kind} | ${def.replace(/\|/g, '\\|')} | ${f.meta.description.replace(/\|/g, '\\|').replace(/\n/g, ' ')} |`,
    );
  }
  rows.push('', '| output | description |', '|---|---|');
  for (const [name, o] of Object.entries(spec.outputs))
    rows.push(`| \`${name}\` | ${o.description.replace(/\|/g, '\\|')} |`);
  return rows.join('\n');
}

const INPUTS_HEADING = '## Inputs and outputs';

/**
 * Puts the generated input/output table into an action's README: the section under "## Inputs and outputs"
 * (up to the next "## " heading) is replaced; a README without that section gets it appended. Pure.
 */
export function renderReadme(existing: string, spec: ActionSpec): string {
  const section = `${INPUTS_HEADING}\n\n<!-- Generated from src/config/actions/${spec.id}.ts by \`npm run build\`; check-dist fails when it is stale. -->\n\n${renderInputTable(spec)}\n`;
  const start = existing.indexOf(`${INPUTS_HEADING}\n`);
  if (start < 0) return `${existing.trimEnd()}\n\n${section}`;
  const next = existing.indexOf('\n## ', start + INPUTS_HEADING.length);
  const rest = next < 0 ? '' : existing.slice(next + 1);
  return `${existing.slice(0, start)}${section}${rest ? `\n${rest}` : ''}`;
}
