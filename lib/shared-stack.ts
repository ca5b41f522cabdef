import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as codebuild from 'aws-cdk-lib/aws-codebuild';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { expandCidrs } from './config/cidr-presets';
import { type FleetConfig, type PipelineConfig, sourceApiUrl } from './config/schema';
import { sourceHost } from './config/source-host';
import { ArtifactBucket } from './constructs/artifact-bucket';
import { BuildReporter, REPORT_PROVIDERS, type ReporterRoute } from './constructs/build-reporter';
import { GithubRedelivery } from './constructs/github-redelivery';
import { OperatorNotifications } from './constructs/operator-notifications';
import { PullThroughCache } from './constructs/pull-through-cache';
import { WebhookReceiver, type WebhookRoute } from './constructs/webhook-receiver';
import { buildProjectName, serviceStackNamePrefix } from './resource-names';

export interface SharedStackProps extends StackProps {
  /** The validated config. */
  readonly config: PipelineConfig;
}

/**
 * What every repository shares: the webhook receiver (API, function, queues, the webhook secret)
 * and the artifact bucket. One per installation.
 */
export class SharedStack extends Stack {
  public readonly artifacts: ArtifactBucket;
  public readonly webhooks: WebhookReceiver;
  /** The ECR pull-through cache rules, when the config has any. */
  public readonly pullThroughCache?: PullThroughCache;
  /** The scheduled GitHub redelivery, when `webhook.githubRedelivery` is set and GitHub repositories exist. */
  public readonly githubRedelivery?: GithubRedelivery;
  /** The platform team's topic: failed builds, failed deployments, the dead-letter alarm. */
  public readonly notifications: OperatorNotifications;
  /** Puts build results on the commits. */
  public readonly reporter: BuildReporter;
  /** The Git hosts' API tokens the reporter uses, `{"github", "gitlab", "backlog"}`, filled by the operator. */
  public readonly providerTokens: secretsmanager.ISecret;
  /** The reserved capacity fleets of `fleets`, by their name in the config; repositories name one in `build.fleet`. */
  public readonly fleets: ReadonlyMap<string, codebuild.IFleet>;

  constructor(scope: Construct, id: string, props: SharedStackProps) {
    super(scope, id, props);
    const { config } = props;
    this.artifacts = new ArtifactBucket(this, 'Artifacts');
    new CfnOutput(this, 'ArtifactBucketName', {
      value: this.artifacts.bucket.bucketName,
      description: 'Bucket the builds write deploy artifacts to',
    });

    // Registry-wide rules: one per prefix per account and region, so they live here, before any build.
    if (config.pullThroughCache?.length) {
      this.pullThroughCache = new PullThroughCache(this, 'PullThroughCache', {
        rules: config.pullThroughCache,
      });
    }

    // Fleets are defined once per installation and shared: a repository's project only points at one.
    this.fleets = buildFleets(this, config);

    this.webhooks = new WebhookReceiver(this, 'Webhooks', {
      routes: webhookRoutes(config),
      allowedCidrs: expandCidrs(config.webhook.allowedCidrs),
      rateLimit: config.webhook.throttle.rateLimit,
      burstLimit: config.webhook.throttle.burstLimit,
      logRetention: config.webhook.logRetentionDays as RetentionDays,
      maxBuildAttempts: config.webhook.maxBuildAttempts,
      cloudWatchRole: config.webhook.apiGatewayAccountRole,
    });
    const providers = [...new Set(config.repositories.map((r) => r.source.provider))].sort();
    for (const provider of providers) {
      new CfnOutput(this, `WebhookUrl${provider[0]?.toUpperCase()}${provider.slice(1)}`, {
        value: this.webhooks.urlFor(provider),
        description: `Webhook URL to register in ${provider}${provider === 'backlog' ? ' (append ?token=<backlog value of the secret>)' : ''}`,
      });
    }
    new CfnOutput(this, 'WebhookSecretName', {
      value: this.webhooks.secret.secretName,
      description: 'Secret holding the webhook token or HMAC secret of each provider',
    });
    new CfnOutput(this, 'WebhookSecretCommand', {
      value: `aws secretsmanager get-secret-value --secret-id ${this.webhooks.secret.secretName} --query SecretString --output text`,
      description: 'Prints the webhook secret (JSON keyed by provider)',
    });
    new CfnOutput(this, 'BuildRetryDeadLetterQueueUrl', {
      value: this.webhooks.deadLetterQueue.queueUrl,
      description: 'Builds that could not be started after every retry; see README "Webhooks" to redrive',
    });

    this.notifications = new OperatorNotifications(this, 'Notifications', {
      emails: [config.notifications?.email ?? []].flat(),
      ...(config.notifications?.slack ? { slack: config.notifications.slack } : {}),
      slackConfigurationName: `${config.name}-notifications`,
    });
    this.notifications.notifyOnAlarm(this.webhooks.deadLetterAlarm);
    this.notifications.notifyOnAlarm(this.webhooks.buildNotKeptAlarm);
    // Service stacks are named from the repository (resource-names.ts) and CloudFormation starts
    // an unnamed CodeDeploy application's name with its stack's name.
    this.notifications.notifyFailedDeployments(serviceStackNamePrefix(config.name));
    this.reporter = new BuildReporter(this, 'Reporter', {
      routes: reporterRoutes(config),
      notificationTopic: this.notifications.topic,
      deploymentApplicationPrefix: serviceStackNamePrefix(config.name),
      logRetention: config.webhook.logRetentionDays as RetentionDays,
    });
    this.providerTokens = this.reporter.tokens;
    this.notifications.notifyOnAlarm(this.reporter.failedReportsAlarm);
    new CfnOutput(this, 'NotificationTopicArn', {
      value: this.notifications.topic.topicArn,
      description: 'Failed builds, failed deployments and the dead-letter alarm',
    });
    new CfnOutput(this, 'ProviderTokensSecretName', {
      value: this.reporter.tokens.secretName,
      description:
        'Put {"github": token, "gitlab": token, "backlog": API key} here to see build results on commits; see README "Build results"',
    });

    const githubRepositories = config.repositories
      .filter((r) => r.source.provider === 'github')
      .map((r) => r.source.repository);
    const redelivery = config.webhook.githubRedelivery;
    if (redelivery && githubRepositories.length > 0) {
      this.githubRedelivery = new GithubRedelivery(this, 'GithubRedelivery', {
        repositories: [...new Set(githubRepositories)],
        webhookUrl: this.webhooks.urlFor('github'),
        interval: Duration.minutes(redelivery.intervalMinutes),
        lookback: Duration.minutes(Math.round(redelivery.lookbackHours * 60)),
        maxAttempts: redelivery.maxAttempts,
        logRetention: config.webhook.logRetentionDays as RetentionDays,
        tokenSecret: this.providerTokens,
      });
    }
  }
}

