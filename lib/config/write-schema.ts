import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { configJsonSchema } from './json-schema';

/** Writes `pipeline.config.schema.json` at the repository root: `npm run schema`. */
const target = resolve(__dirname, '..', '..', 'pipeline.config.schema.json');
writeFileSync(target, configJsonSchema());
process.stdout.write(`wrote ${target}\n`);
