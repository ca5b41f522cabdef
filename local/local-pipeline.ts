import { spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { expandCidrs } from '../lib/config/cidr-presets';
import type { PipelineConfig, Provider } from '../lib/config/schema';
import {
  buildProjectName,
  pipelineStackName,
  repositoryStackName,
  serviceStackName,
} from '../lib/resource-names';
import { type LocalApiGateway, type ProxyHandler, startLocalApiGateway } from './api-gateway';
import { type LocalAwsEndpoints, startLocalAwsEndpoints } from './aws-endpoints';
import {
  findBundledFunction,
  loadBundledHandler,
  REPORTER_FUNCTION,
  RETRY_FUNCTION,
  WEBHOOK_FUNCTION,
} from './bundled-function';
import {
  buildProjectVariables,
  type CfnTemplate,
  LOCAL_ACCOUNT,
  LOCAL_REGION,
  maxReceiveCount,
  parameterValue,
  readTemplate,
} from './cloud-assembly';
import {
  type DockerDaemon,
  type RegistryDaemon,
  startDockerd,
  startRegistry,
  stopAll,
  TOOL_PATHS,
} from './daemons';
import type { Approver } from './environment-walk';
import { type LocalGitHostApi, type RecordedReport, startLocalGitHostApi } from './git-host-api';
import {
  type BuildProgress,
  type BuildStateChangeEvent,
  LocalCodeBuild,
  type LocalCodeBuildOptions,
  type LocalProject,
} from './local-codebuild';
import { LocalCodePipeline } from './local-codepipeline';
import { LocalRetryQueue, type QueueHandler, type RetryEvent } from './local-retry-queue';
import {
  type LocalNotificationTopic,
  type PublishedMessage,
  startLocalNotificationTopic,
} from './notification-topic';

export const ROOT = resolve(__dirname, '..');
const BUILDSPEC_DIR = join(ROOT, 'buildspec');

/** The id under which the local Secrets Manager holds the webhook secret. */
const WEBHOOK_SECRET_ID = 'pushline-local/webhook-secret';
/** The id of the reporter's provider token secret; the local Git host stand-in takes any token. */
const PROVIDER_TOKENS_ID = 'pushline-local/provider-tokens';
const LOCAL_TOKENS = {
  github: 'local-github-token',
  gitlab: 'local-gitlab-token',
  backlog: 'local-backlog-key',
};

export interface LocalPipelineOptions {
  readonly config: PipelineConfig;
  readonly configPath: string;
  /** Scratch space: the synthesized assembly, artifacts, build work directories. */
  readonly workDir: string;
  /** The private deploy key every repository's build uses to fetch. */
  readonly sshPrivateKey: string;
  /** Further secrets the builds read (`docker.secrets`), by secret name. */
  readonly secrets?: Readonly<Record<string, string>>;
  readonly onProgress?: (progress: BuildProgress) => void;
  readonly onBuildLog?: (projectName: string, line: string) => void;
  /** Holds a build back before it runs (see `LocalCodeBuildOptions.holdBuild`). */
  readonly holdBuild?: LocalCodeBuildOptions['holdBuild'];
  /** Something a local run cannot do as AWS would, and how to fix it. */
  readonly onWarning?: (message: string) => void;
  /** What happened to each build the webhook had to queue (StartBuild throttled or failing). */
  readonly onRetry?: (event: RetryEvent) => void;
  readonly onWebhook?: (summary: { provider: string; status: number; body: string; ms: number }) => void;
  /** Each commit status or pull request comment the reporter sends to the local Git host stand-in. */
  readonly onReport?: (report: RecordedReport) => void;
  /** Each message published to the notification topics (failed builds, waiting approvals). */
  readonly onNotification?: (message: PublishedMessage) => void;
  /**
   * Decides the manual approvals of the deploy walks (see `approvalGate`).
   * @default every approval is refused, so a walk stops before an environment that needs one
   */
  readonly approve?: Approver;
  /** Each line of a deploy walk: `deploy <repository> <environment>: deployed <image> …`. */
  readonly onDeploy?: (line: string) => void;
  /**
   * Receives, before anything starts, the function that stops whatever has started so far, so that
   * Ctrl-C during start-up (synth takes seconds) leaves nothing running.
   */
  readonly registerStop?: (stop: () => Promise<void>) => void;
}

/** A running local pipeline: the parts, and what a caller needs to use them. */
export interface LocalPipeline {
  readonly webhookUrl: (provider: Provider) => string;
  readonly webhookSecret: Readonly<Record<Provider, string>>;
  readonly registry: RegistryDaemon;
  readonly endpoints: LocalAwsEndpoints;
  readonly codebuild: LocalCodeBuild;
  /** The retry queue with the bundled retry consumer behind it. */
  readonly retryQueue: LocalRetryQueue;
  readonly artifactDir: string;
  /** Milliseconds spent inside the webhook function, per request. */
  readonly webhookDurations: number[];
  /** The stand-in for the GitHub, GitLab and Backlog APIs every repository reports to. */
  readonly gitHost: LocalGitHostApi;
  /** The stand-in for the notification topic. */
  readonly notifications: LocalNotificationTopic;
  /** The stand-in for the deploy pipelines: walks each written artifact through its environments. */
  readonly codepipeline: LocalCodePipeline;
  /** Resolves when the reporter has handled every build state change so far. */
  reported(): Promise<void>;
  stop(): Promise<void>;
}

/** Synthesizes the config into `outdir` with the project's own CDK CLI, as `npx cdk synth` would. */
export function synthesize(configPath: string, outdir: string): void {
  const result = spawnSync('npx', ['cdk', 'synth', '--quiet', '-c', `config=${configPath}`, '-o', outdir], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (result.status !== 0) {
    throw new Error(`cdk synth failed:\n${result.stderr || result.stdout}`);
  }
}

/**
 * Starts the whole pipeline on this machine: the synthesized webhook function behind a local API
 * Gateway, local CodeBuild / Secrets Manager / SQS / DynamoDB endpoints reached through the SDK's
 * `AWS_ENDPOINT_URL_*` variables, a real OCI registry for ECR and a real Docker engine for builds.
 */
export async function startLocalPipeline(options: LocalPipelineOptions): Promise<LocalPipeline> {
  const { config } = options;
  const assemblyDir = join(options.workDir, 'cdk.out');
  const artifactDir = join(options.workDir, 'artifacts');
  mkdirSync(artifactDir, { recursive: true });

  const webhookSecret: Record<Provider, string> = {
    backlog: randomBytes(24).toString('hex'),
    github: randomBytes(32).toString('hex'),
    gitlab: randomBytes(24).toString('hex'),
    bitbucket: randomBytes(32).toString('hex'),
    gitea: randomBytes(32).toString('hex'),
  };

  let registry: RegistryDaemon | undefined;
  let dockerd: DockerDaemon | undefined;
  let endpoints: LocalAwsEndpoints | undefined;
  let api: LocalApiGateway | undefined;
  let retryQueue: LocalRetryQueue | undefined;
  let gitHost: LocalGitHostApi | undefined;
  let notifications: LocalNotificationTopic | undefined;
  let stopping: Promise<void> | undefined;
  // Idempotent: a demo stops its world, and Ctrl-C or the CLI's exit may stop it again.
  const stop = () => {
    stopping ??= (async () => {
      await api?.close();
      retryQueue?.stop();
      await endpoints?.close();
      await gitHost?.close();
      await notifications?.close();
      await stopAll([dockerd, registry]);
    })();
    return stopping;
  };
  options.registerStop?.(stop);
  // Set once the reporter is loaded; CodeBuild only emits state changes after that.
  let report: (event: BuildStateChangeEvent) => void = () => undefined;
  let reported: () => Promise<void> = () => Promise.resolve();
  gitHost = await startLocalGitHostApi({ onReport: options.onReport });
  notifications = await startLocalNotificationTopic(options.onNotification);
  // Build results go to the local stand-in: the same config, every source.apiUrl pointed at it.
  const localConfigPath = join(options.workDir, 'pipeline.local.yaml');
  writeFileSync(localConfigPath, withApiUrls(readFileSync(options.configPath, 'utf8'), config, gitHost));
  synthesize(localConfigPath, assemblyDir);
  try {
    registry = await startRegistry();
    dockerd = await startDockerd();
    const codepipeline = new LocalCodePipeline({
      installation: config.name,
      repositories: config.repositories,
      artifactDir,
      deploymentsDir: join(options.workDir, 'deployments'),
      approve:
        options.approve ??
        (async () => ({
          approved: false,
          reason: 'this run grants no approvals (npm run local -- --approve)',
        })),
      snsEndpoint: notifications.url,
      print: options.onDeploy ?? (() => undefined),
    });
    const repositoryOfProject = new Map(
      config.repositories.map((r) => [buildProjectName(config.name, r), r]),
    );
    const projects = config.repositories.map((repo) =>
      localProject(
        readTemplate(assemblyDir, repositoryStackName(config.name, repo)),
        serviceTemplate(assemblyDir, config, repo),
        buildProjectName(config.name, repo),
        {
          IMAGE_REPOSITORY_URI: `${(registry as RegistryDaemon).address}/${repo.name}`,
          ARTIFACT_DIR: artifactDir,
          REGISTRY_LOGIN: 'skip',
          REGISTRY_INSECURE: 'true',
          DOCKER_CLI: TOOL_PATHS.docker,
          DOCKER_HOST: (dockerd as DockerDaemon).host,
          DOCKER_BUILD_NETWORK: 'host',
        },
        { sshPrivateKey: options.sshPrivateKey, secrets: options.secrets ?? {} },
        options.onWarning ?? (() => undefined),
      ),
    );
    const codebuild = new LocalCodeBuild({
      buildspecPath: join(BUILDSPEC_DIR, 'buildspec.yml'),
      sourceDir: BUILDSPEC_DIR,
      projects,
      workRoot: join(options.workDir, 'builds'),
      onProgress: (progress) => {
        options.onProgress?.(progress);
        const repository = repositoryOfProject.get(progress.projectName);
        // The artifact's creation starts the deploy pipeline (an EventBridge rule on AWS).
        if (progress.stage === 'done' && repository)
          codepipeline.buildSucceeded(repository, progress.commitSha);
      },
      onLog: options.onBuildLog,
      holdBuild: options.holdBuild,
      onStateChange: (event) => report(event),
      account: LOCAL_ACCOUNT,
      region: LOCAL_REGION,
    });
    endpoints = await startLocalAwsEndpoints({
      secrets: {
        [WEBHOOK_SECRET_ID]: JSON.stringify(webhookSecret),
        [PROVIDER_TOKENS_ID]: JSON.stringify(LOCAL_TOKENS),
      },
      onStartBuild: codebuild.start,
    });
    const refs = {
      'AWS::SecretsManager::Secret': WEBHOOK_SECRET_ID,
      'AWS::SQS::Queue': endpoints.queueUrl,
      'AWS::DynamoDB::Table': `${config.name}-local-deliveries`,
    };
    // Read once: both functions and the retry queue's redrive policy come from this template.
    const sharedStackName = `${config.name}-shared`;
    const sharedStack = { name: sharedStackName, template: readTemplate(assemblyDir, sharedStackName) };
    const functionEnv = {
      ...endpoints.env,
      POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'WARN',
    };
    const handler = loadBundledHandler(
      findBundledFunction(assemblyDir, sharedStack, WEBHOOK_FUNCTION, refs),
      functionEnv,
    );
    const retryHandler = loadBundledHandler<QueueHandler>(
      findBundledFunction(assemblyDir, sharedStack, RETRY_FUNCTION, refs),
      functionEnv,
    );
    const reporter = loadBundledHandler<(event: unknown, context: unknown) => Promise<void>>(
      findBundledFunction(assemblyDir, sharedStack, REPORTER_FUNCTION, {
        'AWS::SecretsManager::Secret': PROVIDER_TOKENS_ID,
        'AWS::SNS::Topic': `arn:aws:sns:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${config.name}-notifications`,
      }),
      { ...functionEnv, ...notifications.env },
    );
    // Lambda invokes the reporter asynchronously; locally one after the other, and a failed report
    // is logged rather than retried (the stand-in does not fail).
    let reporting = Promise.resolve();
    report = (event) => {
      reporting = reporting.then(() =>
        reporter(event, lambdaContext(`${config.name}-reporter`, 60_000)).catch((err: unknown) =>
          options.onWarning?.(`reporter: ${(err as Error).message}`),
        ),
      );
    };
    reported = () => reporting;
    retryQueue = new LocalRetryQueue({
      endpoints,
      handler: (event) => retryHandler(event, lambdaContext(`${config.name}-build-retry`, 60_000)),
      maxReceiveCount: maxReceiveCount(sharedStack.template) ?? config.webhook.maxBuildAttempts,
      onEvent: options.onRetry,
    });
    const webhookDurations: number[] = [];
    const timed: ProxyHandler = async (event) => {
      const started = performance.now();
      try {
        // 10 s: the webhook function's Timeout in the template (WebhookReceiver).
        return await handler(event, lambdaContext(`${config.name}-webhook`, 10_000));
      } finally {
        webhookDurations.push(performance.now() - started);
      }
    };
    api = await startLocalApiGateway({
      handler: timed,
      // Loopback joins the configured allowlist: the local caller is this machine.
      allowedCidrs: [...expandCidrs(config.webhook.allowedCidrs), '127.0.0.1/32'],
      onResponse: (summary) => options.onWebhook?.({ ...summary, ms: webhookDurations.at(-1) ?? 0 }),
    });
    const gateway = api;
    return {
      webhookUrl: (provider) => `${gateway.url}/webhooks/${provider}`,
      webhookSecret,
      registry,
      endpoints,
      codebuild,
      retryQueue,
      artifactDir,
      webhookDurations,
      gitHost,
      notifications,
      codepipeline,
      reported: () => reported(),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The config text with every repository's `source.apiUrl` pointed at the local Git host stand-in. */
function withApiUrls(text: string, config: PipelineConfig, gitHost: LocalGitHostApi): string {
  const doc = parseDocument(text);
  const apiUrls: Partial<Record<string, string>> = gitHost.apiUrls;
  config.repositories.forEach((repo, i) => {
    // Hosts the reporter does not report to (Bitbucket, Gitea) keep their config as it is.
    const apiUrl = apiUrls[repo.source.provider];
    if (apiUrl) doc.setIn(['repositories', i, 'source', 'apiUrl'], apiUrl);
  });
  return doc.toString();
}

/** The context object Lambda passes a handler (Powertools reads the remaining time from it). */
function lambdaContext(functionName: string, timeoutMs: number): Record<string, unknown> {
  const deadline = Date.now() + timeoutMs;
  return {
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

function serviceTemplate(
  assemblyDir: string,
  config: PipelineConfig,
  repo: PipelineConfig['repositories'][number],
): CfnTemplate | undefined {
  if (!repo.deploy) return undefined;
  if (!repo.deploy.environments) return readTemplate(assemblyDir, serviceStackName(config.name, repo));
  // With environments the templates are in each environment's stack, or the pipeline's for another account.
  const stackNames = [
    ...repo.deploy.environments.map((e) => serviceStackName(config.name, repo, e.name)),
    pipelineStackName(config.name, repo),
  ];
  return {
    Resources: Object.fromEntries(
      stackNames.flatMap((name) =>
        Object.entries(readTemplate(assemblyDir, name).Resources).map(([id, r]) => [`${name}/${id}`, r]),
      ),
    ),
  };
}

/**
 * The project's environment as the template declares it, with secrets and parameters resolved the
 * way CodeBuild resolves them at build start, and the AWS-only values replaced by local parts.
 */
function localProject(
  repoTemplate: CfnTemplate,
  serviceTemplateOrNone: CfnTemplate | undefined,
  projectName: string,
  localValues: Readonly<Record<string, string>>,
  secrets: { sshPrivateKey: string; secrets: Readonly<Record<string, string>> },
  onWarning: (message: string) => void,
): LocalProject {
  const environment: Record<string, string> = {};
  for (const variable of buildProjectVariables(repoTemplate, projectName)) {
    if (variable.type === 'PLAINTEXT') {
      environment[variable.name] = variable.value;
    } else if (variable.type === 'SECRETS_MANAGER') {
      const value = variable.name === 'GIT_SSH_KEY' ? secrets.sshPrivateKey : secrets.secrets[variable.value];
      if (value === undefined) {
        // As in AWS, the build then fails; a local run says how to give the value instead.
        onWarning(
          `${projectName} reads secret ${variable.value} into ${variable.name}: give it with --secret ${variable.value}=VALUE`,
        );
      }
      environment[variable.name] = value ?? '';
    } else {
      const value = serviceTemplateOrNone ? parameterValue(serviceTemplateOrNone, variable.value) : undefined;
      if (value === undefined)
        throw new Error(`${projectName} reads parameter ${variable.value}, which no stack creates`);
      environment[variable.name] = value;
    }
  }
  delete environment.ARTIFACT_BUCKET;
  return { projectName, environment: { ...environment, ...localValues } };
}
