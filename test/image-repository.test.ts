import { App, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parseConfig } from '../lib/config/load';
import type { PipelineConfig, RepositoryConfig } from '../lib/config/schema';
import { BUILD_CACHE_TAG, ImageRepository, KEEP_TAG_PREFIX } from '../lib/constructs/image-repository';
import { grantPullThroughCache, PullThroughCache } from '../lib/constructs/pull-through-cache';
import { buildApp, sampleConfig } from './support/app';

interface LifecycleRuleJson {
  rulePriority: number;
  selection: {
    tagStatus: string;
    tagPrefixList?: string[];
    tagPatternList?: string[];
    countType: string;
    countNumber: number;
  };
}

function configWith(repositoryYaml: string, topLevelYaml = ''): PipelineConfig {
  return parseConfig(`webhook:
  allowedCidrs: [backlog-jp]
${topLevelYaml}
repositories:
  - name: team/app
    source: { provider: github, repository: example/app, cloneUrl: "git@github.com:example/app.git" }
${repositoryYaml}
`);
}

/** The template of a stack holding only the ImageRepository of the config's first repository, nag on. */
function registryTemplate(config: PipelineConfig): Template {
  const app = new App();
  const stack = new Stack(app, 'Registry');
  new ImageRepository(stack, 'Images', { repository: config.repositories[0] as RepositoryConfig });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  app.synth();
  return Template.fromStack(stack);
}

function lifecycleRules(template: Template): LifecycleRuleJson[] {
  const repository = Object.values(template.findResources('AWS::ECR::Repository'))[0] as {
    Properties: { LifecyclePolicy: { LifecyclePolicyText: string } };
  };
  return (
    JSON.parse(repository.Properties.LifecyclePolicy.LifecyclePolicyText) as { rules: LifecycleRuleJson[] }
  ).rules;
}

