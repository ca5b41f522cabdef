import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** The benchmarks `npm run bench` runs, one after the other, each in its own process. */
const BENCHMARKS = ['webhook.ts', 'webhook-load.ts', 'pipeline.ts', 'build.ts'];

let failed = false;
for (const script of BENCHMARKS) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, script)], {
    stdio: 'inherit',
  });
  failed ||= result.status !== 0;
}
process.exit(failed ? 1 : 0);
