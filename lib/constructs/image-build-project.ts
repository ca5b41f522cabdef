import { join } from 'node:path';
import { Annotations, Duration, Stack, Token, Validations } from 'aws-cdk-lib';
import * as codebuild from 'aws-cdk-lib/aws-codebuild';
import type * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { resolveKnownHosts } from '../config/known-hosts';
import type { PipelineConfig, RepositoryConfig } from '../config/schema';
import { artifactKey, buildProjectName, deployTemplateParameterName } from '../resource-names';
import { grantPullThroughCache } from './pull-through-cache';

/** The directory shipped to every build project as its source: buildspec.yml and its scripts. */
export const BUILDSPEC_DIR = join(__dirname, '..', '..', 'buildspec');

/** The registry cache tag; the image repository keeps it mutable while commit tags stay immutable. */
export const CACHE_TAG = 'buildcache';

const COMPUTE_TYPES: Record<RepositoryConfig['build']['computeType'], codebuild.ComputeType> = {
  small: codebuild.ComputeType.SMALL,
  medium: codebuild.ComputeType.MEDIUM,
  large: codebuild.ComputeType.LARGE,
  xlarge: codebuild.ComputeType.X_LARGE,
  '2xlarge': codebuild.ComputeType.X2_LARGE,
};

export interface ImageBuildProjectProps {
  /** The installation's name prefix (`config.name`); the project is named from it. */
  readonly installationName: string;
  /** The validated repository entry of the config. */
  readonly repository: RepositoryConfig;
  /** The ECR repository the build pushes to; the only one it may push to. */
  readonly imageRepository: ecr.IRepository;
  /** The shared artifact bucket; the build may only write under its own prefix. */
  readonly artifactBucket: s3.IBucket;
  /**
   * ECR pull-through cache rules of the installation; base images may then come from
   * `<account>.dkr.ecr.<region>.amazonaws.com/<prefix>/…` instead of the upstream registry.
   * @default no pull-through cache
   */
  readonly pullThroughCache?: PipelineConfig['pullThroughCache'];
  /**
   * A reserved capacity fleet the builds run on instead of on-demand capacity, so they start without
   * provisioning. Its environment type must match the build image's (`repository.build.arch`), and its
   * compute type replaces `repository.build.computeType`.
   * @default on-demand builds
   */
  readonly fleet?: codebuild.IFleet;
}

/**
 * CodeBuild's managed image per build host: Ubuntu standard 7.0 on x86, Amazon Linux 2023 standard
 * 3.0 on Graviton (CDK's LinuxArmBuildImage names only Amazon Linux images). The build script
 * uses buildx where the image has it and the classic client otherwise, and its `check` step names
 * any tool an image lacks.
 */
const BUILD_IMAGES: Record<RepositoryConfig['build']['arch'], codebuild.IBuildImage> = {
  amd64: codebuild.LinuxBuildImage.STANDARD_7_0,
  arm64: codebuild.LinuxArmBuildImage.AMAZON_LINUX_2023_STANDARD_3_0,
};

/**
 * The CodeBuild project that builds one repository's pushed commits into images tagged with the
 * commit SHA. It has no CodeBuild source of the application: the webhook passes the commit, and the
 * build fetches exactly that commit over SSH with the repository's deploy key and pinned host keys.
 * Its own source is `buildspec/` (an S3 asset), so the buildspec and scripts are the tested files.
 */
