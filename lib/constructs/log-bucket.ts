import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';

export interface LogBucketProps {
  /** What the bucket receives, for the cdk-nag acknowledgement of its own missing access log. */
  readonly receives: string;
  /**
   * Days logs are kept.
   * @default 365
   */
  readonly expirationDays?: number;
}

/**
 * A bucket that receives logs (S3 server access logs, load balancer access logs, VPC flow logs):
 * S3-managed encryption, which load balancers require of a log destination, no public access,
 * TLS only, owner-enforced objects, kept on stack deletion, logs expiring after a year.
 */
export function createLogBucket(scope: Construct, id: string, props: LogBucketProps): s3.Bucket {
  const bucket = new s3.Bucket(scope, id, {
    encryption: s3.BucketEncryption.S3_MANAGED,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    removalPolicy: RemovalPolicy.RETAIN,
    lifecycleRules: [{ expiration: Duration.days(props.expirationDays ?? 365) }],
  });
  Validations.of(bucket).acknowledge({
    id: 'AwsSolutions-S1',
    reason: `This bucket receives ${props.receives}; logging it to itself would loop.`,
  });
  return bucket;
}
