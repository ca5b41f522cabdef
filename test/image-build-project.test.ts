import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { KNOWN_HOSTS_PRESET_LINES } from '../lib/config/known-hosts';
import { parseConfig } from '../lib/config/load';
import type { PipelineConfig } from '../lib/config/schema';
import type { RepositoryStack } from '../lib/repository-stack';
import {
  artifactKey,
  buildProjectName,
  deployTemplateParameterName,
  repositoryStackName,
} from '../lib/resource-names';
import { buildApp, sampleConfig } from './support/app';

/**
 * The image build project of each repository stack: what it runs, what it is given, and — by
 * simulating its role's policy with AWS's evaluation logic — that it can touch only its own
 * repository's registry, secret, deploy templates and artifact.
 */

const ACCOUNT = '111122223333';
const REGION = 'ap-northeast-1';
const ARTIFACT_BUCKET_ARN = 'arn:aws:s3:::pushline-artifacts-bucket';

const built = new Map<PipelineConfig, ReturnType<typeof buildApp>>();

/** One synthesized app per config (synthesis is the slow part), with cdk-nag on when asked. */
function repositoryStack(config: PipelineConfig, name: string, nag = false): RepositoryStack {
  let app = built.get(config);
  if (!app) {
    app = buildApp(config, { nag });
    if (nag) app.app.synth();
    built.set(config, app);
  }
  const { stacks } = app;
  const stack = stacks.repositories.find((s) => s.node.id === repositoryStackName(config.name, { name }));
  if (!stack) throw new Error(`no repository stack for ${name}`);
  return stack;
}

function projectOf(template: Template): Record<string, unknown> {
  const projects = template.findResources('AWS::CodeBuild::Project');
  const [project, ...others] = Object.values(projects);
  if (!project || others.length > 0) throw new Error('expected exactly one CodeBuild project');
  return project.Properties as Record<string, unknown>;
}

function environmentVariables(template: Template): Record<string, { Type: string; Value: unknown }> {
  const env = (
    projectOf(template).Environment as {
      EnvironmentVariables: { Name: string; Type: string; Value: unknown }[];
    }
  ).EnvironmentVariables;
  return Object.fromEntries(env.map((v) => [v.Name, { Type: v.Type, Value: v.Value }]));
}

describe('GIVEN the sample config', () => {
  const config = sampleConfig();

  test('WHEN the app synthesizes with cdk-nag THEN it passes, build projects included', () => {
    const { app } = buildApp(config, { nag: true });
    expect(() => app.synth()).not.toThrow();
  });

  describe('WHEN the repository stack of shop-api (Backlog, deployed) synthesizes', () => {
    const stack = repositoryStack(config, 'shop-api');
    const template = Template.fromStack(stack);
    const project = projectOf(template);
    const env = environmentVariables(template);

    test('THEN its project has the name the webhook starts, a privileged standard image and the config’s limits', () => {
      expect(project.Name).toBe(buildProjectName('pushline', { name: 'shop-api' }));
      expect(project.Environment).toMatchObject({
        Image: 'aws/codebuild/standard:7.0',
        ComputeType: 'BUILD_GENERAL1_SMALL',
        PrivilegedMode: true,
        Type: 'LINUX_CONTAINER',
      });
      expect(project.TimeoutInMinutes).toBe(30);
      expect(project.ConcurrentBuildLimit).toBe(2);
    });

    test('THEN its only source is the buildspec asset: the application commit is fetched by the build', () => {
      expect(project.Source).toMatchObject({ Type: 'S3' });
      expect((project.Source as Record<string, unknown>).BuildSpec).toBeUndefined();
      expect(project.Artifacts).toEqual({ Type: 'NO_ARTIFACTS' });
    });

    test('THEN logs go to its own log group with the configured retention', () => {
      template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
      expect(project.LogsConfig).toMatchObject({ CloudWatchLogs: { Status: 'ENABLED' } });
    });

    test('THEN the deploy key comes from Secrets Manager and the deploy templates from SSM, never in plain text', () => {
      expect(env.GIT_SSH_KEY?.Type).toBe('SECRETS_MANAGER');
      expect(env.TASKDEF_TEMPLATE).toEqual({
        Type: 'PARAMETER_STORE',
        Value: deployTemplateParameterName('pushline', { name: 'shop-api' }, 'taskdef'),
      });
      expect(env.APPSPEC_TEMPLATE).toEqual({
        Type: 'PARAMETER_STORE',
        Value: deployTemplateParameterName('pushline', { name: 'shop-api' }, 'appspec'),
      });
      expect(env.ARTIFACT_KEY?.Value).toBe(artifactKey({ name: 'shop-api' }));
      expect(env.CACHE_TAG?.Value).toBe('buildcache');
    });

    test('THEN the stack makes the deploy-key secret, named for the README’s instructions', () => {
      template.hasResourceProperties('AWS::SecretsManager::Secret', {
        Name: 'pushline/shop-api/git-ssh-key',
        Description: Match.stringLikeRegexp('README, Builds'),
      });
    });

    test('THEN synth warns that the Backlog preset pins no host key yet, rather than trusting one', () => {
      Annotations.fromStack(stack).hasWarning(
        '*',
        Match.stringLikeRegexp('preset backlog-jp has no host key'),
      );
      expect(env.GIT_KNOWN_HOSTS).toBeUndefined();
    });
  });

  test('WHEN shop-web (GitHub, not deployed) synthesizes THEN it pins GitHub’s keys and reads no deploy templates', () => {
    const env = environmentVariables(Template.fromStack(repositoryStack(config, 'shop-web')));
    expect(env.GIT_KNOWN_HOSTS?.Value).toBe(KNOWN_HOSTS_PRESET_LINES.github.join('\n'));
    expect(env.TASKDEF_TEMPLATE).toBeUndefined();
    expect(env.APPSPEC_TEMPLATE).toBeUndefined();
  });

  test('WHEN tools/batch (GitLab, two platforms) synthesizes THEN both platforms reach the build', () => {
    const env = environmentVariables(Template.fromStack(repositoryStack(config, 'tools/batch')));
    expect(env.DOCKER_PLATFORMS?.Value).toBe('linux/amd64,linux/arm64');
    expect(env.GIT_KNOWN_HOSTS?.Value).toBe(KNOWN_HOSTS_PRESET_LINES.gitlab.join('\n'));
  });

  test('WHEN tools/batch (a name with "/") synthesizes THEN its stack prints the artifact key its build writes', () => {
    const template = Template.fromStack(repositoryStack(config, 'tools/batch'));
    template.hasOutput('ArtifactKey', { Value: 'artifacts/tools-batch/deploy.zip' });
    expect(environmentVariables(template).ARTIFACT_KEY?.Value).toBe('artifacts/tools-batch/deploy.zip');
  });
});

