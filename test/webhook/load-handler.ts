import type * as CodeBuild from '@aws-sdk/client-codebuild';
import type * as SecretsManager from '@aws-sdk/client-secrets-manager';
import type * as Sqs from '@aws-sdk/client-sqs';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { SECRET, SECRET_ARN, TEST_ROUTES_JSON, type WebhookHandler } from './support';

/**
 * A fresh copy of the webhook function (its module-scope clients, secret cache and config read
 * anew) with its CodeBuild, Secrets Manager and SQS clients mocked by aws-sdk-client-mock.
 * DynamoDB is not mocked: `env` points it at local endpoints so Powertools Idempotency runs for real.
 */
export interface LoadedWebhook {
  readonly handler: WebhookHandler;
  readonly codebuild: AwsClientStub<CodeBuild.CodeBuildClient>;
  readonly secrets: AwsClientStub<SecretsManager.SecretsManagerClient>;
  readonly sqs: AwsClientStub<Sqs.SQSClient>;
  readonly CodeBuild: typeof CodeBuild;
  readonly SecretsManager: typeof SecretsManager;
  readonly Sqs: typeof Sqs;
}

export function loadWebhookHandler(env: Record<string, string | undefined> = {}): LoadedWebhook {
  const settings: Record<string, string | undefined> = {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    WEBHOOK_SECRET_ARN: SECRET_ARN,
    RETRY_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/pushline-build-retry',
    PUSHLINE_ROUTES: TEST_ROUTES_JSON,
    IDEMPOTENCY_TABLE_NAME: undefined,
    SECRET_CACHE_SECONDS: undefined,
    SECRET_READ_INTERVAL_SECONDS: undefined,
    SECRET_STALE_SECONDS: undefined,
    ...env,
  };
  for (const [name, value] of Object.entries(settings)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  let loaded: LoadedWebhook | undefined;
  jest.isolateModules(() => {
    const codebuildModule = require('@aws-sdk/client-codebuild') as typeof CodeBuild;
    const secretsModule = require('@aws-sdk/client-secrets-manager') as typeof SecretsManager;
    const sqsModule = require('@aws-sdk/client-sqs') as typeof Sqs;
    const codebuild = mockClient(codebuildModule.CodeBuildClient);
    const secrets = mockClient(secretsModule.SecretsManagerClient);
    const sqs = mockClient(sqsModule.SQSClient);
    let builds = 0;
    codebuild.on(codebuildModule.StartBuildCommand).callsFake((input: CodeBuild.StartBuildCommandInput) => ({
      build: { id: `${input.projectName}:build-${++builds}` },
    }));
    secrets
      .on(secretsModule.GetSecretValueCommand)
      .resolves({ ARN: SECRET_ARN, SecretString: JSON.stringify(SECRET) });
    sqs.on(sqsModule.SendMessageCommand).resolves({ MessageId: 'message-1' });
    const index = require('../../lambda/webhook/index') as { handler: WebhookHandler };
    loaded = {
      handler: index.handler,
      codebuild,
      secrets,
      sqs,
      CodeBuild: codebuildModule,
      SecretsManager: secretsModule,
      Sqs: sqsModule,
    };
  });
  if (!loaded) throw new Error('the webhook function did not load');
  return loaded;
}
