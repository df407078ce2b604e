import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { type Scope, SUPPORTED_LOOKUPS, type Templar, TemplateError, toText } from '../template/templar.js';

/**
 * The lookup plugins (`lookup('env', 'HOME')`, `query('file', 'a.txt')`), run on the runner as Ansible runs them
 * on the controller. Relative files are searched as Ansible does: the role's `files/` (or `templates/`), the role,
 * the playbook's `files/` (or `templates/`), the playbook's directory. Anything else is refused by name (the
 * parser already refused literal names; this catches computed ones).
 */

export interface LookupContext {
  templar: Templar;
  /** The scope the lookup's result is rendered against (`template`) or read from (`vars`). */
  scope: () => Scope;
  playbookDir: string;
  roleDir?: string;
}

function candidates(ctx: LookupContext, sub: 'files' | 'templates', name: string): string[] {
  if (isAbsolute(name)) return [name];
  return [
    ...(ctx.roleDir ? [join(ctx.roleDir, sub, name), join(ctx.roleDir, name)] : []),
    join(ctx.playbookDir, sub, name),
    join(ctx.playbookDir, name),
  ];
}

function readFirst(paths: string[]): { path: string; text: string } | undefined {
  for (const path of paths) {
    try {
      return { path, text: readFileSync(path, 'utf8') };
    } catch {
      // the next candidate
    }
  }
  return undefined;
}

export function runLookup(
  ctx: LookupContext,
  name: string,
  terms: unknown[],
  options: Record<string, unknown>,
): unknown[] {
  const words = terms.flatMap((t) => (Array.isArray(t) ? t : [t]));
  switch (name) {
    case 'env':
      return words.map((w) => process.env[toText(w)] ?? (options.default !== undefined ? options.default : ''));
    case 'file':
      return words.map((w) => {
        const f = readFirst(candidates(ctx, 'files', toText(w)));
        if (!f) throw new TemplateError(`lookup('file'): could not find ${toText(w)}`);
        return options.rstrip === false ? f.text : f.text.replace(/\s+$/, '');
      });
    case 'template':
      return words.map((w) => {
        const f = readFirst(candidates(ctx, 'templates', toText(w)));
        if (!f) throw new TemplateError(`lookup('template'): could not find ${toText(w)}`);
        return toText(ctx.templar.render(f.text, ctx.scope()));
      });
    case 'vars':
      return words.map((w) => {
        const found = ctx.scope().lookup(toText(w));
        if (found === undefined) {
          if (options.default !== undefined) return options.default;
          throw new TemplateError(`lookup('vars'): '${toText(w)}' is undefined`);
        }
        return found.unsafe ? found.value : ctx.templar.renderDeep(found.value, ctx.scope());
      });
    case 'first_found': {
      const spec = terms.length === 1 && typeof terms[0] === 'object' && !Array.isArray(terms[0]) ? terms[0] : options;
      const o = (spec ?? {}) as Record<string, unknown>;
      const files = (o.files !== undefined ? [o.files].flat() : words).map(toText);
      const paths = o.paths !== undefined ? [o.paths].flat().map(toText) : [];
      const all = files.flatMap((f) =>
        isAbsolute(f)
          ? [f]
          : paths.length
            ? paths.map((p) => join(isAbsolute(p) ? p : join(ctx.playbookDir, p), f))
            : candidates(ctx, 'files', f),
      );
      const hit = readFirst(all);
      if (!hit) {
        if (o.skip === true || options.skip === true || options.errors === 'ignore') return [];
        throw new TemplateError(`lookup('first_found'): none of ${files.join(', ')} found`);
      }
      return [hit.path];
    }
    default:
      throw new TemplateError(`lookup plugin "${name}" is not supported (supported: ${SUPPORTED_LOOKUPS.join(', ')})`);
  }
}
