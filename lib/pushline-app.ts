import type { App } from 'aws-cdk-lib';
import { Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { PipelineConfig } from './config/schema';
import { RepositoryStack } from './repository-stack';
import { repositoryStackName, serviceStackName } from './resource-names';
import { ServiceStack } from './service-stack';
import { SharedStack } from './shared-stack';

export interface PushlineStacks {
  readonly shared: SharedStack;
  readonly repositories: readonly RepositoryStack[];
  /** One per repository with a `deploy` section, in config order. */
  readonly services: readonly ServiceStack[];
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
        description: `pushline: registry and image build of ${repository.name}`,
      }),
  );
  const services = config.repositories.flatMap((repository, i) => {
    const repositoryStack = repositories[i];
    if (repository.deploy === undefined || repositoryStack === undefined) return [];
    return [
      new ServiceStack(app, serviceStackName(config.name, repository), {
        env,
        config,
        repository,
        artifactBucket: shared.artifacts.bucket,
        imageRepository: repositoryStack.imageRepository.repository,
        description: `pushline: ECS service and Blue/Green deploy pipeline of ${repository.name}`,
      }),
    ];
  });
  Tags.of(app).add('pushline:installation', config.name);
  if (options.nag ?? true) Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { shared, repositories, services };
}
