import {
  IdempotencyAlreadyInProgressError,
  IdempotencyConfig,
  makeIdempotent,
} from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { CodeBuildClient, StartBuildCommand } from '@aws-sdk/client-codebuild';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import type { WebhookSecret } from './auth';
import { boundedClientConfig } from './client-config';
import { type BuildJob, type BuildOutcome, type BuildRequest, receiveWebhook, startOrQueue } from './core';
import { LastGoodValue } from './last-good-value';
import { isObject, type WebhookRequest } from './push-event';
import { createRouter, parseRoutes } from './routes';
import {
  BUILD_NOT_KEPT,
  DELIVERY_TABLE_FAILED,
  describeError,
  type QueuedBuild,
  startBuildInput,
} from './start-build';

/**
 * The webhook function: API Gateway (Lambda proxy) in, StartBuild out. Everything that decides
 * lives in `core.ts`; this file wires AWS clients (module scope, so warm invocations reuse them)
 * and maps the result to HTTP.
 */

/** How long a redelivery is recognized. GitHub lets a delivery be redelivered for days. */
const DEDUPE_SECONDS = 7 * 24 * 60 * 60;

const settings = {
  secretArn: required('WEBHOOK_SECRET_ARN'),
  retryQueueUrl: required('RETRY_QUEUE_URL'),
  idempotencyTable: process.env.IDEMPOTENCY_TABLE_NAME,
  secretCacheMs: seconds('SECRET_CACHE_SECONDS', 300),
  /** At most one Secrets Manager read per this interval, however many deliveries ask. */
  secretReadIntervalMs: seconds('SECRET_READ_INTERVAL_SECONDS', 30),
  /** How long the last value read is used while Secrets Manager fails. */
  secretStaleMs: seconds('SECRET_STALE_SECONDS', 24 * 60 * 60),
};
// Replaced at bundle time by the routing table derived from the config (esbuild `define`).
const decide = createRouter(parseRoutes(process.env.PUSHLINE_ROUTES));

const logger = new Logger({ serviceName: 'pushline-webhook' });
// Every client bounded, so that the answer leaves in time whatever a service does (client-config.ts).
const clientConfig = boundedClientConfig();
const codebuild = new CodeBuildClient(clientConfig);
const secretsManager = new SecretsManagerClient(clientConfig);
const sqs = new SQSClient(clientConfig);

const webhookSecret = new LastGoodValue(fetchSecret, {
  freshForMs: settings.secretCacheMs,
  minIntervalMs: settings.secretReadIntervalMs,
  staleForMs: settings.secretStaleMs,
  onStale: (error, ageMs) =>
    logger.warn('Secrets Manager failed; authenticating with the last value read', {
      error: describeError(error),
      valueAgeSeconds: Math.round(ageMs / 1000),
    }),
});

function readSecret(fresh: boolean): Promise<WebhookSecret> {
  return webhookSecret.get(fresh);
}

async function fetchSecret(): Promise<WebhookSecret> {
  const result = await secretsManager.send(new GetSecretValueCommand({ SecretId: settings.secretArn }));
  let value: WebhookSecret = {};
  try {
    const parsed: unknown = JSON.parse(result.SecretString ?? '{}');
    if (isObject(parsed)) value = parsed as WebhookSecret;
  } catch {
    logger.error('the webhook secret is not a JSON object; every delivery will be refused');
  }
  return value;
}

/**
 * Starts each build now, or queues it; a CodeBuild or SQS that failed once is not waited on again
 * for the same delivery, so several repositories cannot add up their timeouts. A request neither
 * started nor queued is logged whole at ERROR (`BUILD_NOT_KEPT`, counted by a metric filter with an
 * alarm), and the delivery then fails.
 */
async function startBuildsNow(job: BuildJob): Promise<BuildOutcome> {
  let codebuildFailure: unknown;
  let queueFailure: unknown;
  const notKept: BuildRequest[] = [];
  const outcome = await startOrQueue(job, {
    async startBuild(request) {
      if (codebuildFailure !== undefined) throw codebuildFailure;
      try {
        const result = await codebuild.send(new StartBuildCommand(startBuildInput(request)));
        const buildId = result.build?.id;
        if (!buildId) throw new Error('StartBuild answered without a build id');
        logger.info('build started', { repository: request.repository, buildId });
        return buildId;
      } catch (err) {
        codebuildFailure = err;
        throw err;
      }
    },
    async enqueue(request, cause) {
      try {
        if (queueFailure !== undefined) throw queueFailure;
        const message: QueuedBuild = { request };
        await sqs.send(
          new SendMessageCommand({ QueueUrl: settings.retryQueueUrl, MessageBody: JSON.stringify(message) }),
        );
        logger.warn('build queued for retry', {
          repository: request.repository,
          cause: describeError(cause),
        });
      } catch (err) {
        queueFailure = err;
        notKept.push(request);
        logger.error(BUILD_NOT_KEPT, {
          repository: request.repository,
          startBuildError: describeError(cause),
          queueError: describeError(err),
          // Exactly what `aws codebuild start-build --cli-input-json` takes (README "Webhooks").
          startBuild: startBuildInput(request),
        });
      }
    },
  });
  if (notKept.length > 0) throw new BuildsNotKeptError(notKept.length);
  return outcome;
}

