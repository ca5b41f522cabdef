import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import type { RepositoryConfig } from './config/schema';
import { DeployPipeline, pascalCase, type RegionalArtifactStore } from './constructs/deploy-pipeline';
import { createLogBucket } from './constructs/log-bucket';
import { artifactKey } from './resource-names';
import { notificationTopic, type ServiceStack } from './service-stack';

export interface PipelineStackProps extends StackProps {
  /** The repository whose image the pipeline deploys; it must list `deploy.environments`. */
  readonly repository: RepositoryConfig;
  /** The shared artifact bucket the build writes the deploy artifact to. */
  readonly artifactBucket: s3.IBucket;
  /** One service stack per environment, in the order the image goes through them. */
  readonly services: readonly ServiceStack[];
  /**
   * The artifact store of each other region a service runs in, by region.
   * @default none: every service is in this stack's region
   */
  readonly regionalArtifactStores?: Readonly<Record<string, RegionalArtifactStore>>;
}

/**
 * The deploy pipeline of a repository with `deploy.environments`: one run per artifact takes the
 * same image through every environment's service, with the approvals the config asks for. In the
 * installation's account and region, next to the artifact bucket whose object starts it.
 */
export class PipelineStack extends Stack {
  public readonly pipeline: DeployPipeline;
  /** Failed runs, failed deployments and waiting approvals are published here. */
  public readonly notifications: sns.Topic;

  constructor(scope: Construct, id: string, props: PipelineStackProps) {
    super(scope, id, props);
    const { repository } = props;
    if (repository.deploy?.environments === undefined) {
      throw new Error(
        `PipelineStack: repository ${repository.name} has no deploy.environments; its service stack holds its pipeline`,
      );
    }
    this.notifications = notificationTopic(this, repository.deploy);
    this.pipeline = new DeployPipeline(this, 'Deploy', {
      artifactBucket: props.artifactBucket,
      artifactKey: artifactKey(repository),
      targets: props.services.map((service) => service.deployTarget()),
      accessLogsBucket: createLogBucket(this, 'AccessLogs', {
        receives: 'the access logs of the deploy pipeline’s artifact store',
      }),
      notificationTopic: this.notifications,
      crossRegionArtifactStores: props.regionalArtifactStores,
    });
    // The build reads its templates from SSM in this account and region; services elsewhere publish them here.
    for (const service of props.services) {
      this.addStackDependency(service, 'the pipeline deploys to the service and assumes its deploy role');
      if (service.deployTemplatesElsewhere) {
        service.publishDeployTemplates(this, pascalCase(service.deployEnvironment.name ?? ''));
      }
    }
    new CfnOutput(this, 'PipelineName', { value: this.pipeline.pipeline.pipelineName });
    new CfnOutput(this, 'NotificationTopicArn', { value: this.notifications.topicArn });
  }
}