export class ImageBuildProject extends Construct {
  public readonly project: codebuild.Project;
  /** The secret holding the deploy key's private half (OpenSSH format). */
  public readonly sshKeySecret: secretsmanager.ISecret;
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ImageBuildProjectProps) {
    super(scope, id);
    const { repository: repo, installationName } = props;
    const knownHosts = resolveKnownHosts(repo.source);
    if (knownHosts.problem) {
      Annotations.of(this).addWarningV2('pushline:known-hosts', `${repo.name}: ${knownHosts.problem}`);
    }

    this.sshKeySecret = repo.source.sshKeySecretName
      ? secretsmanager.Secret.fromSecretNameV2(this, 'SshKey', repo.source.sshKeySecretName)
      : this.createSshKeySecret(installationName, repo);

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: repo.build.logRetentionDays as logs.RetentionDays,
    });

    const scripts = new s3assets.Asset(this, 'Scripts', { path: BUILDSPEC_DIR });
    const pullThroughRegistry = props.pullThroughCache?.length
      ? `${Stack.of(this).account}.dkr.ecr.${Stack.of(this).region}.${Stack.of(this).urlSuffix}`
      : undefined;

    this.project = new codebuild.Project(this, 'Project', {
      projectName: buildProjectName(installationName, repo),
      description: `pushline: builds ${repo.name} from ${repo.source.cloneUrl} at the pushed commit`,
      source: codebuild.Source.s3({ bucket: scripts.bucket, path: scripts.s3ObjectKey }),
      environment: {
        buildImage: BUILD_IMAGES[repo.build.arch],
        computeType: props.fleet ? fleetComputeType(props.fleet) : COMPUTE_TYPES[repo.build.computeType],
        privileged: true,
        ...(props.fleet ? { fleet: props.fleet } : {}),
      },
      environmentVariables: {
        ...buildEnvironment(props, knownHosts.lines, pullThroughRegistry),
        GIT_SSH_KEY: {
          type: codebuild.BuildEnvironmentVariableType.SECRETS_MANAGER,
          value: repo.source.sshKeySecretName ?? this.sshKeySecret.secretArn,
        },
        ...buildSecretVariables(repo),
        ...deployTemplateVariables(installationName, repo),
      },
      timeout: Duration.minutes(repo.build.timeoutMinutes),
      concurrentBuildLimit: repo.build.concurrentBuildLimit,
      logging: { cloudWatch: { logGroup: this.logGroup } },
      grantReportGroupPermissions: false,
    });

    props.imageRepository.grantPullPush(this.project);
    this.project.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'WriteOwnDeployArtifact',
        // GetObject too: the build reads the artifact's recorded push (HeadObject) and writes with
        // If-Match, which S3 allows only with both permissions (S3 User Guide, "How to prevent
        // object overwrites with conditional writes").
        actions: ['s3:PutObject', 's3:GetObject'],
        // The exact key, not the prefix: the build writes one object, and a wildcard would be more.
        resources: [props.artifactBucket.arnForObjects(artifactKey(repo))],
      }),
    );
    if (props.pullThroughCache?.length) grantPullThroughCache(this.project, props.pullThroughCache);
    this.acknowledgeFindings();
  }

  private createSshKeySecret(installationName: string, repo: RepositoryConfig): secretsmanager.Secret {
    const secret = new secretsmanager.Secret(this, 'SshKey', {
      secretName: `${installationName}/${repo.name}/git-ssh-key`,
      description:
        `Deploy key with which pushline fetches ${repo.source.cloneUrl}. Holds a generated placeholder ` +
        'until you store the private half of a deploy key (OpenSSH format) here: see README, Builds.',
    });
    Validations.of(secret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'An SSH deploy key is rotated by making a new key pair and registering its public half at the Git provider; Secrets Manager rotation cannot do the second step.',
    });
    return secret;
  }

  private acknowledgeFindings(): void {
    Validations.of(this.project).acknowledge({
      id: 'AwsSolutions-CB3',
      reason:
        'Building container images with Docker needs privileged mode; the build runs only this repository’s pinned commit.',
    });
    Validations.of(this.project).acknowledge({
      id: 'AwsSolutions-CB4',
      reason:
        'The project produces no CodeBuild artifacts; its only output is written by the build to the artifact bucket, which is encrypted. Logs use the CloudWatch Logs default encryption.',
    });
    const role = this.project.role;
    if (!role) return;
    const projectLogicalId = Stack.of(this).getLogicalId(
      this.project.node.defaultChild as codebuild.CfnProject,
    );
    const assetRead = 'CDK’s read grant on the S3 asset that holds this project’s own buildspec and scripts.';
    // CodeBuild's log grant is formatted with the stack's account and region: pseudo parameters in
    // an environment-agnostic stack, literals in one with a concrete `env`. cdk-nag names the
    // finding after the resolved ARN, so the acknowledgement follows the same form.
    const stack = Stack.of(this);
    const region = Token.isUnresolved(stack.region) ? '<AWS::Region>' : stack.region;
    const account = Token.isUnresolved(stack.account) ? '<AWS::AccountId>' : stack.account;
    const findings: Record<string, string> = {
      'Resource::*':
        'ecr:GetAuthorizationToken has no resource-level permissions; pushes are granted on the one repository only.',
      [`Resource::arn:<AWS::Partition>:logs:${region}:${account}:log-group:/aws/codebuild/<${projectLogicalId}>:*`]:
        'Streams of the project’s own log group, which CodeBuild names per build.',
      'Action::s3:GetBucket*': assetRead,
      'Action::s3:GetObject*': assetRead,
      'Action::s3:List*': assetRead,
    };
    for (const [finding, reason] of Object.entries(findings)) {
      Validations.of(role).acknowledge({ id: `AwsSolutions-IAM5[${finding}]`, reason });
    }
  }
}

