import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { type ProxyHandler, startLocalApiGateway } from '../local/api-gateway';
import { startLocalAwsEndpoints } from '../local/aws-endpoints';
import { findBundledFunction, loadBundledHandler, WEBHOOK_FUNCTION } from '../local/bundled-function';
import { readTemplate } from '../local/cloud-assembly';
import { synthesize } from '../test/webhook/bundle';
import { fixture, githubDelivery, LAMBDA_CONTEXT, SECRET } from '../test/webhook/support';

/**
 * A load run of the webhook as `npm run local` serves it (local API Gateway → the function bundled
 * by `cdk synth` for pipeline.config.yaml → local CodeBuild, Secrets Manager, SQS and dynalite),
 * without Docker builds: 500 deliveries from 50 concurrent senders, a mix of distinct pushes,
 * redeliveries of them (GitHub's Redeliver, sent while or after the first is handled) and forged
 * ones. It checks that every distinct push started exactly one build, that nothing forged built and
 * that no answer was a 5xx, and prints answer times against a baseline handler behind the same
 * gateway, in the same run.
 *
 *   npx tsx bench/webhook-load.ts
 */

const DELIVERIES = 500;
const SENDERS = 50;
const DISTINCT = 250;
const REDELIVERED = 150;
const FORGED = DELIVERIES - DISTINCT - REDELIVERED;
const SECRET_ID = 'pushline-webhook';

interface Delivery {
  readonly kind: 'distinct' | 'redelivery' | 'forged';
  readonly deliveryId: string;
  readonly body: string;
  readonly headers: Record<string, string>;
}

