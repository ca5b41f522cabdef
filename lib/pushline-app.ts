import type { App } from 'aws-cdk-lib';
import { Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { type DeployEnvironment, deployEnvironments, type PipelineConfig } from './config/schema';
import { PipelineStack } from './pipeline-stack';
import { RepositoryStack } from './repository-stack';
import { pipelineStackName, repositoryStackName, serviceStackName } from './resource-names';
import { ServiceStack } from './service-stack';
import { SharedStack } from './shared-stack';

export interface PushlineStacks {
  readonly shared: SharedStack;
  readonly repositories: readonly RepositoryStack[];
  /**
   * One per repository with a `deploy` section, in config order; one per environment of a
   * repository with `deploy.environments`.
   */
  readonly services: readonly ServiceStack[];
  /** The deploy pipelines of repositories with `deploy.environments`, in config order. */
  readonly pipelines: readonly PipelineStack[];
}

export interface PushlineAppOptions {
  /**
   * Apply cdk-nag's AwsSolutions checks to every stack.
   * @default true
   */
  readonly nag?: boolean;
}

/** Creates every stack of an installation from a validated config. */
export function createPushlineStacks(
  app: App,
  config: PipelineConfig,
  options: PushlineAppOptions = {},
): PushlineStacks {
  const env = config.env ? { account: config.env.account, region: config.env.region } : undefined;
  const shared = new SharedStack(app, `${config.name}-shared`, {
    env,
    config,
    description: 'pushline: webhook receiver and artifact bucket shared by every repository',
  });
  const repositories = config.repositories.map(
    (repository) =>
      new RepositoryStack(app, repositoryStackName(config.name, repository), {
        env,
        config,
        repository,
        artifactBucket: shared.artifacts.bucket,
        fleet: repository.build.fleet === undefined ? undefined : shared.fleets.get(repository.build.fleet),
        description: `pushline: registry and image build of ${repository.name}`,
      }),
  );
  const services: ServiceStack[] = [];
  const pipelines: PipelineStack[] = [];
  config.repositories.forEach((repository, i) => {
    const repositoryStack = repositories[i];
    if (repository.deploy === undefined || repositoryStack === undefined) return;
    const common = {
      config,
      repository,
      artifactBucket: shared.artifacts.bucket,
      imageRepository: repositoryStack.imageRepository.repository,
    };
    if (repository.deploy.environments === undefined) {
      services.push(
        new ServiceStack(app, serviceStackName(config.name, repository), {
          env,
          ...common,
          description: `pushline: ECS service and Blue/Green deploy pipeline of ${repository.name}`,
        }),
      );
      return;
    }
    const environmentStacks = deployEnvironments(repository.deploy).map(
      (deployEnvironment) =>
        new ServiceStack(app, serviceStackName(config.name, repository, deployEnvironment.name), {
          env: environmentEnv(env, deployEnvironment),
          ...common,
          deployEnvironment,
          pipelineAccount: env?.account,
          description: `pushline: ECS service of ${repository.name} in ${deployEnvironment.name}`,
        }),
    );
    services.push(...environmentStacks);
    pipelines.push(
      new PipelineStack(app, pipelineStackName(config.name, repository), {
        env,
        repository,
        artifactBucket: shared.artifacts.bucket,
        services: environmentStacks,
        description: `pushline: deploy pipeline of ${repository.name} through ${environmentStacks.map((s) => s.deployEnvironment.name).join(', ')}`,
      }),
    );
  });
  Tags.of(app).add('pushline:installation', config.name);
  if (options.nag ?? true) Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { shared, repositories, services, pipelines };
}

/** An environment's stack target: its own account and region where it names them, else the installation's. */
function environmentEnv(
  installation: { account: string; region: string } | undefined,
  environment: DeployEnvironment,
): { account?: string; region?: string } | undefined {
  if (environment.account === undefined && environment.region === undefined) return installation;
  return {
    account: environment.account ?? installation?.account,
    region: environment.region ?? installation?.region,
  };
}
