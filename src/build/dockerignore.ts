/**
 * Pure .dockerignore matching, with Docker's semantics: patterns are matched against the slash path relative to
 * the context; `*` and `?` stop at `/`, `**` spans directories, `!` re-includes, the last matching pattern wins,
 * and a pattern that matches a parent directory excludes everything under it.
 */
export interface IgnoreRule {
  negate: boolean;
  pattern: string;
  regex: RegExp;
  /** 1-based line in the .dockerignore file. */
  line: number;
}

export function parseDockerignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  lines.forEach((raw, i) => {
    let p = raw.trim();
    if (p === '' || p.startsWith('#')) return;
    let negate = false;
    if (p.startsWith('!')) {
      negate = true;
      p = p.slice(1).trim();
    }
    p = cleanPath(p);
    if (p === '' || p === '.') return;
    rules.push({ negate, pattern: p, regex: globToRegExp(p), line: i + 1 });
  });
  return rules;
}

/** The rule that decides whether `relPath` is excluded (undefined: included, no rule matched it or a parent). */
export function excludingRule(rules: readonly IgnoreRule[], relPath: string): IgnoreRule | undefined {
  const path = cleanPath(relPath);
  const parts = path.split('/');
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let decided: IgnoreRule | undefined;
  for (const rule of rules) {
    const hit = prefixes.some((p) => rule.regex.test(p));
    if (hit) decided = rule.negate ? undefined : rule;
  }
  return decided;
}

function cleanPath(p: string): string {
  const out: string[] = [];
  for (const part of p.replace(/\\(?=[^*?[\\])/g, '/').split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out.join('/');
}

function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let cls = pattern.slice(i + 1, end);
        if (cls.startsWith('^') || cls.startsWith('!')) cls = `^${cls.slice(1)}`;
        re += `[${cls.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < pattern.length) {
      i++;
      re += escapeRe(pattern[i]!);
    } else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`);
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