/** The project's compute type on a fleet is the fleet's: the same BUILD_GENERAL1_* value. */
function fleetComputeType(fleet: codebuild.IFleet): codebuild.ComputeType {
  const computeType = Object.values(codebuild.ComputeType).find(
    (value) => `${value}` === `${fleet.computeType}`,
  );
  if (computeType === undefined)
    throw new Error(
      `fleet ${fleet.node.path}: compute type ${fleet.computeType} has no on-demand equivalent`,
    );
  return computeType;
}

function buildEnvironment(
  props: ImageBuildProjectProps,
  knownHosts: readonly string[],
  pullThroughRegistry: string | undefined,
): Record<string, codebuild.BuildEnvironmentVariable> {
  const { repository: repo } = props;
  const plain: Record<string, string | undefined> = {
    IMAGE_REPOSITORY_URI: props.imageRepository.repositoryUri,
    CACHE_TAG,
    CLONE_URL: repo.source.cloneUrl,
    // Absent rather than empty when nothing is pinned: the build then refuses to fetch, saying why.
    GIT_KNOWN_HOSTS: knownHosts.length > 0 ? knownHosts.join('\n') : undefined,
    ARTIFACT_BUCKET: props.artifactBucket.bucketName,
    ARTIFACT_KEY: artifactKey(repo),
    DOCKER_CONTEXT: repo.docker.context,
    DOCKERFILE: repo.docker.file,
    DOCKER_TARGET: repo.docker.target,
    DOCKER_PLATFORMS: repo.docker.platforms?.join(','),
    DOCKER_BUILD_ARGS: repo.docker.buildArgs
      ? Object.entries(repo.docker.buildArgs)
          .map(([name, value]) => `${name}=${value}`)
          .join('\n')
      : undefined,
    PULL_THROUGH_REGISTRY: pullThroughRegistry,
    BUILDKIT_IMAGE: dockerHubMirror(props, pullThroughRegistry, 'moby/buildkit:buildx-stable-1'),
    BINFMT_IMAGE: dockerHubMirror(props, pullThroughRegistry, 'tonistiigi/binfmt:latest'),
  };
  const out: Record<string, codebuild.BuildEnvironmentVariable> = {};
  for (const [name, value] of Object.entries(plain)) if (value !== undefined) out[name] = { value };
  return out;
}

/** The helper images a buildx build pulls from Docker Hub, through the pull-through cache if there is one. */
function dockerHubMirror(
  props: ImageBuildProjectProps,
  registry: string | undefined,
  image: string,
): string | undefined {
  const rule = props.pullThroughCache?.find((r) => r.upstream === 'docker-hub');
  return rule && registry ? `${registry}/${rule.prefix}/${image}` : undefined;
}

function buildSecretVariables(repo: RepositoryConfig): Record<string, codebuild.BuildEnvironmentVariable> {
  const secrets = repo.docker.secrets ?? [];
  if (secrets.length === 0) return {};
  const out: Record<string, codebuild.BuildEnvironmentVariable> = {
    BUILD_SECRET_IDS: { value: secrets.map((s) => s.id).join(' ') },
  };
  secrets.forEach((secret, index) => {
    out[`BUILD_SECRET_${index}`] = {
      type: codebuild.BuildEnvironmentVariableType.SECRETS_MANAGER,
      value: secret.secretName,
    };
  });
  return out;
}

function deployTemplateVariables(
  installationName: string,
  repo: RepositoryConfig,
): Record<string, codebuild.BuildEnvironmentVariable> {
  if (!repo.deploy) return {};
  const environments = repo.deploy.environments;
  if (environments !== undefined) {
    return Object.fromEntries([
      ['DEPLOY_ENVIRONMENTS', { value: environments.map((e) => e.name).join(' ') }],
      ...environments.flatMap(({ name }, index) =>
        (['taskdef', 'appspec'] as const).map((template) => [
          `${template.toUpperCase()}_TEMPLATE_${index}`,
          {
            type: codebuild.BuildEnvironmentVariableType.PARAMETER_STORE,
            value: deployTemplateParameterName(installationName, repo, template, name),
          },
        ]),
      ),
    ]);
  }
  return {
    TASKDEF_TEMPLATE: {
      type: codebuild.BuildEnvironmentVariableType.PARAMETER_STORE,
      value: deployTemplateParameterName(installationName, repo, 'taskdef'),
    },
    APPSPEC_TEMPLATE: {
      type: codebuild.BuildEnvironmentVariableType.PARAMETER_STORE,
      value: deployTemplateParameterName(installationName, repo, 'appspec'),
    },
  };
}