describe('ImageRepository', () => {
  const defaults = registryTemplate(configWith(''));

  test('GIVEN a repository WHEN synthesized THEN the ECR repository is named after it, scans on push and is retained', () => {
    defaults.hasResource('AWS::ECR::Repository', {
      Properties: Match.objectLike({
        RepositoryName: 'team/app',
        ImageScanningConfiguration: { ScanOnPush: true },
        EmptyOnDelete: false,
      }),
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  test('GIVEN a repository THEN every tag is immutable except the build cache tag', () => {
    defaults.hasResourceProperties('AWS::ECR::Repository', {
      ImageTagMutability: 'IMMUTABLE_WITH_EXCLUSION',
      ImageTagMutabilityExclusionFilters: [
        {
          ImageTagMutabilityExclusionFilterType: 'WILDCARD',
          ImageTagMutabilityExclusionFilterValue: `${BUILD_CACHE_TAG}*`,
        },
      ],
    });
  });

  test("GIVEN no registry section THEN images are encrypted with AES256, ECR's default, so no key is involved", () => {
    defaults.hasResourceProperties('AWS::ECR::Repository', { EncryptionConfiguration: Match.absent() });
  });

  test('GIVEN registry.encryption KMS with a key ARN THEN the repository is encrypted with that key', () => {
    const keyArn = 'arn:aws:kms:ap-northeast-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const template = registryTemplate(
      configWith(`    registry: { encryption: KMS, kmsKeyArn: "${keyArn}" }`),
    );
    template.hasResourceProperties('AWS::ECR::Repository', {
      EncryptionConfiguration: { EncryptionType: 'KMS', KmsKey: keyArn },
    });
  });

  test('GIVEN registry.encryption KMS without a key THEN the AWS managed key is used', () => {
    const template = registryTemplate(configWith('    registry: { encryption: KMS }'));
    template.hasResourceProperties('AWS::ECR::Repository', {
      EncryptionConfiguration: { EncryptionType: 'KMS', KmsKey: Match.absent() },
    });
  });

  test('GIVEN registry.removalPolicy destroy THEN deleting the stack deletes the repository and its images', () => {
    const template = registryTemplate(configWith('    registry: { removalPolicy: destroy }'));
    template.hasResource('AWS::ECR::Repository', {
      Properties: Match.objectLike({ EmptyOnDelete: true }),
      DeletionPolicy: 'Delete',
    });
  });

  test('GIVEN the default lifecycle THEN keep-* and the cache never expire, the newest 100 tagged images stay, untagged ones go after 14 days', () => {
    expect(lifecycleRules(defaults)).toEqual([
      expect.objectContaining({
        rulePriority: 1,
        selection: expect.objectContaining({ tagStatus: 'tagged', tagPrefixList: [KEEP_TAG_PREFIX] }),
      }),
      expect.objectContaining({
        rulePriority: 2,
        selection: expect.objectContaining({ tagStatus: 'tagged', tagPrefixList: [BUILD_CACHE_TAG] }),
      }),
      expect.objectContaining({
        rulePriority: 3,
        selection: expect.objectContaining({
          tagStatus: 'tagged',
          tagPatternList: ['*'],
          countType: 'imageCountMoreThan',
          countNumber: 100,
        }),
      }),
      expect.objectContaining({
        rulePriority: 4,
        selection: expect.objectContaining({
          tagStatus: 'untagged',
          countType: 'sinceImagePushed',
          countNumber: 14,
        }),
      }),
    ]);
  });

  test('GIVEN registry.keepImages and untaggedExpireDays THEN the count and age rules use them', () => {
    const rules = lifecycleRules(
      registryTemplate(configWith('    registry: { keepImages: 30, untaggedExpireDays: 3 }')),
    );
    expect(rules.find((r) => r.selection.tagPatternList)?.selection.countNumber).toBe(30);
    expect(rules.find((r) => r.selection.tagStatus === 'untagged')?.selection.countNumber).toBe(3);
  });

  test('GIVEN the "never expire" rules THEN they come before the count rule, which ECR requires for them to protect anything', () => {
    const rules = lifecycleRules(defaults);
    const count = rules.find((r) => r.selection.tagPatternList?.includes('*'));
    const protecting = rules.filter((r) => r.selection.tagPrefixList !== undefined);
    expect(protecting).toHaveLength(2);
    for (const rule of protecting) {
      expect(rule.rulePriority).toBeLessThan(count?.rulePriority ?? 0);
      // More than the number of images a repository could be pushed in its life.
      expect(rule.selection.countNumber).toBeGreaterThanOrEqual(9999);
    }
  });

  test('GIVEN a multi-platform repository THEN only the age rule can select its untagged per-platform manifests, and no rule counts them against the tagged images', () => {
    const rules = lifecycleRules(
      registryTemplate(configWith('    docker: { platforms: [linux/amd64, linux/arm64] }')),
    );
    // Children of an image index are untagged: they are selected by "untagged" and "any" rules only.
    expect(rules.filter((r) => r.selection.tagStatus === 'any')).toEqual([]);
    const untagged = rules.filter((r) => r.selection.tagStatus === 'untagged');
    expect(untagged).toHaveLength(1);
    expect(untagged[0]?.selection.countType).toBe('sinceImagePushed');
    const tagged = rules.filter((r) => r.selection.tagStatus === 'tagged');
    for (const rule of tagged) expect(rule.rulePriority).toBeLessThan(untagged[0]?.rulePriority ?? 0);
  });

  test('GIVEN no share THEN the repository has no policy: no other account can use it', () => {
    defaults.hasResourceProperties('AWS::ECR::Repository', { RepositoryPolicyText: Match.absent() });
  });

  test('GIVEN an organization share WHEN checked by cdk-nag THEN the "*" principal is acknowledged with the organization named', () => {
    // registryTemplate synthesizes with AwsSolutionsChecks, which throws on an unacknowledged ECR1.
    const template = registryTemplate(configWith('    share: { organizationId: o-a1b2c3d4e5 }'));
    template.hasResourceProperties('AWS::ECR::Repository', {
      RepositoryPolicyText: {
        Statement: [Match.objectLike({ Principal: { AWS: '*' } })],
      },
    });
  });

  test('GIVEN the repository THEN the build cache ref is the repository URI with the cache tag', () => {
    const stack = new Stack(new App(), 'Registry');
    const images = new ImageRepository(stack, 'Images', {
      repository: configWith('').repositories[0] as RepositoryConfig,
    });
    expect(stack.resolve(images.buildCacheRef)).toEqual(
      stack.resolve(images.repository.repositoryUriForTag(BUILD_CACHE_TAG)),
    );
  });
});

describe('the repository stack outputs', () => {
  const { stacks } = buildApp(sampleConfig());
  const shopApi = stacks.repositories.find((s) => s.stackName === 'pushline-repo-shop-api');
  if (!shopApi) throw new Error('the sample config has no shop-api');
  const outputs = Template.fromStack(shopApi).findOutputs('*');

  test('GIVEN the sample THEN each repository stack prints its URI and the pull command a consumer runs', () => {
    expect(Object.keys(outputs)).toEqual(expect.arrayContaining(['RepositoryUri', 'PullCommand']));
    const text = JSON.stringify(shopApi.resolve(outputs.PullCommand?.Value));
    expect(text).toContain('aws ecr get-login-password --region ');
    expect(text).toContain('| docker login --username AWS --password-stdin ');
    expect(text).toContain('&& docker pull ');
    expect(text).toContain(':<commit-sha>');
  });
});

describe('PullThroughCache', () => {
  const config = configWith(
    '',
    `pullThroughCache:
  - { prefix: docker-hub, upstream: docker-hub, credentialSecretName: ecr-pullthroughcache/docker-hub }
  - { prefix: ecr-public, upstream: ecr-public }`,
  );

  test('GIVEN two rules WHEN synthesized THEN each becomes a pull-through cache rule for its upstream, with credentials only where configured', () => {
    const stack = new Stack(new App(), 'Shared');
    new PullThroughCache(stack, 'PullThroughCache', { rules: config.pullThroughCache ?? [] });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::ECR::PullThroughCacheRule', 2);
    template.hasResourceProperties('AWS::ECR::PullThroughCacheRule', {
      EcrRepositoryPrefix: 'docker-hub',
      UpstreamRegistry: 'docker-hub',
      UpstreamRegistryUrl: 'registry-1.docker.io',
      CredentialArn: {
        'Fn::Join': [
          '',
          Match.arrayWith([Match.stringLikeRegexp(':secret:ecr-pullthroughcache/docker-hub$')]),
        ],
      },
    });
    template.hasResourceProperties('AWS::ECR::PullThroughCacheRule', {
      EcrRepositoryPrefix: 'ecr-public',
      UpstreamRegistry: 'ecr-public',
      UpstreamRegistryUrl: 'public.ecr.aws',
      CredentialArn: Match.absent(),
    });
  });

  test('GIVEN a build role in another stack WHEN granted THEN it may pull, import and create repositories under the prefixes only, with no cross-stack reference', () => {
    const app = new App();
    const stack = new Stack(app, 'Build');
    const role = new iam.Role(stack, 'BuildRole', {
      assumedBy: new iam.ServicePrincipal('codebuild.amazonaws.com'),
    });
    grantPullThroughCache(role, config.pullThroughCache ?? []);
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ecr:GetAuthorizationToken takes no resource; what the build owner acknowledges.',
    });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).not.toThrow();
    const template = Template.fromStack(stack);
    const statements = (
      Object.values(template.findResources('AWS::IAM::Policy'))[0] as {
        Properties: { PolicyDocument: { Statement: { Action: string[] | string; Resource: unknown }[] } };
      }
    ).Properties.PolicyDocument.Statement;
    const pull = statements.find(
      (s) => Array.isArray(s.Action) && s.Action.includes('ecr:BatchImportUpstreamImage'),
    );
    const resources = JSON.stringify(stack.resolve(pull?.Resource));
    expect(resources).toContain(':repository/docker-hub/*');
    expect(resources).toContain(':repository/ecr-public/*');
    expect(pull?.Action).toEqual(expect.arrayContaining(['ecr:BatchGetImage', 'ecr:CreateRepository']));
    expect(JSON.stringify(template.toJSON())).not.toContain('Fn::ImportValue');
  });
});
