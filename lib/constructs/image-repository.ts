import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { Construct } from 'constructs';
import type { RepositoryConfig } from '../config/schema';

export interface ImageRepositoryProps {
  /** The validated repository entry of the config. */
  readonly repository: RepositoryConfig;
}

/**
 * The ECR repository that holds one configured repository's images, tagged with commit SHAs.
 * Tags are immutable: a commit's image never changes once pushed.
 */
export class ImageRepository extends Construct {
  public readonly repository: ecr.Repository;

  constructor(scope: Construct, id: string, props: ImageRepositoryProps) {
    super(scope, id);
    const { repository: repo } = props;
    this.repository = new ecr.Repository(this, 'Repository', {
      repositoryName: repo.name,
      imageTagMutability: ecr.TagMutability.IMMUTABLE,
      imageScanOnPush: true,
      encryption: ecr.RepositoryEncryption.AES_256,
      removalPolicy: repo.registry.removalPolicy === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
      emptyOnDelete: repo.registry.removalPolicy === 'destroy',
      lifecycleRules: [
        {
          description: `Expire untagged images after ${repo.registry.untaggedExpireDays} days`,
          tagStatus: ecr.TagStatus.UNTAGGED,
          maxImageAge: Duration.days(repo.registry.untaggedExpireDays),
        },
      ],
    });
  }
}
