import type { DocumentOptions, ParseOptions, ScalarTag, SchemaOptions, Tags } from 'yaml';
import { unsafeText } from '../template/unsafe.js';

/**
 * YAML as Ansible reads it (PyYAML, YAML 1.1), for inventories and playbooks alike:
 * - booleans are yes/no, true/false, on/off in their three spellings, and NOT `y`/`n` (PyYAML's list; the
 *   `yaml` package's 1.1 schema would turn `[x, y]` into `['x', true]`);
 * - `0644` is octal, `1:30` sexagesimal, `<<` merge keys work;
 * - dates stay strings (Ansible prints them as written);
 * - `!unsafe 'text'` is a literal that is never rendered as a template.
 * Checked against ansible-inventory --list in test/lab/inventory-ansible.test.ts.
 */
const pyBool: ScalarTag = {
  tag: 'tag:yaml.org,2002:bool',
  default: true,
  identify: (v) => typeof v === 'boolean',
  test: /^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/,
  resolve: (s) => /^(?:yes|true|on)$/i.test(s),
};

/** Ansible Vault: refused by name, with what to do instead (Dyce has no vault password and never decrypts). */
const vaultTag: ScalarTag = {
  tag: '!vault',
  identify: () => false,
  resolve: (_s, onError) => {
    onError(
      '!vault values are not supported: keep the secret in a vars file outside the repository and pass it with -e @file (or secret-extra-vars)',
    );
    return '';
  },
};

const unsafeTag: ScalarTag = {
  tag: '!unsafe',
  identify: () => false,
  resolve: (s) => unsafeText(s),
};

export function ansibleYamlOptions(): ParseOptions & DocumentOptions & SchemaOptions {
  return {
    version: '1.1',
    merge: true,
    uniqueKeys: true,
    prettyErrors: false,
    customTags: (tags: Tags) => [
      ...tags.filter(
        (t) =>
          !(typeof t === 'object' && (t.tag === 'tag:yaml.org,2002:bool' || t.tag === 'tag:yaml.org,2002:timestamp')),
      ),
      pyBool,
      unsafeTag,
      vaultTag,
    ],
  };
}
