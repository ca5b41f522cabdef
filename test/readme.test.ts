import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import stringWidth from 'string-width';
import { configJsonSchema } from '../lib/config/json-schema';
import { ROOT } from './support/app';
import { readMarkdown, referenceSections } from './support/markdown';

interface JsonSchemaNode {
  properties?: Record<string, JsonSchemaNode>;
  items?: JsonSchemaNode;
  anyOf?: JsonSchemaNode[];
  additionalProperties?: JsonSchemaNode | boolean;
}

/** Every field name a user can write, found by walking the generated JSON Schema. */
function fieldNames(node: JsonSchemaNode, into = new Set<string>()): Set<string> {
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    into.add(name);
    fieldNames(child, into);
  }
  if (node.items) fieldNames(node.items, into);
  for (const option of node.anyOf ?? []) fieldNames(option, into);
  return into;
}

/** Wider rows wrap in a terminal and scroll sideways on GitHub. */
const MAX_ROW_COLUMNS = 100;

describe.each(['README.md', 'README.ja.md'])('%s config reference', (file) => {
  const reference = referenceSections(readMarkdown(file));

  test('GIVEN the config schema THEN every field a user can write is in the reference', () => {
    const names = [...fieldNames(JSON.parse(configJsonSchema()) as JsonSchemaNode)].filter(
      (n) => n !== '$schema',
    );
    const text = reference.flatMap((s) => s.lines).join('\n');
    const codeSpans = [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '').join(' ');
    const missing = names.filter((name) => !new RegExp(`(^|[^A-Za-z])${name}([^A-Za-z]|$)`).test(codeSpans));
    expect(missing).toEqual([]);
  });

  test(`THEN every table row fits in ${MAX_ROW_COLUMNS} terminal columns (wide characters count two)`, () => {
    const rows = reference.flatMap((s) => s.tableRows.map((row) => ({ ...row, section: s.heading })));
    expect(rows.length).toBeGreaterThan(0);
    const tooWide = rows
      .filter((row) => stringWidth(row.text) > MAX_ROW_COLUMNS)
      .map((row) => `${file}:${row.line} (${row.section}, ${stringWidth(row.text)} columns): ${row.text}`);
    expect(tooWide).toEqual([]);
  });
});

describe('README', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

  test('THEN it shows the two commands CI runs', () => {
    const ci = readFileSync(join(ROOT, '.ci', 'run'), 'utf8');
    expect(readme).toContain('npm ci && npx cdk synth');
    expect(readme).toContain('npm test');
    expect(ci).toContain('npm test');
    expect(ci).toContain('npx cdk synth');
  });
});
