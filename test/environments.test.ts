import { join } from 'node:path';
import type { App, CfnElement } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { loadConfig } from '../lib/config/load';
import type { PipelineConfig } from '../lib/config/schema';
import { deployTemplateParameterName } from '../lib/resource-names';
import { buildApp, ROOT } from './support/app';
import { problemsOf } from './support/config';
import {
  onlyResource,
  type PolicyDocument,
  resolveIntrinsics,
  simulate,
  type TemplateJson,
} from './support/iam-simulation';

const FIXTURE = join(ROOT, 'test', 'fixtures', 'config', 'environments.yaml');
const REPOSITORY = [
  'webhook: { allowedCidrs: [github-hooks] }',
  'repositories:',
  '  - name: shop/api',
  '    source: { provider: github, repository: example-org/shop-api, cloneUrl: "git@github.com:example-org/shop-api.git" }',
  '    deploy:',
  '      containerPort: 8080',
].join('\n');

function withEnvironments(yaml: string): string {
  return `${REPOSITORY}\n      environments:\n${yaml
    .split('\n')
    .map((line) => `        ${line}`)
    .join('\n')}\n`;
}

/** The construct paths cdk-nag reports (none when synthesis passes). */
function nagFindings(app: App): string[] {
  try {
    app.synth();
    return [];
  } catch (err) {
    return [...String((err as Error).message).matchAll(/^\s+(\S+\/\S+) aws-cdk-lib\./gm)].map(
      (m) => m[1] ?? '',
    );
  }
}

function withEnv(config: PipelineConfig): PipelineConfig {
  return { ...config, env: { account: '111122223333', region: 'ap-northeast-1' } };
}

describe('deploy.environments in the config', () => {
  test('GIVEN two environments named alike THEN the validator names the second', () => {
    expect(problemsOf(withEnvironments('- name: staging\n- name: staging'))).toContainEqual(
      expect.stringMatching(
        /^repositories\[0\]\.deploy\.environments\[1\]\.name: duplicates environments\[0\]\.name/,
      ),
    );
  });

  test('GIVEN an approval on the first environment THEN the validator says there is nothing before it', () => {
    expect(problemsOf(withEnvironments('- name: staging\n  approval: true'))).toContainEqual(
      expect.stringMatching(
        /^repositories\[0\]\.deploy\.environments\[0\]\.approval: the first environment has nothing before it/,
      ),
    );
  });

  test('GIVEN an account of 11 digits THEN the validator names the field and the value', () => {
    expect(
      problemsOf(withEnvironments('- name: staging\n- name: production\n  account: "12345678901"')),
    ).toContainEqual(
      'repositories[0].deploy.environments[1].account: must be a 12-digit AWS account ID in quotes (got "12345678901")',
    );
  });

  test('GIVEN an environment in another account but no env THEN the validator asks for the installation’s account', () => {
    expect(
      problemsOf(withEnvironments('- name: staging\n- name: production\n  account: "222233334444"')),
    ).toContainEqual(
      expect.stringMatching(
        /^repositories\[0\]\.deploy\.environments\[1\]\.account: an environment in another account needs env\.account and env\.region/,
      ),
    );
  });

  test('GIVEN an override of a setting that is not per environment THEN the validator lists what may be overridden', () => {
    expect(problemsOf(withEnvironments('- name: staging\n  containerPort: 9090'))).toContainEqual(
      expect.stringMatching(
        /^repositories\[0\]\.deploy\.environments\[0\]\.containerPort: is not a per-environment setting: .*overrides of desiredCount, cpu, memory, environment, secrets, trafficShift, certificateArn, vpc, testListenerCidrs \(got 9090\)/,
      ),
    );
  });
});

