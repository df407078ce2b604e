import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { ansibleYamlOptions } from '../config/ansible-yaml.js';
import { shellSplit } from '../config/inventory-ini.js';
import { UserError } from '../util/errors.js';

/**
 * `-e` / `--extra-vars` in Ansible's three forms, merged left to right (a later -e wins):
 *   -e 'k=v k2="two words"'   key=value pairs (values are text)
 *   -e '{"k": 1}'             JSON or YAML (starts with `{` or `[`)
 *   -e @vars.yml              a YAML/JSON file
 * Values given inline whose name looks secret trigger a warning: argv is readable by every user of the machine.
 */

export interface ExtraVarsSource {
  /** As written after -e. */
  text: string;
  /** Where it came from, for messages: `-e` or an environment variable name. */
  origin: string;
}

export interface ExtraVars {
  vars: Record<string, unknown>;
  /** Warnings to print before anything else. */
  warnings: string[];
  /** Values to register as secrets (every value of a secret-looking name, wherever it came from). */
  secrets: string[];
}

const SECRET_NAME = /pass(word|wd|phrase)?|token|secret|(^|_|-)key($|_|-)|api_?key|private/i;

export function looksSecret(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** Pure: parses one inline `-e` value (not `@file`). */
export function parseExtraVarsText(text: string, where: string): Record<string, unknown> {
  const t = text.trim();
  if (t === '') return {};
  if (t.startsWith('{') || t.startsWith('[')) {
    let data: unknown;
    try {
      data = parseYaml(t, ansibleYamlOptions());
    } catch (error) {
      throw new UserError(`${where}: bad JSON/YAML in extra vars: ${(error as Error).message.split('\n')[0]}`, {
        cause: error,
      });
    }
    if (!data || typeof data !== 'object' || Array.isArray(data))
      throw new UserError(`${where}: extra vars must be a mapping of names to values`);
    return data as Record<string, unknown>;
  }
  const split = shellSplit(t);
  if ('error' in split) throw new UserError(`${where}: ${split.error}`);
  const out: Record<string, unknown> = {};
  for (const word of split.words) {
    const eq = word.indexOf('=');
    if (eq <= 0) throw new UserError(`${where}: expected key=value, got ${JSON.stringify(word)}`);
    out[word.slice(0, eq)] = word.slice(eq + 1);
  }
  return out;
}

/** Reads and merges every -e source. `@file` is read from disk; `@-` is not supported (use a file). */
export async function readExtraVars(sources: readonly ExtraVarsSource[]): Promise<ExtraVars> {
  const vars: Record<string, unknown> = {};
  const warnings: string[] = [];
  const secrets: string[] = [];
  for (const s of sources) {
    let data: Record<string, unknown>;
    const inline = !s.text.startsWith('@');
    if (!inline) {
      const path = s.text.slice(1);
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        throw new UserError(`${s.origin} @${path}: cannot read: ${(error as NodeJS.ErrnoException).code ?? error}`, {
          cause: error,
        });
      }
      let parsed: unknown;
      try {
        parsed = parseYaml(text, ansibleYamlOptions());
      } catch (error) {
        throw new UserError(`${path}: bad YAML: ${(error as Error).message.split('\n')[0]}`, { cause: error });
      }
      if (parsed === null || parsed === undefined) parsed = {};
      if (typeof parsed !== 'object' || Array.isArray(parsed))
        throw new UserError(`${path}: extra vars must be a mapping of names to values`);
      data = parsed as Record<string, unknown>;
    } else {
      data = parseExtraVarsText(s.text, s.origin);
    }
    for (const [k, v] of Object.entries(data)) {
      if (looksSecret(k) && v !== null && v !== undefined && String(v) !== '') {
        secrets.push(String(v));
        if (inline && s.origin === '-e')
          warnings.push(
            `extra var ${k} looks secret and was given on the command line, where any user of this machine can read it ` +
              `(ps, /proc): put it in a file (-e @secrets.yml, mode 0600) or in the environment (DYCE_EXTRA_VARS='{"${k}": ...}')`,
          );
      }
      vars[k] = v;
    }
  }
  return { vars, warnings, secrets };
}
