import { join } from 'node:path';
import type { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { loadConfig } from '../lib/config/load';
import type { PipelineConfig } from '../lib/config/schema';
import { deployTemplateParameterName } from '../lib/resource-names';
import { buildApp, ROOT } from './support/app';
import { problemsOf } from './support/config';

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

  test('GIVEN an environment in another account THEN the validator says that is not built yet, instead of a synthesis error', () => {
    expect(
      problemsOf(withEnvironments('- name: staging\n- name: production\n  account: "222233334444"')),
    ).toContainEqual(
      expect.stringMatching(
        /^repositories\[0\]\.deploy\.environments\[1\]\.account: another account per environment is not built yet/,
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
