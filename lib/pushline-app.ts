import type { App } from 'aws-cdk-lib';
import { Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import {
  DEFAULT_NEW_VPC,
  type DeployConfig,
  type DeployEnvironment,
  deployEnvironments,
  type PipelineConfig,
  type RepositoryConfig,
} from './config/schema';
import type { ServiceNetwork } from './constructs/service-network';
import { NetworkStack } from './network-stack';
import { PipelineRegionStack } from './pipeline-region-stack';
import { PipelineStack } from './pipeline-stack';
import { RepositoryStack } from './repository-stack';
import {
  networkStackName,
  pipelineRegionStackName,
  pipelineStackName,
  repositoryStackName,
  serviceStackName,
} from './resource-names';
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
  /**
   * The VPCs the services share (`network.shared`): one per account, region and VPC shape that a
   * service without `deploy.vpc.vpcId` deploys to.
   */
  readonly networks: readonly NetworkStack[];
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
  const networks = new Map<string, NetworkStack>();
  /** The shared network of a service in `target` with these settings; none for an existing VPC or without sharing. */
  const networkFor = (
    target: { account?: string; region?: string } | undefined,
    vpc: DeployConfig['vpc'],
  ): ServiceNetwork | undefined => {
    if (!config.network.shared) return undefined;
    const shape = vpc ?? DEFAULT_NEW_VPC;
    if ('vpcId' in shape) return undefined;
    const elsewhere = {
      account: target?.account === env?.account ? undefined : target?.account,
      region: target?.region === env?.region ? undefined : target?.region,
    };
    const name = networkStackName(config.name, elsewhere, shape);
    let stack = networks.get(name);
    if (stack === undefined) {
      stack = new NetworkStack(app, name, {
        env: target,
        maxAzs: shape.maxAzs,
        natGateways: shape.natGateways,
        description: `pushline: the VPC the services of ${config.name} share${elsewhere.account || elsewhere.region ? ` in ${[elsewhere.account, elsewhere.region].filter(Boolean).join(' ')}` : ''}`,
      });
      networks.set(name, stack);
    }
    return stack.network;
  };
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
          network: networkFor(env, repository.deploy.vpc),
          description: `pushline: ECS service and Blue/Green deploy pipeline of ${repository.name}`,
        }),
      );
      return;
    }
    const environmentStacks = deployEnvironments(repository.deploy).map((deployEnvironment) => {
      const target = environmentEnv(env, deployEnvironment);
      return new ServiceStack(app, serviceStackName(config.name, repository, deployEnvironment.name), {
        env: target,
        ...common,
        network: networkFor(target, deployEnvironment.deploy.vpc),
        deployEnvironment,
        pipelineAccount: env?.account,
        pipelineRegion: env?.region,
        description: `pushline: ECS service of ${repository.name} in ${deployEnvironment.name}`,
      });
    });
    services.push(...environmentStacks);
    const regionStacks = env
      ? pipelineRegionStacks(app, config.name, repository, env, environmentStacks)
      : [];
    const pipeline = new PipelineStack(app, pipelineStackName(config.name, repository), {
      env,
      repository,
      artifactBucket: shared.artifacts.bucket,
      services: environmentStacks,
      regionalArtifactStores: Object.fromEntries(
        regionStacks.map((stack) => [stack.region, stack.regionalArtifactStore]),
      ),
      description: `pushline: deploy pipeline of ${repository.name} through ${environmentStacks.map((s) => s.deployEnvironment.name).join(', ')}`,
    });
    for (const stack of regionStacks) {
      pipeline.addStackDependency(stack, 'the pipeline copies artifacts into its store in that region');
    }
    pipelines.push(pipeline);
  });
  Tags.of(app).add('pushline:installation', config.name);
  if (options.nag ?? true) Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { shared, repositories, services, pipelines, networks: [...networks.values()] };
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

/**
 * One artifact store per other region the repository's services run in, in the pipeline's account.
 * Each deploys after that region's services: its bucket and key policies name their deploy roles.
 */
function pipelineRegionStacks(
  app: App,
  prefix: string,
  repository: RepositoryConfig,
  installation: { account: string; region: string },
  services: readonly ServiceStack[],
): PipelineRegionStack[] {
  const stacks: PipelineRegionStack[] = [];
  for (const region of new Set(services.map((s) => s.region))) {
    if (region === installation.region) continue;
    const here = services.filter((s) => s.region === region);
    const stack = new PipelineRegionStack(app, pipelineRegionStackName(prefix, repository, region), {
      env: { account: installation.account, region },
      crossAccount: here.some((s) => s.crossAccount),
      description: `pushline: artifact store in ${region} of the deploy pipeline of ${repository.name}`,
    });
    for (const service of here) {
      if (service.pipelineDeployRole) stack.grantRead(service.pipelineDeployRole);
      stack.addStackDependency(service, 'its policies name the service’s deploy role');
    }
    stacks.push(stack);
  }
  return stacks;
}
