import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { ansibleYamlOptions } from '../config/ansible-yaml.js';

/** A YAML document as plain values, with the line of every key and list item (by path). */
export interface LinedYaml {
  value: unknown;
  /** The line of the deepest known node on `path` (1 when nothing is known). */
  lineOf(path: readonly (string | number)[]): number;
  /** YAML syntax errors, each `line: message`; `value` is undefined when there are any. */
  errors: { line: number; message: string }[];
}

/** Parses YAML as Ansible's loader does (`yes` is a boolean, `y` is not: src/config/ansible-yaml.ts), keeping lines. Pure. */
export function parseLinedYaml(text: string): LinedYaml {
  const lc = new LineCounter();
  const doc = parseDocument(text, { ...ansibleYamlOptions(), lineCounter: lc });
  const lines = new Map<string, number>();
  const lineAt = (n: Node | null | undefined): number | undefined =>
    n?.range ? lc.linePos(n.range[0]).line : undefined;
  const errors = [...doc.errors, ...doc.warnings.filter((w) => w.code === 'TAG_RESOLVE_FAILED')].map((e) => ({
    line: lc.linePos(e.pos[0]).line,
    message: e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''),
  }));
  const walk = (node: unknown, path: string): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const k = pair.key as Node | null;
        const key = isScalar(k) ? String(k.value) : String(k);
        const p = `${path}/${key}`;
        const l = lineAt(k) ?? lineAt(pair.value as Node);
        if (l !== undefined) lines.set(p, l);
        walk(pair.value, p);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        const p = `${path}/${i}`;
        const l = lineAt(item as Node);
        if (l !== undefined) lines.set(p, l);
        walk(item, p);
      });
    }
  };
  walk(doc.contents, '');
  const rootLine = lineAt(doc.contents as Node) ?? 1;
  let value: unknown;
  if (errors.length === 0) {
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (error) {
      errors.push({ line: rootLine, message: (error as Error).message.split('\n')[0]! });
    }
  }
  return {
    value,
    errors,
    lineOf(path) {
      for (let n = path.length; n > 0; n--) {
        const l = lines.get(`/${path.slice(0, n).join('/')}`);
        if (l !== undefined) return l;
      }
      return rootLine;
    },
  };
}
