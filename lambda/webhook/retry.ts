import { Logger } from '@aws-lambda-powertools/logger';
import { CodeBuildClient, StartBuildCommand } from '@aws-sdk/client-codebuild';
import { ChangeMessageVisibilityCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { boundedClientConfig } from './client-config';
import { describeError, parseQueuedBuild, startBuildInput } from './start-build';

/**
 * The retry consumer: starts the builds the webhook could not start. A failed try is handed back
 * to SQS with a growing delay; after the queue's maxReceiveCount tries SQS moves the message to the
 * dead-letter queue, whose alarm tells an operator.
 */

const BASE_DELAY_SECONDS = 30;
/** SQS caps a visibility timeout at 12 hours; a build retry never needs to wait that long. */
const MAX_DELAY_SECONDS = 15 * 60;

const retryQueueUrl = process.env.RETRY_QUEUE_URL;
const logger = new Logger({ serviceName: 'pushline-build-retry' });
// Bounded like the webhook's, so a hanging CodeBuild fails this try (and SQS retries it) instead of the batch.
const clientConfig = boundedClientConfig();
const codebuild = new CodeBuildClient(clientConfig);
const sqs = new SQSClient(clientConfig);

/** Exponential backoff by the number of tries so far: 30 s, 60 s, 120 s, … capped at 15 minutes. */
export function retryDelaySeconds(receiveCount: number): number {
  return Math.min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2 ** Math.max(0, receiveCount - 1));
}

export async function handler(event: SQSEvent): Promise<SQSBatchResponse> {
  const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
  for (const record of event.Records) {
    if (!(await retry(record))) batchItemFailures.push({ itemIdentifier: record.messageId });
  }
  return { batchItemFailures };
}

async function retry(record: SQSRecord): Promise<boolean> {
  const receiveCount = Number(record.attributes.ApproximateReceiveCount ?? 1);
  const queued = parseQueuedBuild(record.body);
  if (typeof queued === 'string') {
    // Retrying cannot fix it; failing it sends it to the dead-letter queue for a person to read.
    logger.error('unusable retry message', { messageId: record.messageId, problem: queued });
    return false;
  }
  const { request } = queued;
  const keys = {
    repository: request.repository,
    deliveryId: request.environment.DELIVERY_ID,
    commit: request.environment.COMMIT_SHA,
    attempt: receiveCount,
  };
  try {
    const result = await codebuild.send(new StartBuildCommand(startBuildInput(request)));
    logger.info('build started on retry', { ...keys, buildId: result.build?.id });
    return true;
  } catch (err) {
    const delay = retryDelaySeconds(receiveCount);
    logger.warn('build retry failed', { ...keys, error: describeError(err), nextTryInSeconds: delay });
    if (retryQueueUrl) {
      await sqs
        .send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: retryQueueUrl,
            ReceiptHandle: record.receiptHandle,
            VisibilityTimeout: delay,
          }),
        )
        .catch((visibilityError: unknown) =>
          logger.warn('could not delay the retry', { error: describeError(visibilityError) }),
        );
    }
    return false;
  }
}
