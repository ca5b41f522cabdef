import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { createLogBucket } from './log-bucket';

export interface ArtifactBucketProps {
  /**
   * Days to keep non-current versions of deploy artifacts (for a rollback by hand).
   * @default 30
   */
  readonly noncurrentVersionDays?: number;
}

/**
 * The bucket the builds write their deploy artifacts to (`imageDetail.json`, `taskdef.json`,
 * `appspec.yaml`, zipped). Versioned, because CodePipeline's S3 source needs versions; EventBridge
 * notifications on, because each object's creation starts that repository's deploy pipeline.
 */
export class ArtifactBucket extends Construct {
  public readonly bucket: s3.Bucket;
  public readonly accessLogs: s3.Bucket;

  constructor(scope: Construct, id: string, props: ArtifactBucketProps = {}) {
    super(scope, id);
    const noncurrentVersionDays = props.noncurrentVersionDays ?? 30;
    if (!Number.isInteger(noncurrentVersionDays) || noncurrentVersionDays < 1) {
      throw new Error(
        `ArtifactBucket: noncurrentVersionDays must be a positive integer, got ${noncurrentVersionDays}`,
      );
    }

    this.accessLogs = createLogBucket(this, 'AccessLogs', { receives: 'the artifact bucket’s access logs' });

    this.bucket = new s3.Bucket(this, 'Bucket', {
      versioned: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      eventBridgeEnabled: true,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'artifacts/',
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [{ noncurrentVersionExpiration: Duration.days(noncurrentVersionDays) }],
    });

    // S3 turns EventBridge delivery on through CDK's own singleton custom resource.
    const notificationsHandler = Stack.of(this).node.tryFindChild(
      'BucketNotificationsHandler050a0587b7544547bf325f094a3db834',
    );
    if (notificationsHandler) {
      Validations.of(notificationsHandler).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason:
          "CDK's BucketNotificationsHandler only writes its own logs; the managed policy grants exactly that and CDK does not let it be replaced.",
      });
    }
  }
}
