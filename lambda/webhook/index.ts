import {
  IdempotencyAlreadyInProgressError,
  IdempotencyConfig,
  makeIdempotent,
} from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { CodeBuildClient, StartBuildCommand } from '@aws-sdk/client-codebuild';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import type { WebhookSecret } from './auth';
import { type BuildJob, type BuildOutcome, receiveWebhook, startOrQueue } from './core';
import { isObject, type WebhookRequest } from './push-event';
import { createRouter, parseRoutes } from './routes';
import { describeError, type QueuedBuild, startBuildInput } from './start-build';

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
  secretCacheMs: Number(process.env.SECRET_CACHE_SECONDS ?? 300) * 1000,
};
// Replaced at bundle time by the routing table derived from the config (esbuild `define`).
const decide = createRouter(parseRoutes(process.env.PUSHLINE_ROUTES));

const logger = new Logger({ serviceName: 'pushline-webhook' });
const codebuild = new CodeBuildClient({});
const secretsManager = new SecretsManagerClient({});
const sqs = new SQSClient({});

let secretCache: { value: WebhookSecret; readAt: number } | undefined;

async function readSecret(fresh: boolean): Promise<WebhookSecret> {
  if (!fresh && secretCache && Date.now() - secretCache.readAt < settings.secretCacheMs)
    return secretCache.value;
  const result = await secretsManager.send(new GetSecretValueCommand({ SecretId: settings.secretArn }));
  let value: WebhookSecret = {};
  try {
    const parsed: unknown = JSON.parse(result.SecretString ?? '{}');
    if (isObject(parsed)) value = parsed as WebhookSecret;
  } catch {
    logger.error('the webhook secret is not a JSON object; every delivery will be refused');
  }
  secretCache = { value, readAt: Date.now() };
  return value;
}

async function startBuildsNow(job: BuildJob): Promise<BuildOutcome> {
  return startOrQueue(job, {
    async startBuild(request) {
      const result = await codebuild.send(new StartBuildCommand(startBuildInput(request)));
      const buildId = result.build?.id;
      if (!buildId) throw new Error('StartBuild answered without a build id');
      logger.info('build started', { repository: request.repository, buildId });
      return buildId;
    },
    async enqueue(request, cause) {
      const message: QueuedBuild = { request };
      await sqs.send(
        new SendMessageCommand({ QueueUrl: settings.retryQueueUrl, MessageBody: JSON.stringify(message) }),
      );
      logger.warn('build queued for retry', { repository: request.repository, cause: describeError(cause) });
    },
  });
}

const idempotencyConfig = new IdempotencyConfig({
  eventKeyJmesPath: 'deliveryKey',
  expiresAfterSeconds: DEDUPE_SECONDS,
});
const startBuilds = settings.idempotencyTable
  ? makeIdempotent(startBuildsNow, {
      persistenceStore: new DynamoDBPersistenceLayer({ tableName: settings.idempotencyTable }),
      config: idempotencyConfig,
    })
  : startBuildsNow;

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
    // Not the caller's fault (Secrets Manager, SQS or DynamoDB failed): a 503 makes the provider retry.
    logger.error('webhook failed', { error: describeError(err) });
    return json(503, { error: 'temporarily unavailable, retry later' });
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

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}
