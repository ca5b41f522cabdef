import { execFileSync } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { startLocalAwsEndpoints } from '../local/aws-endpoints';
import { synthesize, webhookBundle } from '../test/webhook/bundle';
import { fixture, githubDelivery, LAMBDA_CONTEXT, SECRET } from '../test/webhook/support';

/**
 * Measures the webhook function as it ships (the asset `cdk synth` bundles for the sample config):
 * bundle size, cold load against a bare `node` start, and warm latency against a handler that only
 * parses JSON — all in this one run, on this machine, printed as ratios.
 *
 * Cold load: a fresh `node` that `require`s the bundle, against a fresh `node -e ''`, in pairs run
 * one right after the other; the figure is the median of the pairs' ratios. Both get the same clean
 * environment: what Lambda sets for the function (region, credentials, the template's variables)
 * and `PATH`, nothing else (no `NODE_OPTIONS`, no `NODE_EXTRA_CA_CERTS`). A third series loads only
 * the Node built-ins that the SDK's clients load at start (HTTPS and TLS, crypto, zlib, streams,
 * fs/promises, os): the part of the cold load that no bundling option removes.
 *
 *   npm run bench        (or: npx tsx bench/webhook.ts)
 */

const COLD_RUNS = 20;
/** What the SDK v3 clients, Powertools and the function load from Node itself when the bundle is required. */
const SDK_BUILTINS = ['node:https', 'node:crypto', 'node:zlib', 'node:stream', 'node:fs/promises', 'node:os'];
const WARM_DELIVERIES = 1000;
const WARM_UP = 100;

type Handler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** The median of the ratios of paired runs. */
function pairedRatio(values: number[], bases: number[]): number {
  return median(values.map((value, i) => value / (bases[i] ?? Number.NaN)));
}

/** How long a fresh `node` running `code` takes: wall clock, and the CPU time it reports at its end. */
function timeProcess(code: string, env: Record<string, string>): { wallMs: number; cpuMs: number } {
  const report = 'const u=process.cpuUsage();process.stdout.write(String((u.user+u.system)/1000))';
  const start = process.hrtime.bigint();
  const out = execFileSync(process.execPath, ['-e', `${code};${report}`], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'ignore'],
    encoding: 'utf8',
  });
  return { wallMs: Number(process.hrtime.bigint() - start) / 1e6, cpuMs: Number(out) };
}

async function timeDeliveries(handler: Handler, events: APIGatewayProxyEvent[]): Promise<number[]> {
  const times: number[] = [];
  for (const event of events) {
    const start = process.hrtime.bigint();
    const result = await handler(event, LAMBDA_CONTEXT);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
    if (result.statusCode >= 500) throw new Error(`delivery failed: ${result.statusCode} ${result.body}`);
  }
  return times;
}

const ms = (value: number) => `${value.toFixed(3)} ms`;
const ratio = (value: number, base: number) => `${(value / base).toFixed(2)}x`;