/** Neither CodeBuild nor the retry queue took a build: the delivery fails, and may be redelivered. */
class BuildsNotKeptError extends Error {
  constructor(count: number) {
    super(`${count} build(s) neither started nor queued`);
    this.name = 'BuildsNotKeptError';
  }
}

const idempotencyConfig = new IdempotencyConfig({
  eventKeyJmesPath: 'deliveryKey',
  expiresAfterSeconds: DEDUPE_SECONDS,
});

/** What one idempotent run got to, so that a failing delivery table is told apart from a failing build start. */
interface Attempt {
  outcome?: BuildOutcome;
  failure?: unknown;
}

const startBuildsOnce = settings.idempotencyTable
  ? makeIdempotent(
      async (job: BuildJob, attempt: Attempt): Promise<BuildOutcome> => {
        try {
          attempt.outcome = await startBuildsNow(job);
          return attempt.outcome;
        } catch (err) {
          attempt.failure = err;
          throw err;
        }
      },
      {
        persistenceStore: new DynamoDBPersistenceLayer({
          tableName: settings.idempotencyTable,
          // One try only: a PutItem whose answer is lost (a timeout) may have written the record, and
          // the SDK's retry would then find its own record "in progress" and build nothing. Without a
          // retry the builds start without the table instead (a possible duplicate, never a loss).
          awsSdkV3Client: new DynamoDBClient({ ...clientConfig, maxAttempts: 1 }),
        }),
        config: idempotencyConfig,
      },
    )
  : undefined;

/**
 * Starts the builds once per delivery key. When the delivery table fails (an error, throttling or
 * a timeout), the builds start anyway: CodeBuild's idempotency token collapses a redelivery within
 * its window, and a later duplicate of an existing image is a quick no-op build, so a possible
 * duplicate beats a lost push. Powertools deletes the record when the builds fail (so a redelivery
 * builds), and its in-progress expiry follows the Lambda context's remaining time, so a record left
 * by a killed invocation expires with it ("Idempotency", Powertools for AWS Lambda (TypeScript),
 * https://docs.powertools.aws.dev/lambda/typescript/latest/features/idempotency/).
 */
async function startBuilds(job: BuildJob): Promise<BuildOutcome> {
  if (!startBuildsOnce) return startBuildsNow(job);
  const attempt: Attempt = {};
  try {
    return await startBuildsOnce(job, attempt);
  } catch (err) {
    if (err instanceof IdempotencyAlreadyInProgressError) throw err;
    if (attempt.outcome) {
      deliveryTableFailed(
        err,
        'the builds started, but their record was not saved; a redelivery may start them again',
      );
      return attempt.outcome;
    }
    if (attempt.failure !== undefined) throw attempt.failure;
    deliveryTableFailed(err, 'starting the builds without redelivery detection');
    return startBuildsNow(job);
  }
}

/** Counted by a metric filter on `DELIVERY_TABLE_FAILED` (`WebhookReceiver`), at no cost to the bundle. */
function deliveryTableFailed(err: unknown, consequence: string): void {
  logger.warn(DELIVERY_TABLE_FAILED, { consequence, error: describeError(err) });
}

export async function handler(event: APIGatewayProxyEvent, context: Context): Promise<APIGatewayProxyResult> {
  logger.resetKeys();
  logger.addContext(context);
  idempotencyConfig.registerLambdaContext(context);
  const request = toWebhookRequest(event);
  try {
    const response = await receiveWebhook(request, {
      readSecret,
      decide,
      startBuilds,
      onPush: (push) =>
        logger.appendKeys({
          deliveryId: push.deliveryId,
          commit: push.commit,
          provider: push.provider,
          repository: push.repository,
          ref: push.ref,
        }),
    });
    logger.info('webhook answered', { status: response.statusCode, answer: response.body });
    return json(response.statusCode, response.body);
  } catch (err) {
    if (err instanceof IdempotencyAlreadyInProgressError) {
      logger.info('redelivery while the first delivery is still being handled');
      return json(200, { ignored: 'delivery already being handled' });
    }
    // Reached only when no AWS path could keep the push: a cold function without the secret, or a
    // build CodeBuild and the retry queue both refused (already logged whole as BUILD_NOT_KEPT).
    logger.error('webhook failed', { error: describeError(err) });
    return json(503, { error: 'temporarily unavailable; redeliver this webhook' });
  }
}

function toWebhookRequest(event: APIGatewayProxyEvent): WebhookRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    if (typeof value === 'string') headers[name.toLowerCase()] = value;
  }
  const query: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.queryStringParameters ?? {})) {
    if (typeof value === 'string') query[name] = value;
  }
  const raw = event.body ?? '';
  return {
    provider: event.pathParameters?.provider ?? event.path?.split('/').at(-1) ?? '',
    headers,
    query,
    body: event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8'),
  };
}

function json(statusCode: number, body: Record<string, unknown>): APIGatewayProxyResult {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

function seconds(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  return (Number.isFinite(value) && value >= 0 ? value : fallback) * 1000;
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}
