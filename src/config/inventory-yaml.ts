import { isMap, isScalar, LineCounter, type Node, type Pair, parseDocument } from 'yaml';
import { ansibleYamlOptions } from './ansible-yaml.js';
import { expandHostEntry, GROUP_NAME, RawInventory, type SourcePos } from './inventory-raw.js';

/**
 * Reads an Ansible YAML inventory:
 *
 *   all:
 *     vars: { ansible_user: root }
 *     hosts:
 *       web1: { ansible_host: 10.0.0.1 }
 *     children:
 *       db:
 *         hosts:
 *           db[01:02]:
 *
 * Top-level keys are groups (children of `all`); a group holds only `hosts`, `vars` and `children`.
 * YAML is read as Ansible reads it (ansible-yaml.ts: `yes` is a boolean, `y` is not). Unknown keys are errors, not warnings:
 * a misspelt `childern:` would otherwise drop a whole group silently.
 */
export function readYamlInventory(text: string, file: string, into = new RawInventory()): RawInventory {
  const lc = new LineCounter();
  const doc = parseDocument(text, { ...ansibleYamlOptions(), lineCounter: lc });
  const pos = (node: Node | null | undefined): SourcePos => ({
    file,
    line: node?.range ? lc.linePos(node.range[0]).line : 1,
  });
  for (const e of doc.errors) {
    into.issue({ file, line: lc.linePos(e.pos[0]).line }, `invalid YAML: ${firstLine(e.message)}`);
  }
  // Unknown tags (`!vault` included) would otherwise arrive as plain strings: refuse them.
  for (const w of doc.warnings) {
    into.issue({ file, line: lc.linePos(w.pos[0]).line }, `unsupported YAML: ${firstLine(w.message)}`);
  }
  if (doc.errors.length > 0 || doc.warnings.length > 0) return into;
  const root = doc.contents;
  if (root === null || (isScalar(root) && (root.value === null || root.value === ''))) return into;
  if (!isMap(root)) {
    into.issue(pos(root), 'a YAML inventory must be a mapping of group names (e.g. `all:`)');
    return into;
  }

  const keyOf = (pair: Pair): { name: string; at: SourcePos } | undefined => {
    const k = pair.key as Node | null;
    if (!isScalar(k) || (typeof k.value !== 'string' && typeof k.value !== 'number')) {
      into.issue(pos(k), 'keys must be plain names');
      return undefined;
    }
    return { name: String(k.value), at: pos(k) };
  };

  const readGroup = (name: string, at: SourcePos, node: Node | null, depth: number): void => {
    if (!GROUP_NAME.test(name)) {
      into.issue(
        at,
        `invalid group name ${JSON.stringify(name)} (letters, digits and _ only, not starting with a digit)`,
      );
      return;
    }
    if (depth > 50) {
      into.issue(at, `groups nested too deeply at "${name}"`);
      return;
    }
    const group = into.group(name, at);
    if (node === null || (isScalar(node) && node.value === null)) return;
    if (!isMap(node)) {
      into.issue(pos(node), `group "${name}" must be a mapping with hosts, vars or children`);
      return;
    }
    for (const pair of node.items) {
      const key = keyOf(pair);
      if (!key) continue;
      const value = pair.value as Node | null;
      const empty = value === null || (isScalar(value) && value.value === null);
      if (key.name !== 'hosts' && key.name !== 'vars' && key.name !== 'children') {
        into.issue(key.at, `unexpected key "${key.name}" in group "${name}" (only hosts, vars and children are valid)`);
        continue;
      }
      if (empty) continue;
      if (!isMap(value)) {
        into.issue(pos(value), `"${key.name}" of group "${name}" must be a mapping`);
        continue;
      }
      if (key.name === 'vars') {
        for (const vp of value.items) {
          const vk = keyOf(vp);
          if (vk) group.vars.set(vk.name, { value: toJs(vp.value as Node | null), at: vk.at });
        }
      } else if (key.name === 'children') {
        for (const cp of value.items) {
          const ck = keyOf(cp);
          if (!ck) continue;
          into.addChild(group, ck.name);
          readGroup(ck.name, ck.at, cp.value as Node | null, depth + 1);
        }
      } else {
        for (const hp of value.items) {
          const hk = keyOf(hp);
          if (!hk) continue;
          readHost(hk.name, hk.at, hp.value as Node | null, group.name);
        }
      }
    }
  };

  const readHost = (pattern: string, at: SourcePos, node: Node | null, groupName: string): void => {
    const expanded = expandHostEntry(pattern);
    if ('error' in expanded) {
      into.issue(at, expanded.error);
      return;
    }
    const vars: [string, unknown, SourcePos][] = [];
    if (node !== null && !(isScalar(node) && node.value === null)) {
      if (!isMap(node)) {
        into.issue(pos(node), `host "${pattern}" must map to its variables (or nothing)`);
        return;
      }
      for (const vp of node.items) {
        const vk = keyOf(vp);
        if (vk) vars.push([vk.name, toJs(vp.value as Node | null), vk.at]);
      }
    }
    const group = into.group(groupName, at);
    for (const name of expanded.names) {
      const h = into.host(name, at);
      if (expanded.port !== undefined) h.vars.set('ansible_port', { value: expanded.port, at });
      for (const [k, v, vat] of vars) h.vars.set(k, { value: v, at: vat });
      into.addHostToGroup(group, name);
    }
  };

  for (const pair of root.items) {
    const key = keyOf(pair);
    if (!key) continue;
    readGroup(key.name, key.at, pair.value as Node | null, 0);
  }
  return into;
}

function toJs(node: Node | null): unknown {
  if (node === null) return null;
  return node.toJSON();
}

function firstLine(s: string): string {
  return s.split('\n')[0]!;
}
