/**
 * Prints the CHANGELOG.md section of a release, for the GitHub release's notes:
 *
 *   tsx scripts/release-notes.ts v1.4.2 [CHANGELOG.md]
 *
 * The section is the one headed `## [1.4.2]` or `## v1.4.2` (a date may follow), up to the next `## ` heading.
 * A release without a section fails: the changelog is kept with every release, not written afterwards.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Pure: the body of the version's section, trimmed; undefined when there is none (or it is empty). */
export function releaseNotes(changelog: string, tag: string): string | undefined {
  const version = tag.replace(/^v/, '');
  const lines = changelog.split(/\r?\n/);
  const escaped = version.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const heading = new RegExp(`^## \\[?v?${escaped}\\]?(?:\\s|$)`);
  const start = lines.findIndex((l) => heading.test(l));
  if (start < 0) return undefined;
  let end = lines.findIndex((l, i) => i > start && /^## /.test(l));
  if (end < 0) end = lines.length;
  // Link reference definitions at the end of the file (`[1.4.2]: https://...`) are not part of the section.
  const body = lines
    .slice(start + 1, end)
    .filter((l) => !/^\[[^\]]+\]:\s/.test(l))
    .join('\n')
    .trim();
  return body || undefined;
}

export function printReleaseNotes(argv: string[], write = (s: string) => process.stdout.write(s)): number {
  const [tag, file = 'CHANGELOG.md'] = argv;
  if (!tag) {
    process.stderr.write('usage: release-notes.ts vMAJOR.MINOR.PATCH [CHANGELOG.md]\n');
    return 2;
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    process.stderr.write(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? e}\n`);
    return 1;
  }
  const notes = releaseNotes(text, tag);
  if (!notes) {
    process.stderr.write(
      `${file} has no section for ${tag}: add "## [${tag.replace(/^v/, '')}] - YYYY-MM-DD" with what changed, then tag again\n`,
    );
    return 1;
  }
  write(`${notes}\n`);
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exitCode = printReleaseNotes(process.argv.slice(2));
