import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type * as codebuild from 'aws-cdk-lib/aws-codebuild';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import type { PipelineConfig, RepositoryConfig } from './config/schema';
import { ImageBuildProject } from './constructs/image-build-project';
import { ImageRepository } from './constructs/image-repository';
import { artifactKey } from './resource-names';

export interface RepositoryStackProps extends StackProps {
  /** The validated config (installation-wide settings such as the name prefix). */
  readonly config: PipelineConfig;
  /** The repository this stack serves. */
  readonly repository: RepositoryConfig;
  /** The shared artifact bucket the build writes deploy artifacts to. */
  readonly artifactBucket: s3.IBucket;
  /**
   * The shared fleet the repository's `build.fleet` names.
   * @default on-demand builds
   */
  readonly fleet?: codebuild.IFleet;
}

/**
 * One configured repository's registry and build. A stack per repository keeps every stack far
 * below CloudFormation's 500-resource limit however many repositories a config lists, and lets a
 * repository be added or removed without touching the others.
 */
export class RepositoryStack extends Stack {
  public readonly imageRepository: ImageRepository;
  public readonly imageBuild: ImageBuildProject;

  constructor(scope: Construct, id: string, props: RepositoryStackProps) {
    super(scope, id, props);
    this.imageRepository = new ImageRepository(this, 'Images', { repository: props.repository });
    new CfnOutput(this, 'RepositoryUri', {
      value: this.imageRepository.repository.repositoryUri,
      description: `ECR repository of ${props.repository.name}`,
    });
    this.imageBuild = new ImageBuildProject(this, 'Build', {
      installationName: props.config.name,
      repository: props.repository,
      imageRepository: this.imageRepository.repository,
      artifactBucket: props.artifactBucket,
      pullThroughCache: props.config.pullThroughCache,
      ...(props.fleet ? { fleet: props.fleet } : {}),
    });
    new CfnOutput(this, 'SshKeySecretName', {
      value: props.repository.source.sshKeySecretName ?? this.imageBuild.sshKeySecret.secretName,
      description: `Secret to put the deploy key of ${props.repository.name} in (README, Builds)`,
    });
    new CfnOutput(this, 'ArtifactKey', {
      value: artifactKey(props.repository),
      description: `Key of the deploy artifact in the artifact bucket that builds of ${props.repository.name} write (README, Redeploying)`,
    });
    new CfnOutput(this, 'PullCommand', {
      value: this.imageRepository.pullCommand(),
      description: `How an account allowed by share pulls a commit image of ${props.repository.name}`,
    });
  }
}
