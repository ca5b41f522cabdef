import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../support/app';

/**
 * The webhook function exactly as it ships: `cdk synth` into a fresh directory, then the
 * NodejsFunction asset it bundled (`asset.<hash>/index.js`), found through the template.
 */

const run = promisify(execFile);

/** Synthesizes the app for a config file into a temporary cloud assembly and returns its directory. */
export async function synthesize(configPath: string): Promise<string> {
  const outdir = mkdtempSync(join(tmpdir(), 'pushline-cdk-out-'));
  await run('npx', ['cdk', 'synth', '--quiet', '-o', outdir, '-c', `config=${configPath}`], {
    cwd: ROOT,
    maxBuffer: 64 * 1024 * 1024,
  });
  return outdir;
}

/** The bundled webhook handler (`index.js`) of a synthesized shared stack. */
export function webhookBundle(assemblyDir: string, sharedStackName = 'pushline-shared'): string {
  return functionBundle(assemblyDir, 'pushline webhook: authenticates', sharedStackName);
}

/** The bundled handler (`index.js`) of the function whose description starts with `description`. */
export function functionBundle(
  assemblyDir: string,
  description: string,
  stackName = 'pushline-shared',
): string {
  const template = JSON.parse(readFileSync(join(assemblyDir, `${stackName}.template.json`), 'utf8')) as {
    Resources: Record<
      string,
      { Type: string; Properties: { Description?: string; Code?: { S3Key?: string } } }
    >;
  };
  const handler = Object.values(template.Resources).find(
    (r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Description?.startsWith(description),
  );
  const key = handler?.Properties.Code?.S3Key;
  if (!key) throw new Error(`no function "${description}…" in ${stackName}.template.json`);
  return join(assemblyDir, `asset.${key.replace(/\.zip$/, '')}`, 'index.js');
}

/** Invokes a bundled handler in a fresh `node` process with only `env`; returns its answers and log lines. */
export async function invokeBundle(
  bundle: string,
  env: Record<string, string>,
  events: readonly unknown[],
): Promise<{
  results: { statusCode: number; body: string }[];
  logLines: string[];
  /** JSON log lines written to stderr (Powertools writes warnings and errors there). */
  stderrLogLines: string[];
}> {
  const dir = mkdtempSync(join(tmpdir(), 'pushline-invoke-'));
  const eventsFile = join(dir, 'events.json');
  const resultsFile = join(dir, 'results.json');
  writeFileSync(eventsFile, JSON.stringify(events));
  const script = `
    const fs = require('node:fs');
    const { handler } = require(process.argv[1]);
    const context = { functionName: 'pushline-webhook', awsRequestId: 'local', getRemainingTimeInMillis: () => 29000 };
    (async () => {
      const results = [];
      for (const event of JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))) results.push(await handler(event, context));
      fs.writeFileSync(process.argv[3], JSON.stringify(results));
    })();`;
  const { stdout, stderr } = await run(process.execPath, ['-e', script, bundle, eventsFile, resultsFile], {
    env: { PATH: process.env.PATH ?? '', ...env },
    maxBuffer: 16 * 1024 * 1024,
  });
  return {
    results: JSON.parse(readFileSync(resultsFile, 'utf8')) as { statusCode: number; body: string }[],
    logLines: stdout.split('\n').filter((line) => line.startsWith('{')),
    stderrLogLines: stderr.split('\n').filter((line) => line.startsWith('{')),
  };
}
