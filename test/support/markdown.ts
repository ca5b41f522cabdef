import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import MarkdownIt from 'markdown-it';
import { ROOT } from './app';

/** A heading and everything up to the next heading of any level, as parsed by markdown-it. */
export interface Section {
  /** 1 to 6; 0 for the text before the first heading. */
  readonly level: number;
  /** The heading's source text without the leading `#`s, as a reader would search for it. */
  readonly heading: string;
  /** First line of the section, 1-based (the heading itself). */
  readonly line: number;
  /** The section's source lines, heading included. */
  readonly lines: readonly string[];
  /** Each fenced code block, byte for byte from its opening fence to its closing one. */
  readonly codeBlocks: readonly string[];
  /** Each table row (header and delimiter rows included) with its 1-based line number. */
  readonly tableRows: readonly { readonly line: number; readonly text: string }[];
}

export interface MarkdownDocument {
  readonly file: string;
  readonly text: string;
  readonly sections: readonly Section[];
}

const parser = new MarkdownIt();

/** Reads a Markdown file at the repository root and splits it into sections. */
export function readMarkdown(file: string): MarkdownDocument {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const lines = text.split('\n');
  const tokens = parser.parse(text, {});
  const headings = tokens.flatMap((token, i) =>
    token.type === 'heading_open' && token.map
      ? [{ level: Number(token.tag.slice(1)), start: token.map[0], text: tokens[i + 1]?.content ?? '' }]
      : [],
  );
  const bounds = [{ level: 0, start: 0, text: '' }, ...headings];
  const sections = bounds.map((bound, i): Section => {
    const end = bounds[i + 1]?.start ?? lines.length;
    const inside = (map: [number, number] | null): map is [number, number] =>
      map !== null && map[0] >= bound.start && map[0] < end;
    return {
      level: bound.level,
      heading: bound.text,
      line: bound.start + 1,
      lines: lines.slice(bound.start, end),
      codeBlocks: tokens
        .filter((t) => t.type === 'fence' && inside(t.map))
        .map((t) => lines.slice(t.map?.[0], t.map?.[1]).join('\n')),
      tableRows: tokens
        .filter((t) => t.type === 'table_open' && inside(t.map))
        .flatMap((t) => {
          const [first, last] = t.map ?? [0, 0];
          return lines.slice(first, last).map((row, k) => ({ line: first + k + 1, text: row }));
        }),
    };
  });
  return { file, text, sections };
}

/**
 * The config reference: the section holding the `<!-- config-reference` marker and the deeper
 * sections after it (one per config section), up to the next heading of its level or above.
 */
export function referenceSections(doc: MarkdownDocument): Section[] {
  const start = doc.sections.findIndex((s) => s.lines.some((l) => l.startsWith('<!-- config-reference')));
  const reference = doc.sections[start];
  if (!reference) throw new Error(`${doc.file} has no <!-- config-reference marker`);
  const after = doc.sections.slice(start + 1);
  const next = after.findIndex((s) => s.level <= reference.level);
  return [reference, ...(next < 0 ? after : after.slice(0, next))];
}
