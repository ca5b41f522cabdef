import 'aws-sdk-client-mock-jest';
import type * as CodeBuild from '@aws-sdk/client-codebuild';
import type * as Sqs from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import type { BuildRequest } from '../../lambda/webhook/core';

const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/pushline-build-retry';

const REQUEST: BuildRequest = {
  repository: 'diaspora',
  projectName: 'pushline-diaspora',
  idempotencyToken: 'a'.repeat(64),
  environment: {
    COMMIT_SHA: 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7',
    GIT_REF: 'refs/heads/master',
    CLONE_URL: 'git@example.com:mike/diaspora.git',
    SOURCE_PROVIDER: 'gitlab',
    SOURCE_REPOSITORY: 'mike/diaspora',
    DELIVERY_ID: '13792a34-cac6-4fda-95a8-c58e00a3954e',
    PUSH_RECEIVED_AT: '1764000000000',
  },
};

function loadRetryHandler() {
  process.env.AWS_REGION = 'us-east-1';
  process.env.RETRY_QUEUE_URL = QUEUE_URL;
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  let loaded:
    | {
        handler: (event: SQSEvent) => Promise<SQSBatchResponse>;
        codebuild: AwsClientStub<CodeBuild.CodeBuildClient>;
        sqs: AwsClientStub<Sqs.SQSClient>;
        CodeBuild: typeof CodeBuild;
        Sqs: typeof Sqs;
      }
    | undefined;
  jest.isolateModules(() => {
    const codebuildModule = require('@aws-sdk/client-codebuild') as typeof CodeBuild;
    const sqsModule = require('@aws-sdk/client-sqs') as typeof Sqs;
    const codebuild = mockClient(codebuildModule.CodeBuildClient);
    const sqs = mockClient(sqsModule.SQSClient);
    sqs.on(sqsModule.ChangeMessageVisibilityCommand).resolves({});
    const retry = require('../../lambda/webhook/retry') as {
      handler: (event: SQSEvent) => Promise<SQSBatchResponse>;
    };
    loaded = { handler: retry.handler, codebuild, sqs, CodeBuild: codebuildModule, Sqs: sqsModule };
  });
  if (!loaded) throw new Error('the retry function did not load');
  return loaded;
}

function record(body: string, receiveCount: number, messageId = 'message-1'): SQSRecord {
  return {
    messageId,
    receiptHandle: `receipt-${messageId}`,
    body,
    attributes: {
      ApproximateReceiveCount: String(receiveCount),
      SentTimestamp: '1764000000000',
      SenderId: 'AROAEXAMPLE',
      ApproximateFirstReceiveTimestamp: '1764000000000',
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:pushline-build-retry',
    awsRegion: 'us-east-1',
  };
}

describe('build retry consumer', () => {
  test('GIVEN a queued build WHEN CodeBuild accepts it now THEN the exact same StartBuild is made and the message is done', async () => {
    const retry = loadRetryHandler();
    retry.codebuild.on(retry.CodeBuild.StartBuildCommand).resolves({ build: { id: 'pushline-diaspora:1' } });
    const result = await retry.handler({ Records: [record(JSON.stringify({ request: REQUEST }), 2)] });

    expect(result).toEqual({ batchItemFailures: [] });
    expect(retry.codebuild).toHaveReceivedCommandTimes(retry.CodeBuild.StartBuildCommand, 1);
    expect(retry.codebuild).toHaveReceivedCommandWith(retry.CodeBuild.StartBuildCommand, {
      projectName: 'pushline-diaspora',
      idempotencyToken: REQUEST.idempotencyToken,
      environmentVariablesOverride: Object.entries(REQUEST.environment).map(([name, value]) => ({
        name,
        value,
        type: 'PLAINTEXT',
      })),
    });
  });

  test('GIVEN CodeBuild still throttles WHEN the third try fails THEN the message goes back to SQS with a 120 s delay', async () => {
    const retry = loadRetryHandler();
    retry.codebuild
      .on(retry.CodeBuild.StartBuildCommand)
      .rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    const result = await retry.handler({ Records: [record(JSON.stringify({ request: REQUEST }), 3)] });

    // A failed item is received again until maxReceiveCount, then SQS moves it to the DLQ.
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: 'message-1' }] });
    expect(retry.sqs).toHaveReceivedCommandWith(retry.Sqs.ChangeMessageVisibilityCommand, {
      QueueUrl: QUEUE_URL,
      ReceiptHandle: 'receipt-message-1',
      VisibilityTimeout: 120,
    });
  });

  test('GIVEN a batch with one good and one unusable message WHEN handled THEN only the unusable one fails (towards the DLQ)', async () => {
    const retry = loadRetryHandler();
    retry.codebuild.on(retry.CodeBuild.StartBuildCommand).resolves({ build: { id: 'pushline-diaspora:1' } });
    const result = await retry.handler({
      Records: [record(JSON.stringify({ request: REQUEST }), 1, 'good'), record('not json', 1, 'bad')],
    });
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: 'bad' }] });
    expect(retry.codebuild).toHaveReceivedCommandTimes(retry.CodeBuild.StartBuildCommand, 1);
  });

  test('GIVEN many failed tries THEN the delay doubles from 30 s and stops growing at 15 minutes', () => {
    const { retryDelaySeconds } =
      require('../../lambda/webhook/retry') as typeof import('../../lambda/webhook/retry');
    expect([1, 2, 3, 4, 5, 6, 10].map(retryDelaySeconds)).toEqual([30, 60, 120, 240, 480, 900, 900]);
  });
});