describe.each([
  ['without env', (c: PipelineConfig) => c],
  ['with env', withEnv],
])('a repository with staging and production (%s)', (_, configure) => {
  const config = configure(loadConfig(FIXTURE));
  const nagged = buildApp(config, { nag: true });
  const { stacks } = buildApp(config);

  test('WHEN synthesized with cdk-nag THEN no rule fails in the service and pipeline stacks', () => {
    // The build stack's acknowledgements under a concrete env are issue 11's (item 1), not this one's.
    const ours = [...nagged.stacks.services, ...nagged.stacks.pipelines].map((s) => `${s.stackName}/`);
    expect(nagFindings(nagged.app).filter((path) => ours.some((prefix) => path.startsWith(prefix)))).toEqual(
      [],
    );
  });

  test('THEN each environment gets its own service stack and the repository one pipeline stack', () => {
    expect(stacks.services.map((s) => s.stackName)).toEqual([
      'pushline-service-shop-api-staging',
      'pushline-service-shop-api-production',
    ]);
    expect(stacks.pipelines.map((s) => s.stackName)).toEqual(['pushline-pipeline-shop-api']);
    for (const service of stacks.services) {
      Template.fromStack(service).resourceCountIs('AWS::CodePipeline::Pipeline', 0);
    }
  });

  test('THEN the pipeline runs Source, staging, then an announced approval and production, reading each environment’s templates', () => {
    const pipelineStack = stacks.pipelines[0];
    if (!pipelineStack) throw new Error('no pipeline stack');
    const template = Template.fromStack(pipelineStack);
    const topic = Object.keys(template.findResources('AWS::SNS::Topic'))[0];
    const deploy = (environment: string, runOrder: number) =>
      Match.objectLike({
        Name: 'BlueGreen',
        RunOrder: runOrder,
        ActionTypeId: Match.objectLike({ Provider: 'CodeDeployToECS' }),
        Configuration: Match.objectLike({
          TaskDefinitionTemplatePath: `taskdef-${environment}.json`,
          AppSpecTemplatePath: `appspec-${environment}.yaml`,
          Image1ArtifactName: 'DeployArtifact',
        }),
      });
    template.hasResourceProperties('AWS::CodePipeline::Pipeline', {
      Stages: [
        Match.objectLike({ Name: 'Source' }),
        { Name: 'Deploy-staging', Actions: [deploy('staging', 1)] },
        {
          Name: 'Deploy-production',
          Actions: [
            Match.objectLike({
              Name: 'Approve',
              RunOrder: 1,
              ActionTypeId: Match.objectLike({ Category: 'Approval', Provider: 'Manual' }),
              Configuration: Match.objectLike({ NotificationArn: { Ref: topic } }),
            }),
            deploy('production', 2),
          ],
        },
      ],
    });
  });

  test('THEN each environment’s deploy action has its own role, allowed to deploy only that environment', () => {
    const pipelineStack = stacks.pipelines[0];
    if (!pipelineStack) throw new Error('no pipeline stack');
    const roles = pipelineStack.pipeline.deployRoles.map((role) => pipelineStack.resolve(role.roleArn));
    expect(new Set(roles.map((r) => JSON.stringify(r))).size).toBe(2);
    const template = Template.fromStack(pipelineStack);
    const stages = (
      Object.values(template.findResources('AWS::CodePipeline::Pipeline'))[0] as {
        Properties: { Stages: { Name: string; Actions: { Name: string; RoleArn?: unknown }[] }[] };
      }
    ).Properties.Stages;
    const actionRole = (stage: string) =>
      stages.find((s) => s.Name === stage)?.Actions.find((a) => a.Name === 'BlueGreen')?.RoleArn;
    expect([actionRole('Deploy-staging'), actionRole('Deploy-production')]).toEqual(roles);
  });

  test('THEN each environment’s service has its own settings and publishes its own templates', () => {
    const [staging, production] = stacks.services.map((s) => Template.fromStack(s));
    staging?.hasResourceProperties('AWS::ECS::Service', { DesiredCount: 1 });
    production?.hasResourceProperties('AWS::ECS::Service', { DesiredCount: 4 });
    production?.hasResourceProperties('AWS::ECS::TaskDefinition', {
      Cpu: '512',
      Memory: '1024',
      Family: 'pushline-shop-api-production',
    });
    for (const [template, environment] of [
      [staging, 'staging'],
      [production, 'production'],
    ] as const) {
      for (const kind of ['taskdef', 'appspec'] as const) {
        template?.hasResourceProperties('AWS::SSM::Parameter', {
          Name: deployTemplateParameterName('pushline', { name: 'shop/api' }, kind, environment),
        });
      }
    }
  });

  test('THEN the build reads every environment’s templates, by position', () => {
    const build = Template.fromStack(stacks.repositories[0] as NonNullable<(typeof stacks.repositories)[0]>);
    const project = Object.values(build.findResources('AWS::CodeBuild::Project'))[0] as {
      Properties: { Environment: { EnvironmentVariables: { Name: string; Value: string; Type: string }[] } };
    };
    const variables = Object.fromEntries(
      project.Properties.Environment.EnvironmentVariables.map((v) => [v.Name, v]),
    );
    expect(variables.DEPLOY_ENVIRONMENTS?.Value).toBe('staging production');
    expect(variables.TASKDEF_TEMPLATE_1).toEqual({
      Name: 'TASKDEF_TEMPLATE_1',
      Type: 'PARAMETER_STORE',
      Value: deployTemplateParameterName('pushline', { name: 'shop/api' }, 'taskdef', 'production'),
    });
    expect(variables.TASKDEF_TEMPLATE).toBeUndefined();
  });
});

