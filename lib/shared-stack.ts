import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { PipelineConfig } from './config/schema';
import { ArtifactBucket } from './constructs/artifact-bucket';

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

  constructor(scope: Construct, id: string, props: SharedStackProps) {
    super(scope, id, props);
    this.artifacts = new ArtifactBucket(this, 'Artifacts');
    new CfnOutput(this, 'ArtifactBucketName', {
      value: this.artifacts.bucket.bucketName,
      description: 'Bucket the builds write deploy artifacts to',
    });
  }
}
