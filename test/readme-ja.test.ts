import { type MarkdownDocument, readMarkdown, type Section } from './support/markdown';

/**
 * README.ja.md follows README.md section by section: the n-th heading of one is the n-th heading
 * of the other, at the same level, and each section holds the same fenced code blocks, byte for
 * byte. To bring README.ja.md up to date after README.md changed, add the Japanese heading at the
 * same position and copy the code blocks unchanged; the failures below name the section to fix.
 */
const english = readMarkdown('README.md');
const japanese = readMarkdown('README.ja.md');

function label(doc: MarkdownDocument, section: Section | undefined): string {
  if (!section) return `${doc.file}: (no section)`;
  const heading =
    section.level === 0 ? '(before the first heading)' : `${'#'.repeat(section.level)} ${section.heading}`;
  return `${doc.file}:${section.line} ${heading}`;
}

/** The code spans of a heading (config keys, commands), which a translation keeps as they are. */
function codeSpans(section: Section | undefined): string[] {
  return [...(section?.heading ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '');
}

/** Pairs the sections of both files by position. */
function pairs(): [Section | undefined, Section | undefined][] {
  const count = Math.max(english.sections.length, japanese.sections.length);
  return Array.from({ length: count }, (_, i) => [english.sections[i], japanese.sections[i]]);
}

describe('README.ja.md against README.md', () => {
  // Only the first section that drifted is reported: after a missing or extra section, every
  // later pair is shifted, and listing them all would hide where the drift began.
  test('GIVEN both READMEs THEN they have the same sections, in the same order and at the same levels', () => {
    const firstDrift = pairs()
      .filter(([en, ja]) => en?.level !== ja?.level || codeSpans(en).join() !== codeSpans(ja).join())
      .map(([en, ja]) => `${label(english, en)}  <->  ${label(japanese, ja)}`)[0];
    expect({ firstDrift, sections: japanese.sections.length }).toEqual({
      firstDrift: undefined,
      sections: english.sections.length,
    });
  });

  test('THEN every fenced code block of one is, byte for byte, in the matching section of the other', () => {
    const firstDrift = pairs()
      .map(([en, ja]) => {
        const enBlocks = en?.codeBlocks ?? [];
        const jaBlocks = ja?.codeBlocks ?? [];
        return [
          ...enBlocks
            .filter((block) => !jaBlocks.includes(block))
            .map((block) => `missing from ${label(japanese, ja)}:\n${block}`),
          ...jaBlocks
            .filter((block) => !enBlocks.includes(block))
            .map((block) => `not in ${label(english, en)}:\n${block}`),
        ];
      })
      .find((problems) => problems.length > 0);
    expect(firstDrift).toBeUndefined();
  });

  test('THEN each links to the other at the top', () => {
    expect(english.sections.slice(0, 2).flatMap((s) => s.lines)).toContain(
      '日本語: [README.ja.md](README.ja.md)',
    );
    expect(japanese.sections.slice(0, 2).flatMap((s) => s.lines)).toContain(
      'English: [README.md](README.md)',
    );
  });
});
