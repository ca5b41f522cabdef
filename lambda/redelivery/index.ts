import { Logger } from '@aws-lambda-powertools/logger';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import * as z from 'zod/mini';
import { boundedClientConfig } from '../webhook/client-config';
import { githubHooksApi } from './github-hooks-api';
import { reconcile } from './reconcile';

/**
 * The scheduled GitHub redelivery reconciler (see reconcile.ts). The token comes from the
 * provider-token secret's `github` value; without one it logs a warning and does nothing.
 */

const settings = {
  tokenSecretArn: required('TOKEN_SECRET_ARN'),
  webhookUrl: required('WEBHOOK_URL'),
  githubApiUrl: process.env.GITHUB_API_URL || 'https://api.github.com',
  repositories: z.array(z.string()).parse(JSON.parse(required('REPOSITORIES'))),
  lookbackMs: positive('LOOKBACK_MINUTES', 360) * 60_000,
  maxAttempts: positive('MAX_ATTEMPTS', 5),
};

const logger = new Logger({ serviceName: 'pushline-github-redelivery' });
const secretsManager = new SecretsManagerClient(boundedClientConfig());

export async function handler(): Promise<void> {
  const token = await githubToken();
  if (!token) {
    logger.warn('no "github" value in the provider-token secret: nothing redelivered');
    return;
  }
  const reports = await reconcile(
    githubHooksApi(settings.githubApiUrl, token),
    settings.repositories,
    settings.webhookUrl,
    Date.now(),
    { lookbackMs: settings.lookbackMs, maxAttempts: settings.maxAttempts },
  );
  for (const report of reports) {
    if (report.error) logger.error('could not reconcile the repository', { ...report });
    else if (report.gaveUp.length > 0)
      logger.error('pushes still failing after every redelivery: start their builds by hand', { ...report });
    else if (report.redelivered.length > 0) logger.info('failed pushes redelivered', { ...report });
  }
}

async function githubToken(): Promise<string | undefined> {
  const result = await secretsManager.send(new GetSecretValueCommand({ SecretId: settings.tokenSecretArn }));
  try {
    const value: unknown = JSON.parse(result.SecretString ?? '{}');
    const github = (value as { github?: unknown } | null)?.github;
    return typeof github === 'string' && github.length > 0 ? github : undefined;
  } catch {
    return undefined;
  }
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function positive(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`${name} must be a positive integer, got ${process.env[name]}`);
  return value;
}
