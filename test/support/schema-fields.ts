import { configJsonSchema } from '../../lib/config/json-schema';

interface JsonSchemaNode {
  properties?: Record<string, JsonSchemaNode>;
  items?: JsonSchemaNode;
  anyOf?: JsonSchemaNode[];
  additionalProperties?: JsonSchemaNode | boolean;
}

function walk(node: JsonSchemaNode, into: Set<string>): Set<string> {
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    into.add(name);
    walk(child, into);
  }
  if (node.items) walk(node.items, into);
  // A map by name (`fleets`): the fields of each entry.
  if (typeof node.additionalProperties === 'object') walk(node.additionalProperties, into);
  for (const option of node.anyOf ?? []) walk(option, into);
  return into;
}

/** Every field name a user can write in the config, found by walking the generated JSON Schema. */
export function configFieldNames(): string[] {
  return [...walk(JSON.parse(configJsonSchema()) as JsonSchemaNode, new Set())].filter(
    (n) => n !== '$schema',
  );
}
