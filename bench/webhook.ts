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
 *   npm run bench        (or: npx tsx bench/webhook.ts)
 */

const COLD_RUNS = 20;
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

function timeProcess(args: string[], env: Record<string, string>): number {
  const start = process.hrtime.bigint();
  execFileSync(process.execPath, args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'ignore' });
  return Number(process.hrtime.bigint() - start) / 1e6;
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

  const bare: number[] = [];
  const cold: number[] = [];
  for (let i = 0; i < COLD_RUNS; i++) {
    // Interleaved, so that drift of the machine affects both series alike.
    bare.push(timeProcess(['-e', ''], env));
    cold.push(timeProcess(['-e', `require(${JSON.stringify(bundle)})`], env));
  }

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
      `${ms(median(cold))} vs bare node ${ms(median(bare))} = ${ratio(median(cold), median(bare))} (median of ${COLD_RUNS}; aim < 1.5x)`,
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
