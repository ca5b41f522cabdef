import { Arn, ArnFormat, Aws, Stack, Validations } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { PullThroughCacheConfig } from '../config/schema';

/** ECR's name for each upstream the config offers, and the registry it caches. */
export const PULL_THROUGH_UPSTREAMS: Record<
  PullThroughCacheConfig['upstream'],
  { readonly upstreamRegistry: string; readonly upstreamRegistryUrl: string }
> = {
  'ecr-public': { upstreamRegistry: 'ecr-public', upstreamRegistryUrl: 'public.ecr.aws' },
  'docker-hub': { upstreamRegistry: 'docker-hub', upstreamRegistryUrl: 'registry-1.docker.io' },
  ghcr: { upstreamRegistry: 'github-container-registry', upstreamRegistryUrl: 'ghcr.io' },
  quay: { upstreamRegistry: 'quay', upstreamRegistryUrl: 'quay.io' },
  k8s: { upstreamRegistry: 'k8s', upstreamRegistryUrl: 'registry.k8s.io' },
};

/**
 * What pulling through a cache takes: the pull itself, and on the first pull of an upstream image
 * ECR creates the cache repository and imports the image on the caller's behalf.
 */
export const PULL_THROUGH_ACTIONS = [
  'ecr:BatchGetImage',
  'ecr:GetDownloadUrlForLayer',
  'ecr:BatchCheckLayerAvailability',
  'ecr:BatchImportUpstreamImage',
  'ecr:CreateRepository',
] as const;

export interface PullThroughCacheProps {
  /** The validated `pullThroughCache` entries of the config. */
  readonly rules: readonly PullThroughCacheConfig[];
}

/**
 * ECR pull-through cache rules: `<account>.dkr.ecr.<region>.amazonaws.com/<prefix>/<image>` pulls
 * `<image>` from the upstream once and serves it from ECR afterwards, so builds are not held to
 * Docker Hub's anonymous pull limits (seed 001). The rules are registry-wide (one per prefix per
 * account and region), so they belong in the shared stack; there is no L2, hence the L1.
 *
 * Upstreams that need credentials read them from the Secrets Manager secret named in the config,
 * which must exist before deployment and be named `ecr-pullthroughcache/…` (an ECR requirement).
 */
export class PullThroughCache extends Construct {
  /** The rules, in config order. */
  public readonly rules: readonly ecr.CfnPullThroughCacheRule[];
  private readonly config: readonly PullThroughCacheConfig[];

  constructor(scope: Construct, id: string, props: PullThroughCacheProps) {
    super(scope, id);
    this.config = props.rules;
    const stack = Stack.of(this);
    this.rules = props.rules.map((rule) => {
      const upstream = PULL_THROUGH_UPSTREAMS[rule.upstream];
      return new ecr.CfnPullThroughCacheRule(this, `Rule-${rule.prefix}`, {
        ecrRepositoryPrefix: rule.prefix,
        upstreamRegistry: upstream.upstreamRegistry,
        upstreamRegistryUrl: upstream.upstreamRegistryUrl,
        credentialArn: rule.credentialSecretName
          ? // A partial ARN (no random suffix): the secret is made by hand, so its suffix is unknown.
            stack.formatArn({
              service: 'secretsmanager',
              resource: 'secret',
              resourceName: rule.credentialSecretName,
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            })
          : undefined,
      });
    });
  }

  /** Lets a build pull images through every rule of this cache. */
  public grantPull(grantee: iam.IGrantable): iam.Grant {
    return grantPullThroughCache(grantee, this.config);
  }
}

/**
 * Lets `grantee` pull through the given rules. The ARNs are made from the prefixes and the pseudo
 * parameters of whichever stack holds the grantee's policy, so a repository stack can call this
 * with the config alone, without a cross-stack reference to the shared stack that holds the rules.
 */
export function grantPullThroughCache(
  grantee: iam.IGrantable,
  rules: readonly Pick<PullThroughCacheConfig, 'prefix'>[],
): iam.Grant {
  if (rules.length === 0) {
    throw new Error('grantPullThroughCache: rules is empty; there is nothing to pull through');
  }
  const repositoryArns = rules.map((rule) =>
    Arn.format({
      partition: Aws.PARTITION,
      service: 'ecr',
      region: Aws.REGION,
      account: Aws.ACCOUNT_ID,
      resource: 'repository',
      resourceName: `${rule.prefix}/*`,
    }),
  );
  const pull = iam.Grant.addToPrincipal({
    grantee,
    actions: [...PULL_THROUGH_ACTIONS],
    resourceArns: repositoryArns,
  });
  // Logging in to the registry is not a repository action; it only ever takes "*".
  iam.Grant.addToPrincipal({ grantee, actions: ['ecr:GetAuthorizationToken'], resourceArns: ['*'] });
  if (Construct.isConstruct(grantee)) {
    for (const rule of rules) {
      Validations.of(grantee).acknowledge({
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:<AWS::Region>:<AWS::AccountId>:repository/${rule.prefix}/*]`,
        reason: `Pull-through caching creates one repository per upstream image under the prefix ${rule.prefix}/ on first pull; their names are not known in advance, and the grant stays inside that prefix.`,
      });
    }
  }
  return pull;
}
