import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import stringWidth from 'string-width';
import { configJsonSchema } from '../lib/config/json-schema';
import { ROOT } from './support/app';
import { readMarkdown, referenceSections } from './support/markdown';
import { configFieldNames } from './support/schema-fields';

interface JsonSchemaNode {
  properties?: Record<string, JsonSchemaNode>;
  items?: JsonSchemaNode;
  anyOf?: JsonSchemaNode[];
  additionalProperties?: JsonSchemaNode | boolean;
  required?: string[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  description?: string;
}

const SCHEMA = JSON.parse(configJsonSchema()) as JsonSchemaNode;

/** The objects a node may stand for: itself, its list's items, the options of a union. */
function shapes(node: JsonSchemaNode): JsonSchemaNode[] {
  return [node, ...(node.items ? shapes(node.items) : []), ...(node.anyOf ?? []).flatMap(shapes)];
}

/**
 * The schema node of a reference row's field, such as `throttle.rateLimit` under `webhook` or
 * `secrets[].id` under `repositories[].docker`, and whether its object requires it.
 */
function resolveField(path: string): { node: JsonSchemaNode; required: boolean } | undefined {
  let found: { node: JsonSchemaNode; required: boolean } | undefined = { node: SCHEMA, required: true };
  for (const name of path.split('.').map((segment) => segment.replace(/\[\]$/, ''))) {
    // `<name>` stands for any key of a map by name (`fleets.<name>.baseCapacity`).
    if (name === '<name>') {
      const entry: JsonSchemaNode | boolean | undefined = found?.node.additionalProperties;
      found = typeof entry === 'object' ? { node: entry, required: true } : undefined;
      continue;
    }
    const parent: JsonSchemaNode | undefined =
      found && shapes(found.node).find((shape) => shape.properties?.[name]);
    const node: JsonSchemaNode | undefined = parent?.properties?.[name];
    found = parent && node ? { node, required: parent.required?.includes(name) ?? false } : undefined;
  }
  return found;
}

/** How the reference writes a schema default: code for strings and lists, plain numbers. */
function renderDefault(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (Array.isArray(value)) return `\`[${value.join(', ')}]\``;
  return `\`${String(value)}\``;
}

/** Wider rows wrap in a terminal and scroll sideways on GitHub. */
const MAX_ROW_COLUMNS = 100;

describe.each(['README.md', 'README.ja.md'])('%s config reference', (file) => {
  const reference = referenceSections(readMarkdown(file));

  test('GIVEN the config schema THEN every field a user can write is in the reference', () => {
    const names = configFieldNames();
    const text = reference.flatMap((s) => s.lines).join('\n');
    const codeSpans = [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '').join(' ');
    const missing = names.filter((name) => !new RegExp(`(^|[^A-Za-z])${name}([^A-Za-z]|$)`).test(codeSpans));
    expect(missing).toEqual([]);
  });

  test('THEN every row names a schema field, with its default, its range and whether it is required', () => {
    const problems = reference.flatMap((section) => {
      const spans = [...section.heading.matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '');
      const base = spans.length === 1 ? `${spans[0]}.` : '';
      return section.tableRows.slice(2).flatMap((row) => {
        const [field = '', type = '', byDefault = ''] = row.text
          .split('|')
          .slice(1, -1)
          .map((cell) => cell.trim());
        const path = `${base}${field.replace(/^`|`$/g, '')}`;
        const where = `${file}:${row.line} ${path}`;
        const resolved = resolveField(path);
        if (!resolved) return [`${where}: no such field in the schema`];
        const { node, required } = resolved;
        const found: string[] = [];
        if (/required|必須/.test(byDefault) !== required)
          found.push(
            `${where}: the schema ${required ? 'requires' : 'does not require'} it (row says "${byDefault}")`,
          );
        if (node.default !== undefined && byDefault !== renderDefault(node.default))
          found.push(
            `${where}: default ${renderDefault(node.default)} in the schema, "${byDefault}" in the row`,
          );
        const range = /^(\d+)–(\d+)$/.exec(type);
        if (range && (Number(range[1]) !== node.minimum || Number(range[2]) !== node.maximum))
          found.push(`${where}: range ${node.minimum}–${node.maximum} in the schema, ${type} in the row`);
        return found;
      });
    });
    expect(problems).toEqual([]);
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

/** Every field a user can write, by its path (`repositories[].deploy.cpu`), with its schema node. */
function fieldPaths(node: JsonSchemaNode, prefix = ''): [string, JsonSchemaNode][] {
  const own = Object.entries(node.properties ?? {}).flatMap(([name, child]): [string, JsonSchemaNode][] => [
    [`${prefix}${name}`, child],
    ...fieldPaths(child, `${prefix}${name}.`),
  ]);
  const items = node.items ? fieldPaths(node.items, `${prefix.replace(/\.$/, '')}[].`) : [];
  const entries =
    typeof node.additionalProperties === 'object'
      ? fieldPaths(node.additionalProperties, `${prefix}<name>.`)
      : [];
  return [
    ...own,
    ...items,
    ...entries,
    ...(node.anyOf ?? []).flatMap((option) => fieldPaths(option, prefix)),
  ];
}

describe('pipeline.config.schema.json', () => {
  test('GIVEN the config schema THEN every field a user can write has a description for editors to show', () => {
    const undescribed = fieldPaths(SCHEMA)
      .filter(([path, node]) => path !== '$schema' && node.description === undefined)
      .map(([path]) => path);
    expect([...new Set(undescribed)]).toEqual([]);
  });
});

describe('README', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

  test('GIVEN a repository name with "/" THEN the redeploy commands name the artifact by the stack output, not by a key built from the name', () => {
    const section = readme.slice(readme.indexOf("### Redeploying a previous commit's image"));
    const commands = section.slice(
      section.indexOf('```sh'),
      section.indexOf('```', section.indexOf('```sh') + 5),
    );
    expect(commands).toContain('--prefix <ArtifactKey>');
    expect(readme).not.toMatch(/artifacts\/<repository>/);
  });

  test('THEN it shows the two commands CI runs', () => {
    const ci = readFileSync(join(ROOT, '.ci', 'run'), 'utf8');
    expect(readme).toContain('npm ci && npx cdk synth');
    expect(readme).toContain('npm test');
    expect(ci).toContain('npm test');
    expect(ci).toContain('npx cdk synth');
  });
});
