import { Duration, PhysicalName, RemovalPolicy } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';

export interface ArtifactStoreOptions {
  /**
   * Encrypt with a customer-managed KMS key, which deploy roles in other accounts can be granted
   * (CodePipeline requires one for a cross-account action).
   * @default S3-managed encryption
   */
  readonly customerManagedKey?: boolean;
  /**
   * Name the key by an alias, so that a pipeline in another region can name the key (CloudFormation
   * cannot export a key's ARN across regions). Only with `customerManagedKey`.
   * @default no alias
   */
  readonly keyAliasName?: string;
  /** Bucket for the S3 access logs of the store. */
  readonly accessLogsBucket: s3.IBucket;
}

/**
 * A bucket CodePipeline keeps its artifacts in: copies of the deploy artifact, expiring
 * after 30 days, private, TLS only, logged. Its name is generated only if a stack elsewhere (another
 * account or region) names it.
 */
export function createArtifactStore(scope: Construct, id: string, options: ArtifactStoreOptions): s3.Bucket {
  const key = options.customerManagedKey
    ? new kms.Key(scope, `${id}Key`, {
        description: 'Encrypts the deploy artifacts that deploy roles in other accounts read',
        enableKeyRotation: true,
        pendingWindow: Duration.days(7),
      })
    : undefined;
  const alias =
    key && options.keyAliasName !== undefined
      ? new kms.Alias(scope, `${id}KeyAlias`, { aliasName: options.keyAliasName, targetKey: key })
      : undefined;
  return new s3.Bucket(scope, id, {
    ...(key ? { encryptionKey: alias ?? key } : { encryption: s3.BucketEncryption.S3_MANAGED }),
    bucketName: PhysicalName.GENERATE_IF_NEEDED,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    serverAccessLogsBucket: options.accessLogsBucket,
    serverAccessLogsPrefix: 'pipeline-artifact-store/',
    removalPolicy: RemovalPolicy.RETAIN,
    // Copies of deploy artifacts; the build's originals stay versioned in the artifact bucket.
    lifecycleRules: [{ expiration: Duration.days(30) }],
  });
}