interface Answer {
  readonly kind: Delivery['kind'];
  readonly status: number;
  readonly ms: number;
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** Distinct pushes, redeliveries placed after their original, forged ones; interleaved by a fixed shuffle. */
function deliveries(): Delivery[] {
  const push = fixture('github', 'push-branch-created.json');
  const payload = {
    ...push,
    ref: 'refs/heads/main',
    repository: { ...(push.repository as object), full_name: 'example-org/shop-web' },
  };
  const delivery = (kind: Delivery['kind'], deliveryId: string): Delivery => {
    const event = githubDelivery(payload, {
      deliveryId,
      ...(kind === 'forged' ? { secret: 'not-the-secret' } : {}),
    });
    return { kind, deliveryId, body: event.body ?? '', headers: event.headers as Record<string, string> };
  };
  let seed = 15;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const list: Delivery[] = [];
  for (let i = 0; i < DISTINCT; i++)
    list.splice(Math.floor(random() * (list.length + 1)), 0, delivery('distinct', `load-${i}`));
  for (let i = 0; i < REDELIVERED; i++) {
    const original = list.findIndex((d) => d.deliveryId === `load-${i % DISTINCT}`);
    const at = original + 1 + Math.floor(random() * (list.length - original));
    list.splice(at, 0, delivery('redelivery', `load-${i % DISTINCT}`));
  }
  for (let i = 0; i < FORGED; i++)
    list.splice(Math.floor(random() * (list.length + 1)), 0, delivery('forged', `forged-${i}`));
  return list;
}

async function send(url: string, list: readonly Delivery[]): Promise<Answer[]> {
  const answers: Answer[] = [];
  let next = 0;
  const sender = async () => {
    for (let i = next++; i < list.length; i = next++) {
      const d = list[i] as Delivery;
      const started = performance.now();
      const res = await fetch(`${url}/webhooks/github`, { method: 'POST', headers: d.headers, body: d.body });
      await res.text();
      answers.push({ kind: d.kind, status: res.status, ms: performance.now() - started });
    }
  };
  await Promise.all(Array.from({ length: SENDERS }, sender));
  return answers;
}

async function main(): Promise<void> {
  const assemblyDir = await synthesize(join(__dirname, '..', 'pipeline.config.yaml'));
  const aws = await startLocalAwsEndpoints({ secrets: { [SECRET_ID]: JSON.stringify(SECRET) } });
  const sharedStack = { name: 'pushline-shared', template: readTemplate(assemblyDir, 'pushline-shared') };
  const handler = loadBundledHandler(
    findBundledFunction(assemblyDir, sharedStack, WEBHOOK_FUNCTION, {
      'AWS::SecretsManager::Secret': SECRET_ID,
      'AWS::SQS::Queue': aws.queueUrl,
      'AWS::DynamoDB::Table': 'pushline-load-deliveries',
    }),
    { ...aws.env, POWERTOOLS_LOG_LEVEL: 'ERROR' },
  );
  const context = { ...LAMBDA_CONTEXT, getRemainingTimeInMillis: () => 10_000 };
  const baseline: ProxyHandler = async (event): Promise<APIGatewayProxyResult> => {
    JSON.parse(event.body ?? '{}');
    return { statusCode: 202, body: '{}' };
  };
  const allowedCidrs = ['127.0.0.1/32'];
  const webhookApi = await startLocalApiGateway({
    handler: (event) => handler(event, context),
    allowedCidrs,
  });
  const baselineApi = await startLocalApiGateway({ handler: baseline, allowedCidrs });

  const list = deliveries();
  const baselineAnswers = await send(baselineApi.url, list);
  const started = performance.now();
  const answers = await send(webhookApi.url, list);
  const wallMs = performance.now() - started;
  await webhookApi.close();
  await baselineApi.close();

  const buildsPerPush = new Map<string, number>();
  for (const build of aws.builds.values()) {
    const id = build.environment.environmentVariables.find((v) => v.name === 'DELIVERY_ID')?.value ?? '';
    buildsPerPush.set(id, (buildsPerPush.get(id) ?? 0) + 1);
  }
  const startBuildCalls = aws.startBuildCalls.length;
  await aws.close();
  rmSync(assemblyDir, { recursive: true, force: true });

  const distinct = new Set(list.filter((d) => d.kind === 'distinct').map((d) => d.deliveryId));
  const notOnce = [...distinct].filter((id) => buildsPerPush.get(id) !== 1);
  for (const id of notOnce) process.stdout.write(`  ${id}: ${buildsPerPush.get(id) ?? 0} builds\n`);
  const forgedBuilds = [...buildsPerPush.keys()].filter((id) => id.startsWith('forged-'));
  const serverErrors = answers.filter((a) => a.status >= 500);
  const byStatus = (kind: Delivery['kind']) => {
    const counts = new Map<number, number>();
    for (const a of answers.filter((x) => x.kind === kind))
      counts.set(a.status, (counts.get(a.status) ?? 0) + 1);
    return [...counts].map(([status, n]) => `${n}×${status}`).join(' ');
  };
  const ms = (v: number) => `${v.toFixed(1)} ms`;
  const times = answers.map((a) => a.ms);
  const baseTimes = baselineAnswers.map((a) => a.ms);
  const rows = [
    ['deliveries', `${answers.length} from ${SENDERS} concurrent senders in ${(wallMs / 1000).toFixed(1)} s`],
    [
      'distinct pushes',
      `${distinct.size}: ${byStatus('distinct')}; exactly one build each: ${notOnce.length === 0 ? 'yes' : `NO (${notOnce.length} not)`}`,
    ],
    ['redeliveries', `${REDELIVERED}: ${byStatus('redelivery')}`],
    ['forged', `${FORGED}: ${byStatus('forged')}; builds ${forgedBuilds.length}`],
    ['5xx answers', String(serverErrors.length)],
    [
      'builds started',
      `${aws.builds.size} (StartBuild calls ${startBuildCalls}, repeats collapsed by the idempotency token)`,
    ],
    [
      'baseline (JSON.parse only)',
      `p50 ${ms(percentile(baseTimes, 50))}, p99 ${ms(percentile(baseTimes, 99))}`,
    ],
    [
      'webhook',
      `p50 ${ms(percentile(times, 50))} (${(percentile(times, 50) / percentile(baseTimes, 50)).toFixed(1)}x), p99 ${ms(percentile(times, 99))} (${(percentile(times, 99) / percentile(baseTimes, 99)).toFixed(1)}x), max ${ms(Math.max(...times))}`,
    ],
  ];
  process.stdout.write('webhook under load, as npm run local serves it (no Docker builds)\n');
  for (const [name, value] of rows) process.stdout.write(`  ${name?.padEnd(28)} ${value}\n`);
  if (notOnce.length > 0 || forgedBuilds.length > 0 || serverErrors.length > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
