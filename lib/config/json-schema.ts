import { z } from 'zod';
import { PipelineConfigSchema } from './schema';

/** The JSON Schema editors use to complete and check `pipeline.config.yaml`, as committed text. */
export function configJsonSchema(): string {
  const schema = z.toJSONSchema(PipelineConfigSchema, {
    io: 'input',
    target: 'draft-2020-12',
    unrepresentable: 'any',
  });
  return `${JSON.stringify({ ...schema, title: 'pushline pipeline.config.yaml' }, null, 2)}\n`;
}