const TWO_REPOSITORIES = `
webhook: { allowedCidrs: [github-hooks] }
pullThroughCache:
  - { prefix: docker-hub, upstream: docker-hub, credentialSecretName: ecr-pullthroughcache/docker-hub }
repositories:
  - name: shop-api
    source: { provider: github, repository: example/shop-api, cloneUrl: "git@github.com:example/shop-api.git" }
    docker:
      secrets: [{ id: npm_token, secretName: shop-api/npm-token }]
    deploy: { containerPort: 80 }
  - name: shop-web
    source: { provider: github, repository: example/shop-web, cloneUrl: "git@github.com:example/shop-web.git", sshKeySecretName: shared/web-deploy-key }
    deploy: { containerPort: 80 }
`;

describe('GIVEN two repositories, a build secret and a Docker Hub pull-through cache', () => {
  const config = parseConfig(TWO_REPOSITORIES);
  const stack = repositoryStack(config, 'shop-api', true);
  const template = Template.fromStack(stack);
  const policy = buildRolePolicy(template);
  const role = `arn:aws:iam::${ACCOUNT}:role/shop-api-build`;
  const ecr = (repo: string) => `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/${repo}`;
  const ssm = (name: string) => `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter${name}`;
  const secret = (name: string) => `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name}-AbCdEf`;
  const decide = (action: string, resource: string) => simulate(policy, role, action, resource);

  test('WHEN the build pushes THEN it may push to its own repository and to no other', async () => {
    for (const action of ['ecr:PutImage', 'ecr:InitiateLayerUpload', 'ecr:BatchGetImage']) {
      expect(await decide(action, ecr('shop-api'))).toBe('Allowed');
      expect(await decide(action, ecr('shop-web'))).toBe('ImplicitlyDenied');
    }
    expect(await decide('ecr:DeleteRepository', ecr('shop-api'))).toBe('ImplicitlyDenied');
    expect(await decide('ecr:SetRepositoryPolicy', ecr('shop-api'))).toBe('ImplicitlyDenied');
  });

  test('WHEN the build writes its artifact THEN only its own key is writable and readable (to compare pushes), no other', async () => {
    const own = `${ARTIFACT_BUCKET_ARN}/${artifactKey({ name: 'shop-api' })}`;
    expect(await decide('s3:PutObject', own)).toBe('Allowed');
    expect(await decide('s3:PutObject', `${ARTIFACT_BUCKET_ARN}/${artifactKey({ name: 'shop-web' })}`)).toBe(
      'ImplicitlyDenied',
    );
    expect(await decide('s3:GetObject', own)).toBe('Allowed');
    expect(await decide('s3:GetObject', `${ARTIFACT_BUCKET_ARN}/${artifactKey({ name: 'shop-web' })}`)).toBe(
      'ImplicitlyDenied',
    );
    expect(await decide('s3:DeleteObject', own)).toBe('ImplicitlyDenied');
  });

  test('WHEN the build reads secrets THEN it gets its own deploy key and build secret, not another repository’s', async () => {
    expect(await decide('secretsmanager:GetSecretValue', secret('pushline/shop-api/git-ssh-key'))).toBe(
      'Allowed',
    );
    expect(await decide('secretsmanager:GetSecretValue', secret('shop-api/npm-token'))).toBe('Allowed');
    expect(await decide('secretsmanager:GetSecretValue', secret('shared/web-deploy-key'))).toBe(
      'ImplicitlyDenied',
    );
    expect(await decide('secretsmanager:GetSecretValue', secret('pushline/shop-web/git-ssh-key'))).toBe(
      'ImplicitlyDenied',
    );
  });

  test('WHEN the build reads deploy templates THEN exactly its two parameters are readable', async () => {
    for (const template of ['taskdef', 'appspec'] as const) {
      expect(
        await decide(
          'ssm:GetParameters',
          ssm(deployTemplateParameterName('pushline', { name: 'shop-api' }, template)),
        ),
      ).toBe('Allowed');
      expect(
        await decide(
          'ssm:GetParameters',
          ssm(deployTemplateParameterName('pushline', { name: 'shop-web' }, template)),
        ),
      ).toBe('ImplicitlyDenied');
    }
  });

  test('WHEN a Dockerfile pulls through the cache THEN ECR may create and fill repositories under the prefix only', async () => {
    expect(await decide('ecr:CreateRepository', ecr('docker-hub/library/node'))).toBe('Allowed');
    expect(await decide('ecr:BatchImportUpstreamImage', ecr('docker-hub/library/node'))).toBe('Allowed');
    expect(await decide('ecr:CreateRepository', ecr('shop-web-copy'))).toBe('ImplicitlyDenied');
    const env = environmentVariables(template);
    expect(env.PULL_THROUGH_REGISTRY?.Value).toBeDefined();
    expect(env.BUILD_SECRET_IDS?.Value).toBe('npm_token');
    expect(env.BUILD_SECRET_0).toEqual({ Type: 'SECRETS_MANAGER', Value: 'shop-api/npm-token' });
  });
});

