import { parse, stringify } from 'yaml';

/**
 * Mutations of a playbook for fuzzing: text-level (lines dropped, duplicated, swapped, re-indented, bytes
 * inserted) and structure-level (values of other types, keys removed or added, modules renamed, templates and
 * filters injected). Deterministic for a seed, so a failure can be replayed.
 */

export function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    // xorshift32
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

export interface Mutation {
  name: string;
  text: string;
  /** True when only docker_container/vars values changed (the apt task and names kept): safe to run on the lab. */
  safe: boolean;
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

const ODD_VALUES: unknown[] = [
  null,
  0,
  -1,
  3,
  '',
  'x',
  true,
  'yes',
  [],
  ['a', 'b'],
  {},
  { k: 'v' },
  '{{ undefined_thing }}',
  '{{ REGISTRY | lower }}',
  '{{ item | shuffle }}',
  '{{ broken ',
  '{% if %}',
  "{{ 'a' ~ 1 }}",
  '{{ create_containers | int + 1 }}',
  '$(touch /tmp/pwned)',
  '"; rm -rf / #',
  'a\nb',
  '💥',
  Number.POSITIVE_INFINITY,
];

const TEXT_JUNK = ['{', '}', ':', '- ', '  ', '\t', '"', "'", '{{', '}}', '|', '>', '&a', '*a', '!!python/object', '%'];

type Obj = Record<string, unknown>;

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

function structural(base: Obj[], r: () => number): { name: string; doc: unknown; safe: boolean } {
  const doc = clone(base);
  const play = doc[0]!;
  const tasks = play.tasks as Obj[];
  const kind = Math.floor(r() * 12);
  switch (kind) {
    case 0: {
      const vars = play.vars as Obj;
      const k = pick(r, Object.keys(vars));
      vars[k] = pick(r, ODD_VALUES);
      return { name: `play var ${k} = ${JSON.stringify(vars[k])}`, doc, safe: false };
    }
    case 1: {
      const t = pick(r, tasks);
      const mod = Object.keys(t).find((k) => !['name', 'loop', 'with_sequence'].includes(k))!;
      const args = t[mod];
      if (args && typeof args === 'object') {
        const k = pick(r, Object.keys(args as Obj));
        (args as Obj)[k] = pick(r, ODD_VALUES);
        return { name: `${mod}.${k} = ${JSON.stringify((args as Obj)[k])}`, doc, safe: false };
      }
      t[mod] = pick(r, ODD_VALUES);
      return { name: `${mod} args = ${JSON.stringify(t[mod])}`, doc, safe: false };
    }
    case 2: {
      const i = Math.floor(r() * tasks.length);
      tasks.splice(i, 1);
      return { name: `task ${i} removed`, doc, safe: i !== 0 };
    }
    case 3: {
      const t = pick(r, tasks);
      const k = pick(r, [
        'delegate_to',
        'notify',
        'until',
        'colour',
        'when',
        'register',
        'tags',
        'no_log',
        'become',
        'ignore_errors',
        'changed_when',
        'failed_when',
        'environment',
        'vars',
      ]);
      t[k] = pick(r, ODD_VALUES);
      return { name: `task keyword ${k} = ${JSON.stringify(t[k])}`, doc, safe: false };
    }
    case 4: {
      const t = pick(r, tasks);
      const mod = Object.keys(t).find((k) => !['name', 'loop', 'with_sequence'].includes(k))!;
      const to = pick(r, [
        `community.docker.${mod}`,
        `ansible.builtin.${mod}`,
        `${mod}x`,
        'shell',
        'command',
        'ufw',
        'copy',
        'docker_compose',
      ]);
      t[to] = t[mod];
      delete t[mod];
      return { name: `module ${mod} -> ${to}`, doc, safe: false };
    }
    case 5: {
      const c = tasks[3]!;
      c.with_sequence = pick(r, [
        'count=0',
        'count=1',
        'count=3',
        'count=-1',
        'start=5 end=6',
        'count={{ create_containers }}',
        'count=x',
        'end=2',
        '1-2',
        'count=10001',
        'count={{ nope }}',
      ]);
      const safe = ['count=0', 'count=1', 'count=3', 'start=5 end=6', 'count={{ create_containers }}', '1-2'].includes(
        c.with_sequence as string,
      );
      return { name: `with_sequence ${c.with_sequence}`, doc, safe };
    }
    case 6: {
      const c = tasks[3]!.docker_container as Obj;
      const k = pick(r, [
        'state',
        'restart_policy',
        'network_mode',
        'pull',
        'recreate',
        'restart',
        'command',
        'labels',
        'published_ports',
        'env',
      ]);
      const values: Record<string, unknown[]> = {
        state: ['started', 'present', 'stopped', 'absent', 'running'],
        restart_policy: ['no', 'always', 'unless-stopped', 'on-failure', 'sometimes'],
        network_mode: ['host', 'bridge', 'none'],
        pull: [true, false, 'maybe'],
        recreate: [true, false],
        restart: [true, false],
        command: ['sleep 1000', ['sh', '-c', 'echo hi'], 'unbalanced "quote'],
        labels: [{ a: 'b' }, { n: 1 }],
        published_ports: [['127.0.0.1:19999:8000'], 'notalist'],
        env: [{ PORT: 1 }, { A: 'b' }, { PORT: '{{ base_port }}' }],
      };
      c[k] = pick(r, values[k]!);
      const safe =
        (k === 'state' && c[k] !== 'running') ||
        k === 'recreate' ||
        k === 'restart' ||
        (k === 'restart_policy' && c[k] !== 'sometimes') ||
        (k === 'labels' && !('n' in (c[k] as Obj))) ||
        (k === 'env' && !('PORT' in (c[k] as Obj) && typeof (c[k] as Obj).PORT === 'number'));
      return { name: `docker_container.${k} = ${JSON.stringify(c[k])}`, doc, safe };
    }
    case 7: {
      const t = pick(r, tasks);
      t.when = pick(r, [
        'create_containers > 1',
        'false',
        'item == "1"',
        'x = = 1',
        '{{ x }}',
        'REGISTRY is defined',
        'nope',
        'nope is undefined',
        true,
        'base_port | int > 9000',
      ]);
      return { name: `when ${JSON.stringify(t.when)}`, doc, safe: false };
    }
    case 8: {
      play.hosts = pick(r, [
        'all',
        'servers',
        'nomatch',
        'all:!indenwolken',
        '~ind.*',
        'servers[0]',
        '{{ target }}',
        '',
      ]);
      return { name: `hosts ${play.hosts}`, doc, safe: false };
    }
    case 9: {
      const k = pick(r, [
        'become',
        'gather_facts',
        'serial',
        'handlers',
        'roles',
        'vars_files',
        'tags',
        'name',
        'strategy',
      ]);
      play[k] = pick(r, [true, false, 1, '50%', [], 'x', ['missing.yml']]);
      return { name: `play ${k} = ${JSON.stringify(play[k])}`, doc, safe: false };
    }
    case 10: {
      const t = tasks[0]!;
      t.loop = pick(r, ['{{ [1,2] }}', '{{ nope }}', 'notalist', [], ['curl'], [['a']], '{{ ["ca-certificates"] }}']);
      return { name: `apt loop ${JSON.stringify(t.loop)}`, doc, safe: false };
    }
    default: {
      const t = pick(r, tasks);
      t.name = pick(r, ['{{ REGISTRY }}', '{{ nope }}', '', 5, '{{ bad', 'plain']);
      return {
        name: `task name ${JSON.stringify(t.name)}`,
        doc,
        safe: !String(t.name).includes('{{') || t.name === '{{ REGISTRY }}',
      };
    }
  }
}

function textual(base: string, r: () => number): string {
  const lines = base.split('\n');
  const i = Math.floor(r() * lines.length);
  const j = Math.floor(r() * lines.length);
  switch (Math.floor(r() * 6)) {
    case 0:
      lines.splice(i, 1);
      break;
    case 1:
      lines.splice(i, 0, lines[j]!);
      break;
    case 2:
      [lines[i], lines[j]] = [lines[j]!, lines[i]!];
      break;
    case 3:
      lines[i] = ` ${lines[i]}`;
      break;
    case 4: {
      const l = lines[i]!;
      const at = Math.floor(r() * (l.length + 1));
      lines[i] = l.slice(0, at) + pick(r, TEXT_JUNK) + l.slice(at);
      break;
    }
    default:
      return base.slice(0, Math.floor(r() * base.length));
  }
  return lines.join('\n');
}

/** `count` mutations of TEXT (a playbook), half textual, half structural. */
export function mutatePlaybook(text: string, count: number, seed = 9): Mutation[] {
  const r = prng(seed);
  const base = parse(text) as Obj[];
  const out: Mutation[] = [];
  for (let n = 0; n < count; n++) {
    if (n % 2 === 0) out.push({ name: `text #${n}`, text: textual(text, r), safe: false });
    else {
      const m = structural(base, r);
      out.push({ name: `#${n} ${m.name}`, text: stringify(m.doc), safe: m.safe });
    }
  }
  return out;
}
