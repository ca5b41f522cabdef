import { DEFAULT_NEW_VPC, projectSuffix, type RepositoryConfig } from './config/schema';

/**
 * Names that cross stack boundaries. They are derived, never looked up, so that the shared stack
 * can grant on a build project that a repository stack creates without a cross-stack reference.
 */

/** The CodeBuild project that builds one configured repository. */
export function buildProjectName(prefix: string, repo: Pick<RepositoryConfig, 'name'>): string {
  return `${prefix}-${projectSuffix(repo.name)}`;
}

/** The stack that holds one repository's registry and build project. */
export function repositoryStackName(prefix: string, repo: Pick<RepositoryConfig, 'name'>): string {
  return `${prefix}-repo-${projectSuffix(repo.name)}`;
}

/**
 * The stack that holds one repository's ECS service (and, without environments, its deploy
 * pipeline); with `deploy.environments`, one per environment.
 */
export function serviceStackName(
  prefix: string,
  repo: Pick<RepositoryConfig, 'name'>,
  environment?: string,
): string {
  const base = `${prefix}-service-${projectSuffix(repo.name)}`;
  return environment === undefined ? base : `${base}-${environment}`;
}

/** The stack that holds the deploy pipeline of a repository with `deploy.environments`. */
export function pipelineStackName(prefix: string, repo: Pick<RepositoryConfig, 'name'>): string {
  return `${prefix}-pipeline-${projectSuffix(repo.name)}`;
}

/**
 * The stack of the VPC the services share in one account and region (`network.shared`):
 * `<name>-network`, followed by the account and the region where they are not the installation's,
 * and by the shape where it is not the default 2 zones with 1 NAT gateway. At most 31 + 8 + 13 +
 * 15 + 10 characters, so always within CloudFormation's 128 (no config check needed).
 */
export function networkStackName(
  prefix: string,
  target: { account?: string; region?: string },
  shape: { maxAzs: number; natGateways: number },
): string {
  const parts = [`${prefix}-network`];
  if (target.account !== undefined) parts.push(target.account);
  if (target.region !== undefined) parts.push(target.region);
  if (shape.maxAzs !== DEFAULT_NEW_VPC.maxAzs || shape.natGateways !== DEFAULT_NEW_VPC.natGateways)
    parts.push(`${shape.maxAzs}az-${shape.natGateways}nat`);
  return parts.join('-');
}

/**
 * The stack that holds a deploy pipeline's artifact store in another region (in the pipeline's
 * account), where an environment of the repository runs.
 */
export function pipelineRegionStackName(
  prefix: string,
  repo: Pick<RepositoryConfig, 'name'>,
  region: string,
): string {
  return `${pipelineStackName(prefix, repo)}-${region}`;
}

/** The stable key of a repository's deploy artifact in the artifact bucket. */
export function artifactKey(repo: Pick<RepositoryConfig, 'name'>): string {
  return `artifacts/${projectSuffix(repo.name)}/deploy.zip`;
}

/**
 * The SSM parameters through which a repository's service stack hands the build its deploy
 * templates (`taskdef.json` with the `<IMAGE1_NAME>` placeholder, and `appspec.yaml`). The service
 * stack writes them from the same task definition it deploys, so the two never drift apart; the
 * build project reads them as PARAMETER_STORE environment variables.
 */
export function deployTemplateParameterName(
  prefix: string,
  repo: Pick<RepositoryConfig, 'name'>,
  template: 'taskdef' | 'appspec',
  environment?: string,
): string {
  const base = `/${prefix}/${projectSuffix(repo.name)}/deploy`;
  return environment === undefined ? `${base}/${template}` : `${base}/${environment}/${template}`;
}

/**
 * What every service stack's name starts with; CloudFormation starts the names it gives unnamed
 * resources in those stacks (such as the CodeDeploy applications) with it too.
 */
export function serviceStackNamePrefix(prefix: string): string {
  return serviceStackName(prefix, { name: '' });
}
