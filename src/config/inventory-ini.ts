import { expandHostEntry, GROUP_NAME, RawInventory, type SourcePos } from './inventory-raw.js';
import { splitShellWords } from './shell-words.js';

/**
 * Reads an Ansible INI inventory the way ansible's `ini` inventory plugin does:
 * - `[group]` sections list hosts (`name key=value ...`, split like a POSIX shell, `#` starts a comment);
 * - `[group:children]` lists child groups, `[group:vars]` holds `key=value` lines (the value is the rest of the line);
 * - hosts before any section belong to `ungrouped`;
 * - values are read as Python literals when they are one (`2222` is a number, `'a b'` a string), else kept as text.
 * Every problem becomes an issue `file:line: message`; nothing is silently skipped.
 */
export function readIniInventory(text: string, file: string, into = new RawInventory()): RawInventory {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  let section: { group: string; kind: 'hosts' | 'children' | 'vars' } = { group: 'ungrouped', kind: 'hosts' };
  // Groups named in [x:children] / [x:vars] must be defined somewhere in the file (as Ansible requires).
  const pending = new Map<string, SourcePos>();
  const declared = new Set<string>(['all', 'ungrouped']);

  for (let i = 0; i < lines.length; i++) {
    const at: SourcePos = { file, line: i + 1 };
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;

    if (line.startsWith('[') && !looksLikeHostLine(line)) {
      const m = /^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$/.exec(line);
      if (!m) {
        into.issue(
          at,
          `invalid section header ${JSON.stringify(line)} (expected [group], [group:vars] or [group:children])`,
        );
        section = { group: '', kind: 'hosts' };
        continue;
      }
      const name = m[1]!;
      const kind = m[2] ?? 'hosts';
      if (kind !== 'hosts' && kind !== 'vars' && kind !== 'children') {
        into.issue(at, `section [${name}:${kind}] has unknown type "${kind}" (expected vars or children)`);
        section = { group: '', kind: 'hosts' };
        continue;
      }
      if (!GROUP_NAME.test(name)) {
        into.issue(
          at,
          `invalid group name ${JSON.stringify(name)} (letters, digits and _ only, not starting with a digit)`,
        );
        section = { group: '', kind: 'hosts' };
        continue;
      }
      section = { group: name, kind };
      into.group(name, at);
      // [group] and [group:children] declare a group; [group:vars] alone does not (as in Ansible).
      if (kind !== 'vars') declared.add(name);
      else if (!declared.has(name) && !pending.has(name)) pending.set(name, at);
      continue;
    }
    // Lines under a rejected header are not read: the header's issue already names the problem.
    if (section.group === '') continue;

    if (section.kind === 'vars') {
      const eq = line.indexOf('=');
      if (eq < 1) {
        into.issue(at, `expected key=value in [${section.group}:vars], got ${JSON.stringify(line)}`);
        continue;
      }
      const key = line.slice(0, eq).trim();
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
        into.issue(at, `invalid variable name ${JSON.stringify(key)} in [${section.group}:vars]`);
        continue;
      }
      into.group(section.group, at).vars.set(key, {
        value: parseIniValue(line.slice(eq + 1).trim()),
        at,
      });
      continue;
    }

    if (section.kind === 'children') {
      const m = /^([^\s#;]+)\s*(?:[#;].*)?$/.exec(line);
      if (!m) {
        into.issue(at, `expected one group name per line in [${section.group}:children], got ${JSON.stringify(line)}`);
        continue;
      }
      const child = m[1]!;
      if (!GROUP_NAME.test(child)) {
        into.issue(at, `invalid group name ${JSON.stringify(child)} in [${section.group}:children]`);
        continue;
      }
      if (!declared.has(child) && !pending.has(child)) pending.set(child, at);
      into.group(child, at);
      into.addChild(into.group(section.group, at), child);
      continue;
    }

    readHostLine(line, at, section.group, into);
  }

  // A group only mentioned as a child or in a :vars header, and never declared, is a typo: Ansible refuses it too.
  for (const [name, at] of pending) {
    if (!declared.has(name)) into.issue(at, `group "${name}" is used but never defined (add a [${name}] section)`);
  }
  return into;
}

/** `[::1]:22 key=value` and `[web]` both start with a bracket; only the former has more after the `]`. */
function looksLikeHostLine(line: string): boolean {
  return /^\[[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*\](?::\d+)?(\s|$)/.test(line) && line.split(':').length > 2;
}

function readHostLine(line: string, at: SourcePos, group: string, into: RawInventory): void {
  const tokens = shellSplit(line);
  if ('error' in tokens) {
    into.issue(at, tokens.error);
    return;
  }
  if (tokens.words.length === 0) return;
  const [given, ...assignments] = tokens.words as [string, ...string[]];
  // `user@host[:port]`, as ssh and appleboy/ssh-action users write it: the user becomes ansible_user (a later
  // ansible_user= on the line wins), the rest is the host entry, Ansible's `host:port` included.
  const login = /^([A-Za-z0-9_][A-Za-z0-9_.-]*)@(.+)$/.exec(given);
  const pattern = login ? login[2]! : given;
  const expanded = expandHostEntry(pattern);
  if ('error' in expanded) {
    into.issue(at, expanded.error);
    return;
  }
  const vars: [string, unknown][] = [];
  for (const a of assignments) {
    const eq = a.indexOf('=');
    if (eq < 1) {
      into.issue(at, `expected key=value after host "${pattern}", got ${JSON.stringify(a)}`);
      return;
    }
    const key = a.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      into.issue(at, `invalid variable name ${JSON.stringify(key)} on host "${pattern}"`);
      return;
    }
    vars.push([key, parseIniValue(a.slice(eq + 1))]);
  }
  const g = into.group(group, at);
  for (const name of expanded.names) {
    const h = into.host(name, at);
    if (expanded.port !== undefined) h.vars.set('ansible_port', { value: expanded.port, at });
    if (login) h.vars.set('ansible_user', { value: login[1]!, at });
    for (const [k, v] of vars) h.vars.set(k, { value: v, at });
    into.addHostToGroup(g, name);
  }
}

/** An inventory line's words (`#` starts a comment), with the line in the error. */
export function shellSplit(line: string): { words: string[] } | { error: string } {
  const r = splitShellWords(line, { comments: true });
  return 'error' in r ? { error: `${r.error} in ${JSON.stringify(line)}` } : r;
}

/**
 * Ansible reads INI values with Python's ast.literal_eval and keeps the text when that fails.
 * We accept the literals inventories use: integers, floats, True/False/None, quoted strings
 * (optionally followed by a `#` comment, which Python ignores), and JSON-shaped lists and maps.
 */
export function parseIniValue(text: string): unknown {
  const t = text.trim();
  const body = stripPythonComment(t);
  if (/^[-+]?\d[\d_]*$/.test(body) && !/^[-+]?0\d/.test(body)) return Number(body.replace(/_/g, ''));
  if (/^[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$/.test(body) && /[.eE]/.test(body)) return Number(body);
  if (body === 'True') return true;
  if (body === 'False') return false;
  if (body === 'None') return null;
  const q = /^(['"])((?:\\.|(?!\1).)*)\1$/s.exec(body);
  if (q) return q[2]!.replace(/\\(.)/g, (_m, ch: string) => ({ n: '\n', t: '\t', r: '\r' })[ch] ?? ch);
  if (/^[[{]/.test(body)) {
    try {
      return JSON.parse(
        body
          .replace(/\bTrue\b/g, 'true')
          .replace(/\bFalse\b/g, 'false')
          .replace(/\bNone\b/g, 'null'),
      );
    } catch {
      return text;
    }
  }
  return text;
}

/** Removes a trailing `# comment` that stands outside quotes. */
function stripPythonComment(t: string): string {
  let quote: string | undefined;
  for (let i = 0; i < t.length; i++) {
    const c = t[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '#') return t.slice(0, i).trim();
  }
  return t;
}
