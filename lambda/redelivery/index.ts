import { Logger } from '@aws-lambda-powertools/logger';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import { boundedClientConfig } from '../webhook/client-config';
import { githubHooksApi } from './github-hooks-api';
import { reconcile } from './reconcile';

/**
 * The scheduled GitHub redelivery reconciler (see reconcile.ts). The token comes from the
 * provider-token secret's `github` value; without one it logs a warning and does nothing.
 */

const settings = z
  .object({
    TOKEN_SECRET_ARN: z.string().min(1),
    WEBHOOK_URL: z.url(),
    GITHUB_API_URL: z.url().default('https://api.github.com'),
    REPOSITORIES: z.string().transform((s) => z.array(z.string()).parse(JSON.parse(s))),
    LOOKBACK_MINUTES: z.coerce.number().int().positive().default(360),
    MAX_ATTEMPTS: z.coerce.number().int().positive().default(5),
  })
  .parse(process.env);

const logger = new Logger({ serviceName: 'pushline-github-redelivery' });
const secretsManager = new SecretsManagerClient(boundedClientConfig());

export async function handler(): Promise<void> {
  const token = await githubToken();
  if (!token) {
    logger.warn('no "github" value in the provider-token secret: nothing redelivered');
    return;
  }
  const reports = await reconcile(
    githubHooksApi(settings.GITHUB_API_URL, token),
    settings.REPOSITORIES,
    settings.WEBHOOK_URL,
    Date.now(),
    { lookbackMs: settings.LOOKBACK_MINUTES * 60_000, maxAttempts: settings.MAX_ATTEMPTS },
  );
  for (const report of reports) {
    if (report.error) logger.error('could not reconcile the repository', { ...report });
    else if (report.gaveUp.length > 0)
      logger.error('pushes still failing after every redelivery: start their builds by hand', { ...report });
    else if (report.redelivered.length > 0) logger.info('failed pushes redelivered', { ...report });
  }
}

async function githubToken(): Promise<string | undefined> {
  const result = await secretsManager.send(
    new GetSecretValueCommand({ SecretId: settings.TOKEN_SECRET_ARN }),
  );
  try {
    const value: unknown = JSON.parse(result.SecretString ?? '{}');
    const github = (value as { github?: unknown } | null)?.github;
    return typeof github === 'string' && github.length > 0 ? github : undefined;
  } catch {
    return undefined;
  }
}