/** The build role's policy with CloudFormation's intrinsics resolved for ACCOUNT/REGION. */
function buildRolePolicy(template: Template): unknown {
  const policies = template.findResources('AWS::IAM::Policy', {
    Properties: { Roles: [{ Ref: Match.stringLikeRegexp('^BuildProjectRole') }] },
  });
  const [only, ...others] = Object.values(policies);
  if (!only || others.length > 0) throw new Error('expected exactly one policy on the build role');
  const json = template.toJSON() as {
    Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
  };
  const refs: Record<string, string> = {
    'AWS::AccountId': ACCOUNT,
    'AWS::Region': REGION,
    'AWS::Partition': 'aws',
    'AWS::URLSuffix': 'amazonaws.com',
  };
  const attributes: Record<string, string> = {};
  for (const [id, resource] of Object.entries(json.Resources)) {
    if (resource.Type === 'AWS::SecretsManager::Secret') {
      refs[id] =
        `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${String(resource.Properties?.Name)}-AbCdEf`;
    }
    if (resource.Type === 'AWS::ECR::Repository') {
      attributes[`${id}.Arn`] =
        `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/${String(resource.Properties?.RepositoryName)}`;
    }
    if (resource.Type === 'AWS::CodeBuild::Project') refs[id] = String(resource.Properties?.Name);
    if (resource.Type === 'AWS::Logs::LogGroup')
      attributes[`${id}.Arn`] = `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:build:*`;
  }
  const resolve = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(resolve);
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value as Record<string, unknown>);
    const [first] = entries;
    if (entries.length === 1 && first) {
      const [name, arg] = first;
      if (name === 'Ref') return refs[String(arg)] ?? fail(`Ref ${String(arg)}`);
      if (name === 'Fn::GetAtt')
        return attributes[(arg as string[]).join('.')] ?? fail(`GetAtt ${String(arg)}`);
      if (name === 'Fn::Join')
        return (resolve((arg as [string, unknown[]])[1]) as unknown[]).join((arg as [string])[0]);
      if (name === 'Fn::Sub')
        return String(arg).replace(/\$\{([^}]+)\}/g, (_, key: string) => refs[key] ?? fail(`Sub ${key}`));
      if (name === 'Fn::ImportValue') {
        if (String(arg).includes('ArtifactsBucket')) return ARTIFACT_BUCKET_ARN;
        return fail(`ImportValue ${String(arg)}`);
      }
    }
    return Object.fromEntries(entries.map(([k, v]) => [k, resolve(v)]));
  };
  return resolve((only.Properties as { PolicyDocument: unknown }).PolicyDocument);
}

function fail(what: string): never {
  throw new Error(`cannot resolve ${what} in the build role's policy`);
}

async function simulate(
  policy: unknown,
  principal: string,
  action: string,
  resource: string,
): Promise<string> {
  const simulation = {
    request: {
      principal,
      action,
      resource: { resource, accountId: ACCOUNT },
      contextVariables: {},
    },
    identityPolicies: [{ name: 'build', policy }],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
  } as unknown as Simulation; // the library types policies as its own literal shapes; this one is plain JSON
  const result = await runSimulation(simulation, {});
  if (result.resultType === 'error') throw new Error(`simulator: ${JSON.stringify(result.errors)}`);
  return String(result.overallResult);
}
