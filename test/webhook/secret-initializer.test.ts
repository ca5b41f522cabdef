import 'aws-sdk-client-mock-jest';
import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { handler } from '../../lambda/webhook/secret-initializer';

/** The deploy-time custom resource that gives every provider a value in the webhook secret. */

const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:pushline-webhook-AbCdEf';
const secrets = mockClient(SecretsManagerClient);

function update(): CloudFormationCustomResourceEvent {
  return {
    RequestType: 'Update',
    ServiceToken: 'token',
    ResponseURL: 'https://example.com',
    StackId: 'stack',
    RequestId: 'request',
    LogicalResourceId: 'SecretValues',
    PhysicalResourceId: SECRET_ARN,
    ResourceType: 'Custom::PushlineWebhookSecret',
    ResourceProperties: { ServiceToken: 'token', SecretArn: SECRET_ARN },
    OldResourceProperties: { ServiceToken: 'token', SecretArn: SECRET_ARN },
  };
}

beforeEach(() => secrets.reset());

test('GIVEN an installation deployed before Bitbucket and Gitea WHEN the stack is deployed again THEN both get a generated value and the existing three are kept', async () => {
  const existing = { backlog: 'kept-backlog', github: 'kept-github', gitlab: 'kept-gitlab' };
  secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify(existing) });
  secrets.on(PutSecretValueCommand).resolves({});

  await handler(update());

  expect(secrets).toHaveReceivedCommandTimes(PutSecretValueCommand, 1);
  const written = JSON.parse(
    secrets.commandCalls(PutSecretValueCommand)[0]?.args[0].input.SecretString ?? '{}',
  ) as Record<string, string>;
  expect(written).toEqual({
    ...existing,
    bitbucket: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    gitea: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
  });
  expect(written.bitbucket).not.toBe(written.gitea);
});

test('GIVEN every provider already has a value WHEN deployed again THEN the secret is not written', async () => {
  const complete = { backlog: 'a', github: 'b', gitlab: 'c', bitbucket: 'd', gitea: 'e' };
  secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify(complete) });
  await handler(update());
  expect(secrets).not.toHaveReceivedCommand(PutSecretValueCommand);
});