describe('deploy.validation', () => {
  const { stacks } = buildApp(loadConfig(FIXTURE));
  const staging = stacks.services[0];
  if (!staging) throw new Error('no staging stack');
  const template = Template.fromStack(staging);
  const hook = Object.keys(template.findResources('AWS::Lambda::Function')).find((id) =>
    id.startsWith('Validation'),
  );

  test('GIVEN validation THEN the AppSpec runs the hook function after test traffic is allowed', () => {
    expect(hook).toBeDefined();
    const appspec = Object.values(
      template.findResources('AWS::SSM::Parameter', {
        Properties: {
          Name: deployTemplateParameterName('pushline', { name: 'shop/api' }, 'appspec', 'staging'),
        },
      }),
    )[0] as { Properties: { Value: unknown } };
    expect(JSON.stringify(appspec.Properties.Value)).toContain('Hooks:\\n  - AfterAllowTestTraffic: \\"');
    expect(JSON.stringify(appspec.Properties.Value)).toContain(`"${hook}","Arn"`);
  });

  test('GIVEN validation THEN the hook runs in the service VPC, calls the test listener path, and may report only on this deployment group', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      VpcConfig: Match.objectLike({ SubnetIds: Match.anyValue() }),
      Environment: {
        Variables: {
          TEST_URL: { 'Fn::Join': ['', ['http://', Match.anyValue(), ':8080/health']] },
          EXPECT_STATUS: '200',
          TIMEOUT_MS: '20000',
        },
      },
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Action: 'codedeploy:PutLifecycleEventHookExecutionStatus',
            Effect: 'Allow',
            Resource: Match.anyValue(),
          },
        ]),
      },
    });
    const deploymentGroupRole = Object.keys(template.findResources('AWS::IAM::Role')).find((id) =>
      id.includes('DeploymentGroupServiceRole'),
    );
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: deploymentGroupRole }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'lambda:InvokeFunction',
            Resource: { 'Fn::GetAtt': [hook, 'Arn'] },
          }),
        ]),
      },
    });
  });

  test('GIVEN validation and an HTTPS certificate THEN synthesis stops, naming both', () => {
    const config = loadConfig(FIXTURE);
    const repository = config.repositories[0];
    const deploy = repository?.deploy;
    if (!repository || !deploy) throw new Error('fixture changed');
    const https = {
      ...config,
      repositories: [
        {
          ...repository,
          deploy: {
            ...deploy,
            certificateArn:
              'arn:aws:acm:ap-northeast-1:111122223333:certificate/0a1b2c3d-1111-2222-3333-444455556666',
          },
        },
      ],
    };
    expect(() => buildApp(https)).toThrow(/deploy\.validation cannot check an HTTPS test listener/);
  });
});

