import { Logger } from '@aws-lambda-powertools/logger';
import {
  BatchGetBuildsCommand,
  CodeBuildClient,
  ListBuildsForProjectCommand,
} from '@aws-sdk/client-codebuild';
import { CodeDeployClient, GetDeploymentCommand } from '@aws-sdk/client-codedeploy';
import { DescribeTaskDefinitionCommand, ECSClient } from '@aws-sdk/client-ecs';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import type { Context } from 'aws-lambda';
import {
  type BuildRecord,
  type DeploymentRecord,
  type FailedBuildNotice,
  reportBuildEvent,
  reportDeploymentEvent,
} from './core';
import { BUILD_STATUSES, type BuildStatus, environmentMap } from './events';
import { ProviderApiError } from './provider-api';
import { parseReporterRoutes, type ReportProvider } from './routes';

/**
 * The reporter function: EventBridge (CodeBuild Build State Change) in, commit statuses and pull
 * request comments out. Invoked asynchronously: an error thrown here makes Lambda try again later
 * and finally hands the event to the on-failure destination; the build itself is never touched.
 */

const settings = {
  tokensSecretArn: process.env.PROVIDER_TOKENS_SECRET_ARN,
  notificationTopicArn: process.env.NOTIFICATION_TOPIC_ARN,
  secretCacheMs: Number(process.env.SECRET_CACHE_SECONDS ?? 300) * 1000,
};
// Replaced at bundle time by the table derived from the config (esbuild `define`).
const routes = new Map(
  parseReporterRoutes(process.env.PUSHLINE_REPORT_ROUTES).map((r) => [r.projectName, r]),
);

const logger = new Logger({ serviceName: 'pushline-reporter' });
const codebuild = new CodeBuildClient({});
const secretsManager = new SecretsManagerClient({});
const sns = new SNSClient({});
const codedeploy = new CodeDeployClient({});
const ecs = new ECSClient({});

let tokenCache: { value: Record<string, unknown>; readAt: number } | undefined;
const warnedProviders = new Set<ReportProvider>();

async function tokenFor(provider: ReportProvider): Promise<string | undefined> {
  if (!tokenCache || Date.now() - tokenCache.readAt >= settings.secretCacheMs) {
    tokenCache = { value: await readTokens(), readAt: Date.now() };
  }
  const token = tokenCache.value[provider];
  if (typeof token === 'string' && token.length > 0) return token;
  if (!warnedProviders.has(provider)) {
    warnedProviders.add(provider);
    logger.warn(`no ${provider} token in the provider token secret: builds are not reported to ${provider}`, {
      provider,
    });
  }
  return undefined;
}

async function readTokens(): Promise<Record<string, unknown>> {
  if (!settings.tokensSecretArn) return {};
  try {
    const result = await secretsManager.send(
      new GetSecretValueCommand({ SecretId: settings.tokensSecretArn }),
    );
    const parsed: unknown = JSON.parse(result.SecretString ?? '{}');
    return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
  } catch (err) {
    logger.warn('the provider token secret cannot be read or is not JSON: nothing is reported', {
      error: (err as Error).name,
    });
    return {};
  }
}

async function lookupBuild(buildId: string): Promise<BuildRecord | undefined> {
  const result = await codebuild.send(new BatchGetBuildsCommand({ ids: [buildId] }));
  const build = result.builds?.[0];
  const status = build?.buildStatus as BuildStatus | undefined;
  if (!build || !status || !BUILD_STATUSES.includes(status)) return undefined;
  return { buildStatus: status, environment: environmentMap(build.environment?.environmentVariables) };
}

/**
 * The ref of the newest of the project's last 100 builds that built `commit` (ListBuildsForProject
 * lists newest first, then BatchGetBuilds, which takes at most 100 IDs). A deployment follows its
 * build within minutes, so its build is among them.
 */
async function findPushedRef(projectName: string, commit: string): Promise<string | undefined> {
  const listed = await codebuild.send(
    new ListBuildsForProjectCommand({ projectName, sortOrder: 'DESCENDING' }),
  );
  const ids = (listed.ids ?? []).slice(0, 100);
  if (ids.length === 0) return undefined;
  const { builds } = await codebuild.send(new BatchGetBuildsCommand({ ids }));
  const ordered = ids.flatMap((id) => builds?.filter((b) => b.id === id) ?? []);
  for (const build of ordered) {
    const environment = environmentMap(build.environment?.environmentVariables);
    if (environment.COMMIT_SHA === commit && environment.GIT_REF) return environment.GIT_REF;
  }
  return undefined;
}

/**
 * GetDeployment, then the image of the task definition in its revision: for an ECS deployment the
 * revision is `AppSpecContent` (CodeDeploy API reference, RevisionLocation), whose AppSpec names
 * the task definition ARN CodePipeline registered from the build's taskdef.json and imageDetail.json.
 */
async function lookupDeployment(deploymentId: string): Promise<DeploymentRecord | undefined> {
  const { deploymentInfo } = await codedeploy.send(new GetDeploymentCommand({ deploymentId }));
  const status = deploymentInfo?.status;
  if (!status) return undefined;
  const appSpec = deploymentInfo.revision?.appSpecContent?.content ?? '';
  const taskDefinition = /arn:aws[\w-]*:ecs:[\w-]+:\d{12}:task-definition\/[\w-]+:\d+/.exec(appSpec)?.[0];
  if (!taskDefinition) return { status };
  const described = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition }));
  const image = described.taskDefinition?.containerDefinitions
    ?.map((c) => c.image ?? '')
    .find((i) => /:[0-9a-f]{40}$/.test(i));
  return image ? { status, image } : { status };
}

async function notify(notice: FailedBuildNotice): Promise<void> {
  await sns.send(
    new PublishCommand({
      TopicArn: settings.notificationTopicArn,
      Subject: notice.subject,
      Message: notice.message,
    }),
  );
  logger.info('failed build announced', { subject: notice.subject });
}

export async function handler(event: unknown, context: Context): Promise<void> {
  logger.resetKeys();
  logger.addContext(context);
  try {
    const deps = {
      routes,
      lookupBuild,
      lookupDeployment,
      findPushedRef,
      tokenFor,
      ...(settings.notificationTopicArn ? { notify } : {}),
    };
    const fromCodeDeploy = (event as { source?: unknown } | null)?.source === 'aws.codedeploy';
    const outcome = await (fromCodeDeploy
      ? reportDeploymentEvent(event, deps)
      : reportBuildEvent(event, deps));
    if (outcome.kind === 'ignored') logger.info('nothing to report', { reason: outcome.reason });
    else for (const report of outcome.reports) logger.info('build reported', { ...report });
  } catch (err) {
    if (err instanceof ProviderApiError && !err.retryable) {
      // A refused request (bad token, unknown repository) fails the same way every time.
      logger.error('build report refused', {
        provider: err.provider,
        status: err.status,
        error: err.message,
      });
      return;
    }
    logger.warn('build report failed; Lambda retries it', { error: (err as Error).message });
    throw err;
  }
}
