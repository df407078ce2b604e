/**
 * The format-neutral shape that the INI and YAML inventory readers both produce, before groups are
 * resolved and variables merged (inventory.ts does that). Every variable keeps where it was written,
 * so that a bad value can be reported as `file:line`.
 */
export interface SourcePos {
  file: string;
  line: number;
}

export interface RawVar {
  value: unknown;
  at: SourcePos;
}

export interface RawGroup {
  name: string;
  at: SourcePos;
  vars: Map<string, RawVar>;
  /** Child group names, in order of first mention. */
  children: string[];
  /** Hosts listed directly in this group, in order of first mention. */
  hosts: string[];
}

export interface RawHost {
  name: string;
  at: SourcePos;
  vars: Map<string, RawVar>;
}

/** Collects groups, hosts and issues while a reader walks a file. Issues are `file:line: message` strings. */
export class RawInventory {
  readonly groups = new Map<string, RawGroup>();
  readonly hosts = new Map<string, RawHost>();
  readonly issues: string[] = [];
  readonly warnings: string[] = [];

  issue(at: SourcePos, message: string): void {
    this.issues.push(`${at.file}:${at.line}: ${message}`);
  }

  warn(at: SourcePos, message: string): void {
    this.warnings.push(`${at.file}:${at.line}: ${message}`);
  }

  group(name: string, at: SourcePos): RawGroup {
    let g = this.groups.get(name);
    if (!g) {
      g = { name, at, vars: new Map(), children: [], hosts: [] };
      this.groups.set(name, g);
    }
    return g;
  }

  host(name: string, at: SourcePos): RawHost {
    let h = this.hosts.get(name);
    if (!h) {
      h = { name, at, vars: new Map() };
      this.hosts.set(name, h);
    }
    return h;
  }

  addHostToGroup(group: RawGroup, host: string): void {
    if (!group.hosts.includes(host)) group.hosts.push(host);
  }

  addChild(parent: RawGroup, child: string): void {
    if (!parent.children.includes(child)) parent.children.push(child);
  }
}

/** Group names Ansible accepts without a warning; we refuse others because patterns could not name them. */
export const GROUP_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Splits `name:port` (and `[v6]:port`) as Ansible's parse_address does for inventory host patterns.
 * A bare IPv6 address (several colons, no brackets) has no port.
 */
export function splitHostPort(pattern: string): { name: string; port?: number } | { error: string } {
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(pattern);
  if (v6?.[1]?.includes(':')) return v6[2] ? { name: v6[1], port: Number(v6[2]) } : { name: v6[1] };
  // Colons inside range brackets (web[01:03]) are not port separators.
  const outside = pattern.replace(/\[[^\]]*\]/g, (m) => '_'.repeat(m.length));
  const colons = [...outside].filter((c) => c === ':').length;
  if (colons === 1) {
    const i = outside.indexOf(':');
    const port = pattern.slice(i + 1);
    if (!/^\d+$/.test(port)) return { error: `bad port ${JSON.stringify(port)} in host ${JSON.stringify(pattern)}` };
    return { name: pattern.slice(0, i), port: Number(port) };
  }
  return { name: pattern };
}

/**
 * Expands Ansible host ranges: `web[01:03]` -> web01, web02, web03 (leading zeros kept),
 * `db-[a:c]` -> db-a, db-b, db-c, `n[0:10:5]` -> n0, n5, n10. Several ranges multiply.
 */
export function expandHostRange(pattern: string): string[] | { error: string } {
  const m = /^(.*?)\[([^\]]*)\](.*)$/.exec(pattern);
  if (!m) return [pattern];
  const [, head, body, tail] = m as unknown as [string, string, string, string];
  const parts = body.split(':');
  if (parts.length < 2 || parts.length > 3) return { error: `bad range [${body}] in host ${JSON.stringify(pattern)}` };
  const [beg, end, strideText] = parts as [string, string, string | undefined];
  const stride = strideText === undefined || strideText === '' ? 1 : Number(strideText);
  if (!Number.isInteger(stride) || stride < 1)
    return { error: `bad range stride ${JSON.stringify(strideText)} in host ${JSON.stringify(pattern)}` };
  const items: string[] = [];
  if (/^\d*$/.test(beg) && /^\d+$/.test(end)) {
    const b = beg === '' ? 0 : Number(beg);
    const e = Number(end);
    if (b > e) return { error: `range start is after its end in host ${JSON.stringify(pattern)}` };
    const width = beg.length;
    for (let i = b; i <= e; i += stride) items.push(String(i).padStart(width, '0'));
  } else if (/^[a-z]$/.test(beg) && /^[a-z]$/.test(end)) {
    const b = beg.charCodeAt(0);
    const e = end.charCodeAt(0);
    if (b > e) return { error: `range start is after its end in host ${JSON.stringify(pattern)}` };
    for (let i = b; i <= e; i += stride) items.push(String.fromCharCode(i));
  } else {
    return { error: `bad range [${body}] in host ${JSON.stringify(pattern)}` };
  }
  if (items.length > 10_000) return { error: `range in host ${JSON.stringify(pattern)} has more than 10000 hosts` };
  const rest = expandHostRange(tail);
  if (!Array.isArray(rest)) return rest;
  return items.flatMap((i) => rest.map((r) => `${head}${i}${r}`));
}

/** Host pattern -> host names and optional port, or an error message. */
export function expandHostEntry(pattern: string): { names: string[]; port?: number } | { error: string } {
  const hp = splitHostPort(pattern);
  if ('error' in hp) return hp;
  if (hp.name === '') return { error: `empty host name in ${JSON.stringify(pattern)}` };
  const bareV6 = /^[0-9A-Fa-f:.]+$/.test(hp.name) && hp.name.includes(':');
  const names = bareV6 ? [hp.name] : expandHostRange(hp.name);
  if (!Array.isArray(names)) return names;
  return hp.port === undefined ? { names } : { names, port: hp.port };
}
