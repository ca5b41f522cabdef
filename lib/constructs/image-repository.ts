import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import type { RepositoryConfig } from '../config/schema';
import { repositoryShareStatements } from './repository-share-policy';

/**
 * The tag the build moves to its newest registry cache (`<repository uri>:buildcache`). It is the
 * one mutable tag: the repository's tag-immutability exclusion covers `buildcache*`.
 */
export const BUILD_CACHE_TAG = 'buildcache';

/**
 * Images with a tag starting with this prefix are never expired by the lifecycle policy. Add such a
 * tag to pin an image a deployment must keep (`keep-prod`, `keep-2026-11-rollback`): tags are
 * immutable, but adding a new tag to an existing image is allowed.
 */
export const KEEP_TAG_PREFIX = 'keep-';

/**
 * More images than a repository holds in practice: a rule that "keeps the newest 9999" of a tag
 * prefix claims those images, so no later rule can expire them (ECR evaluates rules by priority,
 * and an image matched by one rule cannot be expired by a rule after it).
 */
const NEVER_EXPIRE_COUNT = 9999;

/** The placeholder the pull command shows where a commit SHA goes. */
const COMMIT_TAG_PLACEHOLDER = '<commit-sha>';

export interface ImageRepositoryProps {
  /** The validated repository entry of the config. */
  readonly repository: RepositoryConfig;
}

/**
 * The ECR repository that holds one configured repository's images, tagged with commit SHAs.
 *
 * - Tags are immutable (a commit's image never changes once pushed), except `buildcache*`, which
 *   the build moves to its newest registry cache.
 * - Images are scanned on push and encrypted with AES256, or KMS as configured.
 * - Lifecycle: untagged images expire after `registry.untaggedExpireDays`; of the tagged images the
 *   newest `registry.keepImages` are kept; images tagged `keep-*` and the build cache never expire.
 *   ECR cannot see what ECS runs, so "never expire what a deployment uses" rests on counting, not
 *   age: every build of a deployed repository is deployed, so the running image is among the newest
 *   `keepImages` unless that many newer builds all failed to deploy; pin anything else with `keep-`.
 * - The `share` section becomes the repository policy (see `repositoryShareStatements`).
 */
export class ImageRepository extends Construct {
  public readonly repository: ecr.Repository;
  /** Where the build keeps its registry cache: `<repository uri>:buildcache`. */
  public readonly buildCacheRef: string;

  constructor(scope: Construct, id: string, props: ImageRepositoryProps) {
    super(scope, id);
    const { repository: repo } = props;
    const destroy = repo.registry.removalPolicy === 'destroy';

    this.repository = new ecr.Repository(this, 'Repository', {
      repositoryName: repo.name,
      imageTagMutability: ecr.TagMutability.IMMUTABLE_WITH_EXCLUSION,
      imageTagMutabilityExclusionFilters: [
        ecr.ImageTagMutabilityExclusionFilter.wildcard(`${BUILD_CACHE_TAG}*`),
      ],
      imageScanOnPush: true,
      ...this.encryption(repo),
      removalPolicy: destroy ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
      emptyOnDelete: destroy,
      lifecycleRules: lifecycleRules(repo),
    });

    if (repo.share) {
      for (const statement of repositoryShareStatements(repo.share)) {
        this.repository.addToResourcePolicy(statement);
      }
      const shares = Array.isArray(repo.share) ? repo.share : [repo.share];
      const organizations = shares.flatMap((s) => (s.organizationId ? [s.organizationId] : []));
      if (organizations.length > 0) {
        Validations.of(this.repository).acknowledge({
          id: 'AwsSolutions-ECR1',
          reason: `The principal "*" is confined by aws:PrincipalOrgID to the organisation(s) ${organizations.join(', ')} named in share.organizationId, plus that entry's tag and network conditions; this is how a repository is shared with an organisation.`,
        });
      }
    }

    this.buildCacheRef = this.repository.repositoryUriForTag(BUILD_CACHE_TAG);
  }

  /**
   * The commands another account runs to pull an image: log in to this registry, then pull a commit.
   * The caller needs `ecr:GetAuthorizationToken` in its own account and a share entry here.
   */
  public pullCommand(tag: string = COMMIT_TAG_PLACEHOLDER): string {
    const stack = Stack.of(this);
    const registry = `${stack.account}.dkr.ecr.${stack.region}.${stack.urlSuffix}`;
    return [
      `aws ecr get-login-password --region ${stack.region}`,
      `| docker login --username AWS --password-stdin ${registry}`,
      `&& docker pull ${this.repository.repositoryUriForTag(tag)}`,
    ].join(' ');
  }

  /** Lets the build push commit images and move the cache tag. */
  public grantBuild(grantee: iam.IGrantable): iam.Grant {
    return this.repository.grantPullPush(grantee);
  }

  private encryption(repo: RepositoryConfig): Pick<ecr.RepositoryProps, 'encryption' | 'encryptionKey'> {
    if (repo.registry.encryption === 'AES256') return { encryption: ecr.RepositoryEncryption.AES_256 };
    return {
      encryption: ecr.RepositoryEncryption.KMS,
      // Without a key ARN, ECR uses the AWS managed key aws/ecr.
      encryptionKey: repo.registry.kmsKeyArn
        ? kms.Key.fromKeyArn(this, 'EncryptionKey', repo.registry.kmsKeyArn)
        : undefined,
    };
  }
}

/**
 * Rules in priority order. The two "never" rules come first so that the count rule after them
 * cannot expire what they match; the count rule selects tagged images only, so multi-platform
 * children and attestations (untagged) do not use up its slots.
 *
 * The per-platform manifests and attestations of a multi-platform image are untagged, so the age
 * rule selects them; ECR does not delete an image that an image index still references: deleting
 * one fails with `ImageReferencedByManifestList` ("Requested image referenced by manifest list";
 * Amazon ECR API Reference, ImageFailure,
 * https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ImageFailure.html), and the user
 * guide says the manifest list must be deleted first ("Deleting an image in Amazon ECR",
 * https://docs.aws.amazon.com/AmazonECR/latest/userguide/delete_image.html). They become deletable,
 * and then expire by age, once the count rule has expired their tagged index. That only holds while
 * no rule selects `any` and the count rule counts tagged images; test/image-repository.test.ts
 * keeps both true.
 */
function lifecycleRules(repo: RepositoryConfig): ecr.LifecycleRule[] {
  return [
    {
      description: `Never expire images tagged ${KEEP_TAG_PREFIX}* (pinned by hand)`,
      tagStatus: ecr.TagStatus.TAGGED,
      tagPrefixList: [KEEP_TAG_PREFIX],
      maxImageCount: NEVER_EXPIRE_COUNT,
    },
    {
      description: `Never expire the build cache (${BUILD_CACHE_TAG}*); a replaced cache becomes untagged`,
      tagStatus: ecr.TagStatus.TAGGED,
      tagPrefixList: [BUILD_CACHE_TAG],
      maxImageCount: NEVER_EXPIRE_COUNT,
    },
    {
      description: `Keep the newest ${repo.registry.keepImages} tagged images (commit images)`,
      tagStatus: ecr.TagStatus.TAGGED,
      tagPatternList: ['*'],
      maxImageCount: repo.registry.keepImages,
    },
    {
      description: `Expire untagged images after ${repo.registry.untaggedExpireDays} days`,
      tagStatus: ecr.TagStatus.UNTAGGED,
      maxImageAge: Duration.days(repo.registry.untaggedExpireDays),
    },
  ];
}
