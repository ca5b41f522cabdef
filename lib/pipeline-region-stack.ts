import { Stack, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { createArtifactStore } from './constructs/artifact-store';
import type { RegionalArtifactStore } from './constructs/deploy-pipeline';
import { createLogBucket } from './constructs/log-bucket';

export interface PipelineRegionStackProps extends StackProps {
  /**
   * A deploy role in another account reads the store, so it is encrypted with a customer-managed key
   * (named by an alias, for the pipeline in its home region).
   * @default false: S3-managed encryption
   */
  readonly crossAccount?: boolean;
}

/**
 * A deploy pipeline's artifact store in another region, in the pipeline's account: CodePipeline
 * needs one in every region where an action of the pipeline runs, "in the same AWS Region as the
 * cross-Region action and in the same account as your pipeline", and copies the artifact there
 * before that region's deploy action reads it ("Add a cross-Region action in CodePipeline",
 * https://docs.aws.amazon.com/codepipeline/latest/userguide/actions-create-cross-region.html).
 * Our own stack rather than CDK's generated support stack, so that the store is logged, TLS-only and
 * keyed like the pipeline's home store.
 */
export class PipelineRegionStack extends Stack {
  /** The bucket the pipeline's actions in this region read their artifacts from. */
  public readonly artifactStore: s3.Bucket;
  /** The alias of the store's key, when it has one. */
  public readonly keyAliasName?: string;

  constructor(scope: Construct, id: string, props: PipelineRegionStackProps) {
    super(scope, id, props);
    this.keyAliasName = props.crossAccount ? `alias/${this.stackName}/artifact-store` : undefined;
    this.artifactStore = createArtifactStore(this, 'ArtifactStore', {
      customerManagedKey: props.crossAccount ?? false,
      keyAliasName: this.keyAliasName,
      accessLogsBucket: createLogBucket(this, 'AccessLogs', {
        receives: 'the access logs of the deploy pipeline’s artifact store in this region',
      }),
    });
  }

  /** The store as the pipeline in its home region names it. */
  public get regionalArtifactStore(): RegionalArtifactStore {
    return { bucketName: this.artifactStore.bucketName, keyAliasName: this.keyAliasName };
  }

  /**
   * Lets a deploy role of this region read the artifacts: by the bucket policy (and key policy), the
   * only grants that reach a role in another account, and that need no reference from the role's
   * stack, which deploys first.
   */
  public grantRead(role: iam.IRole): void {
    this.artifactStore.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [role],
        actions: ['s3:GetObject', 's3:GetObjectVersion'],
        resources: [this.artifactStore.arnForObjects('*')],
      }),
    );
    this.artifactStore.encryptionKey?.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [role],
        actions: ['kms:Decrypt', 'kms:DescribeKey'],
        resources: ['*'],
      }),
    );
  }
}
