import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { splitShellWords } from '../../../src/config/shell-words.js';

// Differential: the same texts through Python's shlex.split (posix), the splitter Ansible uses.
const CASES = [
  `gunicorn -b "0.0.0.0:8000" 'a b' $(id) \`x\` c\\ d`,
  `a "b \\"c\\"" 'd e'#x`,
  `echo "\\$HOME" '\\$HOME' \\$HOME`,
  `x#y "p#q" 'r#s' t`,
  `"" '' a""b`,
  `tab\there\nnewline "in \\\\ quotes"`,
  `web1 ansible_host=10.0.0.1 ansible_ssh_common_args='-o ProxyJump=u@b:22' # comment`,
];

function shlex(text: string, comments: boolean): string[] {
  const out = execFileSync(
    'python3',
    [
      '-c',
      'import json,shlex,sys; print(json.dumps(shlex.split(sys.stdin.read(), comments=sys.argv[1] == "1")))',
      comments ? '1' : '0',
    ],
    { input: text, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  return JSON.parse(out.toString()) as string[];
}

describe('splitShellWords agrees with Python shlex.split', () => {
  for (const comments of [false, true])
    it.each(CASES)(`comments ${comments}: %s`, (text) => {
      expect(splitShellWords(text, { comments })).toEqual({ words: shlex(text, comments) });
    });

  it('names an unclosed quote (shlex: No closing quotation)', () => {
    expect(splitShellWords(`a 'b`)).toEqual({ error: 'unclosed single quote' });
    expect(splitShellWords(`a "b`)).toEqual({ error: 'unclosed double quote' });
    expect(() => shlex(`a "b`, false)).toThrow(/No closing quotation/);
  });
});