describe('production in another account (staging here, approval, validation)', () => {
  const config = loadConfig(join(ROOT, 'test', 'fixtures', 'config', 'environments-cross-account.yaml'));
  const nagged = buildApp(config, { nag: true });
  const { stacks } = buildApp(config);
  const [staging, production] = stacks.services;
  const pipelineStack = stacks.pipelines[0];
  const repositoryStack = stacks.repositories[0];
  if (!staging || !production || !pipelineStack || !repositoryStack) throw new Error('stacks missing');
  const PIPELINE_ACCOUNT = '111122223333';
  const TARGET_ACCOUNT = '444455556666';
  const THIRD_ACCOUNT = '777788889999';
  const pipelineTemplate = Template.fromStack(pipelineStack).toJSON() as TemplateJson;
  const productionTemplate = Template.fromStack(production).toJSON() as TemplateJson;
  const deployRoleArn: unknown = pipelineStack.resolve(production.pipelineDeployRole?.roleArn);

  test('WHEN synthesized with cdk-nag THEN no rule fails in the service and pipeline stacks', () => {
    const ours = [...nagged.stacks.services, ...nagged.stacks.pipelines].map((s) => `${s.stackName}/`);
    expect(nagFindings(nagged.app).filter((path) => ours.some((prefix) => path.startsWith(prefix)))).toEqual(
      [],
    );
  });

  test('THEN production deploys to its account, with a deploy role there trusting the pipeline account', () => {
    expect([staging.account, production.account, pipelineStack.account]).toEqual([
      PIPELINE_ACCOUNT,
      TARGET_ACCOUNT,
      PIPELINE_ACCOUNT,
    ]);
    expect(staging.pipelineDeployRole).toBeUndefined();
    expect(JSON.stringify(deployRoleArn)).toContain(`:iam::${TARGET_ACCOUNT}:role/`);
    Template.fromStack(production).hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          Match.objectLike({
            Principal: {
              AWS: {
                'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:iam::${PIPELINE_ACCOUNT}:root`]],
              },
            },
          }),
        ],
      },
    });
  });

  test('THEN the pipeline’s production action assumes that role, and its artifact store is KMS-encrypted', () => {
    const pipeline = onlyResource(pipelineTemplate, 'AWS::CodePipeline::Pipeline').properties as {
      Stages: { Name: string; Actions: { Name: string; RoleArn?: unknown }[] }[];
      ArtifactStore: { EncryptionKey?: unknown };
    };
    const action = pipeline.Stages.find((s) => s.Name === 'Deploy-production')?.Actions.find(
      (a) => a.Name === 'BlueGreen',
    );
    expect(JSON.stringify(action?.RoleArn)).toContain(`:iam::${TARGET_ACCOUNT}:role/`);
    expect(pipeline.ArtifactStore.EncryptionKey).toEqual(expect.objectContaining({ Type: 'KMS' }));
  });

  test('THEN the topic is told of failed staging deployments; production’s CodeDeploy events stay in its account, so no rule here pretends to watch them', () => {
    const codedeployRules = Object.values(pipelineTemplate.Resources ?? {}).filter(
      (r) =>
        r.Type === 'AWS::Events::Rule' &&
        JSON.stringify(r.Properties?.EventPattern).includes('aws.codedeploy'),
    );
    expect(codedeployRules).toHaveLength(1);
    expect(JSON.stringify(codedeployRules[0]?.Properties?.EventPattern)).toContain(staging.stackName);
  });

  test('THEN the build finds production’s templates in the pipeline account, naming production’s roles', () => {
    const parameters = Object.values(pipelineTemplate.Resources ?? {})
      .filter((r) => r.Type === 'AWS::SSM::Parameter')
      .map((r) => r.Properties as { Name: string; Value: unknown });
    const taskdef = parameters.find(
      (p) =>
        p.Name === deployTemplateParameterName('pushline', { name: 'shop/api' }, 'taskdef', 'production'),
    );
    expect(JSON.stringify(taskdef?.Value)).toContain(`:iam::${TARGET_ACCOUNT}:role/`);
    Template.fromStack(production).resourceCountIs('AWS::SSM::Parameter', 0);
  });

  const simulationTarget = (template: TemplateJson, account: string) => ({
    partition: 'aws',
    region: 'ap-northeast-1',
    account,
    refs: Object.fromEntries(Object.keys(template.Resources ?? {}).map((id) => [id, `ref-${id}`])),
    attributes: Object.fromEntries(
      Object.keys(template.Resources ?? {}).flatMap((id) => [
        [`${id}.Arn`, `arn:aws:s3:::${id.toLowerCase()}`],
      ]),
    ),
  });

  test('THEN, evaluated as IAM would, production’s deploy role may read the artifact store and a third account may not', async () => {
    const target = simulationTarget(pipelineTemplate, PIPELINE_ACCOUNT);
    const store = Object.keys(pipelineTemplate.Resources ?? {}).find(
      (id) => id.includes('ArtifactStore') && pipelineTemplate.Resources?.[id]?.Type === 'AWS::S3::Bucket',
    );
    const bucketPolicy = Object.values(pipelineTemplate.Resources ?? {}).find(
      (r) =>
        r.Type === 'AWS::S3::BucketPolicy' && JSON.stringify(r.Properties?.Bucket).includes(String(store)),
    );
    const resourcePolicy = resolveIntrinsics(
      bucketPolicy?.Properties?.PolicyDocument,
      target,
    ) as PolicyDocument;
    const roleId = Object.keys(productionTemplate.Resources ?? {}).find(
      (id) =>
        id.startsWith('PipelineDeployRole') && productionTemplate.Resources?.[id]?.Type === 'AWS::IAM::Role',
    );
    const identity = Object.values(productionTemplate.Resources ?? {}).find(
      (r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties?.Roles).includes(String(roleId)),
    );
    const identityPolicy = resolveIntrinsics(
      identity?.Properties?.PolicyDocument,
      simulationTarget(productionTemplate, TARGET_ACCOUNT),
    ) as PolicyDocument;
    const object = {
      arn: `arn:aws:s3:::${String(store).toLowerCase()}/DeployArtifact/abc`,
      account: PIPELINE_ACCOUNT,
    };
    const roleArn = resolveIntrinsics(pipelineStack.resolve(production.pipelineDeployRole?.roleArn), target);

    expect(
      await simulate(resourcePolicy, {
        principal: String(roleArn),
        action: 's3:GetObject',
        resource: object,
        identityPolicy,
        // What IAM sets for a request to a bucket of the pipeline account.
        context: { 'aws:ResourceAccount': PIPELINE_ACCOUNT },
      }),
    ).toBe('Allowed');
    expect(
      await simulate(resourcePolicy, {
        principal: `arn:aws:iam::${THIRD_ACCOUNT}:role/anyone`,
        action: 's3:GetObject',
        resource: object,
      }),
    ).toBe('ImplicitlyDenied');
  });

  test('THEN, evaluated as IAM would, production’s deploy role may start deployments of production’s deployment group and of no other', async () => {
    const target = simulationTarget(productionTemplate, TARGET_ACCOUNT);
    const role = production.pipelineDeployRole;
    if (!role) throw new Error('no deploy role');
    const policy = Object.values(productionTemplate.Resources ?? {}).find(
      (r) =>
        r.Type === 'AWS::IAM::Policy' &&
        JSON.stringify(r.Properties?.Roles).includes(
          production.getLogicalId(role.node.defaultChild as CfnElement),
        ),
    );
    const identityPolicy = resolveIntrinsics(policy?.Properties?.PolicyDocument, target) as PolicyDocument;
    const groupArn = String(
      resolveIntrinsics(production.resolve(production.service.deploymentGroup.deploymentGroupArn), target),
    );
    const noResourcePolicy: PolicyDocument = { Version: '2012-10-17', Statement: [] };
    const createDeployment = (arn: string) =>
      simulate(noResourcePolicy, {
        // The role's own ARN: its policy is the identity policy below.
        principal: `arn:aws:iam::${TARGET_ACCOUNT}:role/pipeline-deploy-role`,
        action: 'codedeploy:CreateDeployment',
        resource: { arn, account: TARGET_ACCOUNT },
        identityPolicy,
      });
    expect(groupArn).toMatch(
      new RegExp(`^arn:aws:codedeploy:ap-northeast-1:${TARGET_ACCOUNT}:deploymentgroup:`),
    );
    expect(await createDeployment(groupArn)).toBe('Allowed');
    expect(await createDeployment(`${groupArn.replace(/\/[^/]+$/, '')}/another-group`)).toBe(
      'ImplicitlyDenied',
    );
  });

  test('THEN, evaluated as IAM would, production’s task execution role may pull the image and a third account may not', async () => {
    const repositoryTemplate = Template.fromStack(repositoryStack).toJSON() as TemplateJson;
    const target = simulationTarget(repositoryTemplate, PIPELINE_ACCOUNT);
    const repository = onlyResource(repositoryTemplate, 'AWS::ECR::Repository');
    const policy = resolveIntrinsics(repository.properties.RepositoryPolicyText, target) as PolicyDocument;
    const executionRoleArn = String(
      resolveIntrinsics(repositoryStack.resolve(production.service.executionRole.roleArn), target),
    );
    const image = {
      arn: `arn:aws:ecr:ap-northeast-1:${PIPELINE_ACCOUNT}:repository/shop/api`,
      account: PIPELINE_ACCOUNT,
    };
    expect(executionRoleArn).toContain(`:iam::${TARGET_ACCOUNT}:role/`);
    const executionRoleTag = String(
      (
        Template.fromStack(production).toJSON().Resources as Record<
          string,
          { Type: string; Properties: { Tags?: { Key: string; Value: string }[]; Description?: string } }
        >
      )[
        Object.keys(productionTemplate.Resources ?? {}).find(
          (id) =>
            id.startsWith('ServiceExecutionRole') &&
            productionTemplate.Resources?.[id]?.Type === 'AWS::IAM::Role',
        ) ?? ''
      ]?.Properties.Tags?.find((t) => t.Key === 'aws-cdk:id')?.Value,
    );
    expect(
      await simulate(policy, {
        principal: executionRoleArn,
        action: 'ecr:BatchGetImage',
        resource: image,
        // CDK's cross-account grant: the account, narrowed to the role by the aws-cdk:id tag CDK puts on it.
        context: { 'aws:PrincipalTag/aws-cdk:id': executionRoleTag },
      }),
    ).toBe('Allowed');
    expect(
      await simulate(policy, {
        principal: `arn:aws:iam::${TARGET_ACCOUNT}:role/another-role`,
        action: 'ecr:BatchGetImage',
        resource: image,
      }),
    ).toBe('ImplicitlyDenied');
    expect(
      await simulate(policy, {
        principal: `arn:aws:iam::${THIRD_ACCOUNT}:role/anyone`,
        action: 'ecr:BatchGetImage',
        resource: image,
      }),
    ).toBe('ImplicitlyDenied');
  });
});