async function main(): Promise<void> {
  const assemblyDir = await synthesize(join(__dirname, '..', 'pipeline.config.yaml'));
  const bundle = webhookBundle(assemblyDir);
  const aws = await startLocalAwsEndpoints({ secrets: { 'pushline-webhook': JSON.stringify(SECRET) } });
  const env = {
    ...aws.env,
    WEBHOOK_SECRET_ARN: 'pushline-webhook',
    RETRY_QUEUE_URL: aws.queueUrl,
    IDEMPOTENCY_TABLE_NAME: 'pushline-deliveries',
    POWERTOOLS_LOG_LEVEL: 'WARN',
  };

  const sizeKb = statSync(bundle).size / 1024;

  // What Lambda sets for this function, and nothing the local endpoints need (loading calls no AWS).
  const lambdaEnv = {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_SESSION_TOKEN: 'local',
    WEBHOOK_SECRET_ARN: env.WEBHOOK_SECRET_ARN,
    RETRY_QUEUE_URL: env.RETRY_QUEUE_URL,
    IDEMPOTENCY_TABLE_NAME: env.IDEMPOTENCY_TABLE_NAME,
  };
  const bareRuns: { wallMs: number; cpuMs: number }[] = [];
  const coldRuns: { wallMs: number; cpuMs: number }[] = [];
  const builtinRuns: { wallMs: number; cpuMs: number }[] = [];
  for (let i = 0; i < COLD_RUNS; i++) {
    // Interleaved, so that drift of the machine affects the series alike.
    bareRuns.push(timeProcess('', lambdaEnv));
    coldRuns.push(timeProcess(`require(${JSON.stringify(bundle)})`, lambdaEnv));
    builtinRuns.push(timeProcess(SDK_BUILTINS.map((m) => `require('${m}')`).join(';'), lambdaEnv));
  }
  const bare = bareRuns.map((r) => r.wallMs);
  const cold = coldRuns.map((r) => r.wallMs);
  const builtins = builtinRuns.map((r) => r.wallMs);
  const bareCpu = bareRuns.map((r) => r.cpuMs);
  const coldCpu = coldRuns.map((r) => r.cpuMs);

  Object.assign(process.env, env);
  const { handler } = require(bundle) as { handler: Handler };
  const baseline: Handler = async (event) => {
    JSON.parse(event.body ?? '{}');
    return { statusCode: 200, body: '{}' };
  };

  const push = fixture('github', 'push-branch-created.json');
  const samplePush = {
    ...push,
    ref: 'refs/heads/main',
    repository: { ...(push.repository as object), full_name: 'example-org/shop-web' },
  };
  const deliveries = (n: number, prefix: string, payload: unknown) =>
    Array.from({ length: n }, (_, i) => githubDelivery(payload, { deliveryId: `${prefix}-${i}` }));
  const ignoredPush = { ...samplePush, ref: 'refs/heads/experiment' };

  await timeDeliveries(handler, deliveries(WARM_UP, 'warm-up', samplePush));
  await timeDeliveries(baseline, deliveries(WARM_UP, 'warm-up-baseline', samplePush));
  const baselineTimes = await timeDeliveries(baseline, deliveries(WARM_DELIVERIES, 'baseline', samplePush));
  const buildTimes = await timeDeliveries(handler, deliveries(WARM_DELIVERIES, 'build', samplePush));
  const decideTimes = await timeDeliveries(handler, deliveries(WARM_DELIVERIES, 'ignored', ignoredPush));
  await aws.close();
  rmSync(assemblyDir, { recursive: true, force: true });

  const baseP50 = percentile(baselineTimes, 50);
  const baseP99 = percentile(baselineTimes, 99);
  const rows = [
    ['bundle', `${sizeKb.toFixed(1)} KB minified (aim < 500 KB)`],
    [
      'cold load',
      `${pairedRatio(cold, bare).toFixed(2)}x a bare node start (median of ${COLD_RUNS} paired runs: ${ms(median(cold))} vs ${ms(median(bare))}, node ${process.version}; aim < 1.5x)`,
    ],
    [
      'cold load, CPU time',
      `${pairedRatio(coldCpu, bareCpu).toFixed(2)}x (user+system time each process reports, ${ms(median(coldCpu))} vs ${ms(median(bareCpu))}; steadier than the wall clock on a busy machine)`,
    ],
    [
      'Node built-ins alone',
      `${pairedRatio(builtins, bare).toFixed(2)}x a bare node start to load only ${SDK_BUILTINS.join(', ')} (${ms(median(builtins))})`,
    ],
    ['baseline (JSON.parse only)', `p50 ${ms(baseP50)}, p99 ${ms(baseP99)}`],
    [
      'warm, push that builds',
      `p50 ${ms(percentile(buildTimes, 50))} (${ratio(percentile(buildTimes, 50), baseP50)}), p99 ${ms(percentile(buildTimes, 99))} (${ratio(percentile(buildTimes, 99), baseP99)}) over ${WARM_DELIVERIES}: HMAC, parse, route, dedupe put+update and StartBuild over local HTTP`,
    ],
    [
      'warm, push that is ignored',
      `p50 ${ms(percentile(decideTimes, 50))} (${ratio(percentile(decideTimes, 50), baseP50)}), p99 ${ms(percentile(decideTimes, 99))} (${ratio(percentile(decideTimes, 99), baseP99)}) over ${WARM_DELIVERIES}: HMAC, parse, route, no AWS call`,
    ],
  ];
  process.stdout.write('webhook function, as bundled by cdk synth for pipeline.config.yaml\n');
  for (const [name, value] of rows) process.stdout.write(`  ${name?.padEnd(28)} ${value}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
