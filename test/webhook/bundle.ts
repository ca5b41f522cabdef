import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { type LocalAwsEndpoints, startLocalAwsEndpoints } from '../../local/aws-endpoints';
import { ROOT } from '../support/app';
import { SECRET } from './support';

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

/** A bundled handler kept running in its own `node` process (a warm Lambda instance), invoked over IPC. */
export interface BundleProcess {
  /** Invokes the handler once; `elapsedMs` is measured here, around the whole round trip. */
  invoke(event: unknown): Promise<{ statusCode: number; body: string; elapsedMs: number }>;
  /** Every JSON log line the function has written so far (lines may trail the answer by a moment). */
  readonly logLines: Record<string, unknown>[];
  /** Kills the process, as Lambda does at the function timeout; invocations in flight never answer. */
  kill(): Promise<void>;
}

/**
 * Starts the bundle in a fresh process with only `env`; each invocation gets a context whose
 * remaining time counts down from `timeoutMs` (the function's timeout), as Lambda's does.
 */
export async function startBundleProcess(
  bundle: string,
  env: Record<string, string>,
  timeoutMs = 10_000,
): Promise<BundleProcess> {
  const script = `
    const { handler } = require(process.argv[1]);
    const timeoutMs = Number(process.argv[2]);
    process.on('message', async ({ id, event }) => {
      const deadline = Date.now() + timeoutMs;
      const context = { functionName: 'pushline-webhook', awsRequestId: 'local-' + id, getRemainingTimeInMillis: () => deadline - Date.now() };
      const result = await handler(event, context);
      process.send({ id, result });
    });
    process.send({ ready: true });`;
  const child = spawn(process.execPath, ['-e', script, bundle, String(timeoutMs)], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const logLines: Record<string, unknown>[] = [];
  // Powertools Logger writes WARN and ERROR to stderr, the rest to stdout.
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream as NodeJS.ReadableStream }).on('line', (line) => {
      if (line.startsWith('{')) logLines.push(JSON.parse(line) as Record<string, unknown>);
    });
  }
  const pending = new Map<number, (result: { statusCode: number; body: string }) => void>();
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.on(
      'message',
      (message: { ready?: boolean; id?: number; result?: { statusCode: number; body: string } }) => {
        if (message.ready) resolve();
        if (message.id !== undefined && message.result) pending.get(message.id)?.(message.result);
      },
    );
  });
  let next = 0;
  return {
    logLines,
    async invoke(event) {
      const id = next++;
      const start = performance.now();
      const result = await new Promise<{ statusCode: number; body: string }>((resolve) => {
        pending.set(id, resolve);
        child.send({ id, event });
      });
      pending.delete(id);
      return { ...result, elapsedMs: performance.now() - start };
    },
    kill: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

/** The webhook function of a config, synthesized and bundled, with local AWS endpoints holding its secret. */
export interface BundledWebhook {
  readonly bundle: string;
  readonly aws: LocalAwsEndpoints;
  /** The function's environment, as the template sets it, pointing at `aws`. */
  readonly env: Record<string, string>;
  close(): Promise<void>;
}

export async function startBundledWebhook(config: string): Promise<BundledWebhook> {
  const dir = mkdtempSync(join(tmpdir(), 'pushline-config-'));
  writeFileSync(join(dir, 'pipeline.config.yaml'), config);
  const assemblyDir = await synthesize(join(dir, 'pipeline.config.yaml'));
  const secretName = 'pushline-webhook-secret';
  const aws = await startLocalAwsEndpoints({ secrets: { [secretName]: JSON.stringify(SECRET) } });
  return {
    bundle: webhookBundle(assemblyDir),
    aws,
    env: {
      ...aws.env,
      WEBHOOK_SECRET_ARN: secretName,
      RETRY_QUEUE_URL: aws.queueUrl,
      IDEMPOTENCY_TABLE_NAME: 'pushline-deliveries',
    },
    async close() {
      await aws.close();
      rmSync(assemblyDir, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Three repositories, one per provider, matching the fixtures' repositories. */
export const BUNDLED_TEST_CONFIG = `
name: pushline
webhook:
  allowedCidrs: [github-hooks, gitlab-com, backlog-jp]
repositories:
  - name: hello-world
    source: { provider: github, repository: Codertocat/Hello-World, cloneUrl: "git@github.com:Codertocat/Hello-World.git" }
    branches: [master]
  - name: diaspora
    source: { provider: gitlab, repository: mike/diaspora, cloneUrl: "git@example.com:mike/diaspora.git", host: example.com, knownHosts: ["example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf"] }
    branches: [master]
  - name: shop-api
    source: { provider: backlog, repository: SHOP/api, cloneUrl: "example@example.git.backlog.jp:/SHOP/api.git" }
    branches: [main]
    paths: ["docker/**", "src/**"]
  - name: bitbucket-app
    source: { provider: bitbucket, repository: team_name/repo_name, cloneUrl: "git@bitbucket.org:team_name/repo_name.git" }
    branches: [name-of-branch]
  - name: gitea-app
    source: { provider: gitea, repository: example/example, cloneUrl: "ssh://git@localhost:2222/example/example.git", knownHosts: ["[localhost]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf"] }
    branches: [master]
`;
