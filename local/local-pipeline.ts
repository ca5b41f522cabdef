import { spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
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
import { type BuildProgress, LocalCodeBuild, type LocalProject } from './local-codebuild';
import { LocalRetryQueue, type QueueHandler, type RetryEvent } from './local-retry-queue';

export const ROOT = resolve(__dirname, '..');
const BUILDSPEC_DIR = join(ROOT, 'buildspec');

/** The id under which the local Secrets Manager holds the webhook secret. */
const WEBHOOK_SECRET_ID = 'pushline-local/webhook-secret';

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
  /** Something a local run cannot do as AWS would, and how to fix it. */
  readonly onWarning?: (message: string) => void;
  /** What happened to each build the webhook had to queue (StartBuild throttled or failing). */
  readonly onRetry?: (event: RetryEvent) => void;
  readonly onWebhook?: (summary: { provider: string; status: number; body: string; ms: number }) => void;
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
  };

  let registry: RegistryDaemon | undefined;
  let dockerd: DockerDaemon | undefined;
  let endpoints: LocalAwsEndpoints | undefined;
  let api: LocalApiGateway | undefined;
  let retryQueue: LocalRetryQueue | undefined;
  let stopping: Promise<void> | undefined;
  // Idempotent: a demo stops its world, and Ctrl-C or the CLI's exit may stop it again.
  const stop = () => {
    stopping ??= (async () => {
      await api?.close();
      retryQueue?.stop();
      await endpoints?.close();
      await stopAll([dockerd, registry]);
    })();
    return stopping;
  };
  options.registerStop?.(stop);
  synthesize(options.configPath, assemblyDir);
  try {
    registry = await startRegistry();
    dockerd = await startDockerd();
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
      onProgress: options.onProgress,
      onLog: options.onBuildLog,
    });
    endpoints = await startLocalAwsEndpoints({
      secrets: { [WEBHOOK_SECRET_ID]: JSON.stringify(webhookSecret) },
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
        return await handler(event, lambdaContext(`${config.name}-webhook`, 29_000));
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
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
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