const FLEET_COMPUTE_TYPES: Record<FleetConfig['computeType'], codebuild.FleetComputeType> = {
  small: codebuild.FleetComputeType.SMALL,
  medium: codebuild.FleetComputeType.MEDIUM,
  large: codebuild.FleetComputeType.LARGE,
  xlarge: codebuild.FleetComputeType.X_LARGE,
  '2xlarge': codebuild.FleetComputeType.X2_LARGE,
};

/**
 * One CodeBuild reserved capacity fleet per entry of `fleets`, named `<installation>-<name>`. The
 * container environment types match the managed images the build projects use (ImageBuildProject);
 * no VPC, so the fleet needs no service role (CDK creates one only for a VPC).
 */
function buildFleets(stack: Stack, config: PipelineConfig): Map<string, codebuild.IFleet> {
  const fleets = new Map<string, codebuild.IFleet>();
  for (const [name, fleet] of Object.entries(config.fleets ?? {})) {
    fleets.set(
      name,
      new codebuild.Fleet(stack, `Fleet-${name}`, {
        fleetName: `${config.name}-${name}`,
        baseCapacity: fleet.baseCapacity,
        computeType: FLEET_COMPUTE_TYPES[fleet.computeType],
        environmentType:
          fleet.arch === 'arm64'
            ? codebuild.EnvironmentType.ARM_CONTAINER
            : codebuild.EnvironmentType.LINUX_CONTAINER,
        overflowBehavior:
          fleet.overflow === 'on-demand'
            ? codebuild.FleetOverflowBehavior.ON_DEMAND
            : codebuild.FleetOverflowBehavior.QUEUE,
      }),
    );
  }
  return fleets;
}

/** The webhook function's routing table, derived from the config (never kept by hand). */
export function webhookRoutes(config: PipelineConfig): WebhookRoute[] {
  return config.repositories.map((repo) => ({
    name: repo.name,
    projectName: buildProjectName(config.name, repo),
    provider: repo.source.provider,
    host: sourceHost(repo.source),
    repository: repo.source.repository,
    cloneUrl: repo.source.cloneUrl,
    branches: repo.branches,
    tags: repo.tags ?? [],
    ...(repo.paths ? { paths: repo.paths } : {}),
  }));
}

/** The reporter's table, derived from the config: every repository, and where its results go. */
export function reporterRoutes(config: PipelineConfig): ReporterRoute[] {
  return config.repositories.flatMap((repo) => {
    const apiUrl = sourceApiUrl(repo.source);
    const provider = REPORT_PROVIDERS.find((p) => p === repo.source.provider);
    // A host pushline cannot report to yet still builds; it is just not told.
    if (apiUrl === undefined || provider === undefined) return [];
    return [
      {
        name: repo.name,
        projectName: buildProjectName(config.name, repo),
        provider,
        repository: repo.source.repository,
        apiUrl,
        report: repo.report,
      },
    ];
  });
}
