import { randomBytes } from 'node:crypto';
import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { isObject, WEBHOOK_PROVIDERS } from './push-event';

/**
 * Custom resource (CDK Provider framework) that completes the webhook secret at deploy time: every
 * provider without a value gets a fresh random one. Values exist only inside Secrets Manager —
 * never in the template, the custom resource's properties or its response — and existing values
 * are kept, so a rotated secret survives every later deploy.
 */

const secretsManager = new SecretsManagerClient({});

/** 32 random bytes, URL-safe (Backlog sends its token in the query string). */
export function generateWebhookToken(): string {
  return randomBytes(32).toString('base64url');
}

export async function handler(
  event: CloudFormationCustomResourceEvent,
): Promise<{ PhysicalResourceId: string }> {
  const secretArn = String(event.ResourceProperties.SecretArn ?? '');
  if (!secretArn) throw new Error('SecretArn property is missing');
  if (event.RequestType === 'Delete') return { PhysicalResourceId: secretArn };

  const current = await secretsManager.send(new GetSecretValueCommand({ SecretId: secretArn }));
  let values: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(current.SecretString ?? '{}');
    if (isObject(parsed)) values = parsed;
  } catch {
    // A value that is not JSON is replaced as a whole: the function could not use it anyway.
  }
  const missing = WEBHOOK_PROVIDERS.filter((p) => typeof values[p] !== 'string' || values[p] === '');
  if (missing.length > 0) {
    for (const provider of missing) values[provider] = generateWebhookToken();
    await secretsManager.send(
      new PutSecretValueCommand({ SecretId: secretArn, SecretString: JSON.stringify(values) }),
    );
  }
  return { PhysicalResourceId: secretArn };
}
