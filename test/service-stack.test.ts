import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { parseConfig } from '../lib/config/load';
import type { PipelineConfig, TrafficShift } from '../lib/config/schema';
import { BOOTSTRAP_IMAGE } from '../lib/constructs/blue-green-service';
import { artifactKey } from '../lib/resource-names';
import { ServiceStack } from '../lib/service-stack';
import { buildApp, generatedConfig, ROOT, sampleConfig } from './support/app';
import { type PolicyDocument, resolveIntrinsics, simulate } from './support/iam-simulation';

/** A config with one deployed repository whose `deploy` section is the given YAML flow mapping. */
function deployConfig(deploy: string, repositoryExtra: string[] = []): PipelineConfig {
  return parseConfig(
    [
      'webhook:',
      '  allowedCidrs: [backlog-jp]',
      'repositories:',
      '  - name: shop/api',
      '    source:',
      '      provider: backlog',
      '      repository: SHOP/api',
      '      cloneUrl: example@example.git.backlog.jp:/SHOP/api.git',
      `    deploy: ${deploy}`,
      ...repositoryExtra.map((line) => `    ${line}`),
      '',
    ].join('\n'),
  );
}

const CDK_CONTEXT = (JSON.parse(readFileSync(join(ROOT, 'cdk.json'), 'utf8')) as { context: object }).context;

/**
 * The service stack of a config's first deployed repository, next to a stand-in for the bucket and
 * the registry it is given: options of the service need neither the webhook nor the build.
 */
function serviceStack(config: PipelineConfig): ServiceStack {
  const repository = config.repositories.find((r) => r.deploy !== undefined);
  if (!repository) throw new Error('no deployed repository');
  const app = new App({ context: CDK_CONTEXT });
  const upstream = new Stack(app, 'Upstream');
  return new ServiceStack(app, 'Service', {
    config,
    repository,
    artifactBucket: new s3.Bucket(upstream, 'Artifacts', { versioned: true, eventBridgeEnabled: true }),
    imageRepository: new ecr.Repository(upstream, 'Images'),
  });
}

interface Resource {
  Type: string;
  Properties: Record<string, unknown>;
}

function resources(template: Template, type: string): [string, Resource][] {
  return Object.entries(template.toJSON().Resources as Record<string, Resource>).filter(
    ([, r]) => r.Type === type,
  );
}

function logicalIdOf(template: Template, type: string, pathPart: string): string {
  const found = Object.entries(template.findResources(type)).find(([id]) => id.includes(pathPart));
  if (!found) throw new Error(`no ${type} with ${pathPart}`);
  return found[0];
}

describe('the service stack of a deployed repository', () => {
  const sample = sampleConfig();
  const { stacks } = buildApp(sample);
  const stack = stacks.services[0] as ServiceStack;
  const template = Template.fromStack(stack);
  const blue = logicalIdOf(template, 'AWS::ElasticLoadBalancingV2::TargetGroup', 'Blue');
  const green = logicalIdOf(template, 'AWS::ElasticLoadBalancingV2::TargetGroup', 'Green');

  test('GIVEN the sample config THEN only the repository with a deploy section gets a service stack', () => {
    expect(stacks.services.map((s) => s.stackName)).toEqual(['pushline-service-shop-api']);
  });

  test('THEN the production listener sends traffic to the blue target group and the test listener to the green one', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 80,
      Protocol: 'HTTP',
      DefaultActions: [{ Type: 'forward', TargetGroupArn: { Ref: blue } }],
    });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 8080,
      Protocol: 'HTTP',
      DefaultActions: [{ Type: 'forward', TargetGroupArn: { Ref: green } }],
    });
    for (const [, targetGroup] of resources(template, 'AWS::ElasticLoadBalancingV2::TargetGroup')) {
      expect(targetGroup.Properties).toMatchObject({
        Port: 80,
        Protocol: 'HTTP',
        TargetType: 'ip',
        HealthCheckPath: '/',
      });
    }
    template.hasResourceProperties('AWS::ECS::Service', {
      DeploymentController: { Type: 'CODE_DEPLOY' },
      DesiredCount: 2,
      LoadBalancers: [{ ContainerName: 'app', ContainerPort: 80, TargetGroupArn: { Ref: blue } }],
    });
    template.hasResourceProperties('AWS::CodeDeploy::DeploymentGroup', {
      DeploymentStyle: { DeploymentType: 'BLUE_GREEN', DeploymentOption: 'WITH_TRAFFIC_CONTROL' },
      LoadBalancerInfo: {
        TargetGroupPairInfoList: [
          {
            TargetGroups: [
              { Name: { 'Fn::GetAtt': [blue, 'TargetGroupName'] } },
              { Name: { 'Fn::GetAtt': [green, 'TargetGroupName'] } },
            ],
            ProdTrafficRoute: { ListenerArns: [{ Ref: Match.stringLikeRegexp('ProductionListener') }] },
            TestTrafficRoute: { ListenerArns: [{ Ref: Match.stringLikeRegexp('TestListener') }] },
          },
        ],
      },
    });
  });

  test('THEN the test listener port is reachable only from the VPC (the shared one, imported from the network stack), while the production port is public', () => {
    const [[, loadBalancerGroup] = []] = resources(template, 'AWS::EC2::SecurityGroup').filter(([id]) =>
      id.includes('LoadBalancerSecurityGroup'),
    );
    const ingress = (loadBalancerGroup?.Properties.SecurityGroupIngress ?? []) as Record<string, unknown>[];
    expect(ingress.filter((rule) => rule.FromPort === 8080)).toEqual([
      expect.objectContaining({ CidrIp: stack.resolve(stack.service.vpc.vpcCidrBlock) }),
    ]);
    expect(JSON.stringify(stack.resolve(stack.service.vpc.vpcCidrBlock))).toContain('Fn::ImportValue');
    expect(ingress.filter((rule) => rule.FromPort === 80)).toEqual([
      expect.objectContaining({ CidrIp: '0.0.0.0/0' }),
    ]);
  });

  test('THEN a deployment rolls back when it fails or when the 5xx-rate or unhealthy-host alarm of either target group fires', () => {
    const alarms = resources(template, 'AWS::CloudWatch::Alarm');
    const group = resources(template, 'AWS::CodeDeploy::DeploymentGroup')[0]?.[1];
    expect(group?.Properties.AutoRollbackConfiguration).toEqual({
      Enabled: true,
      Events: expect.arrayContaining(['DEPLOYMENT_FAILURE', 'DEPLOYMENT_STOP_ON_ALARM']),
    });
    expect(group?.Properties.AlarmConfiguration).toEqual({
      Enabled: true,
      Alarms: alarms.map(([id]) => ({ Name: { Ref: id } })),
    });
    const watched = alarms.map(([, alarm]) => {
      const metrics = (alarm.Properties.Metrics ?? []) as {
        MetricStat?: { Metric: Record<string, unknown> };
      }[];
      const names = [
        alarm.Properties.MetricName,
        ...metrics.map((m) => m.MetricStat?.Metric.MetricName),
      ].filter(Boolean);
      const dimensions = JSON.stringify(alarm.Properties.Dimensions ?? metrics);
      return {
        names,
        targetGroup: dimensions.includes(blue) ? 'blue' : dimensions.includes(green) ? 'green' : '?',
      };
    });
    expect(watched).toEqual(
      expect.arrayContaining([
        { names: ['HTTPCode_Target_5XX_Count', 'RequestCount'], targetGroup: 'blue' },
        { names: ['HTTPCode_Target_5XX_Count', 'RequestCount'], targetGroup: 'green' },
        { names: ['UnHealthyHostCount'], targetGroup: 'blue' },
        { names: ['UnHealthyHostCount'], targetGroup: 'green' },
      ]),
    );
    expect(group?.Properties.BlueGreenDeploymentConfiguration).toMatchObject({
      TerminateBlueInstancesOnDeploymentSuccess: { Action: 'TERMINATE', TerminationWaitTimeInMinutes: 15 },
    });
  });

  test.each<[TrafficShift, string]>([
    ['all-at-once', 'CodeDeployDefault.ECSAllAtOnce'],
    ['canary-10-5m', 'CodeDeployDefault.ECSCanary10Percent5Minutes'],
    ['canary-10-15m', 'CodeDeployDefault.ECSCanary10Percent15Minutes'],
    ['linear-10-1m', 'CodeDeployDefault.ECSLinear10PercentEvery1Minutes'],
    ['linear-10-3m', 'CodeDeployDefault.ECSLinear10PercentEvery3Minutes'],
  ])('GIVEN trafficShift %s THEN CodeDeploy uses %s', (trafficShift, deploymentConfig) => {
    const shifted = Template.fromStack(
      serviceStack(
        deployConfig(`{ containerPort: 80, trafficShift: ${trafficShift}, terminationWaitMinutes: 5 }`),
      ),
    );
    shifted.hasResourceProperties('AWS::CodeDeploy::DeploymentGroup', {
      DeploymentConfigName: deploymentConfig,
      BlueGreenDeploymentConfiguration: {
        TerminateBlueInstancesOnDeploymentSuccess: { TerminationWaitTimeInMinutes: 5 },
      },
    });
  });

  test('THEN the pipeline starts only on an Object Created event for exactly this repository artifact key', () => {
    const rules = resources(template, 'AWS::Events::Rule').filter(
      ([, rule]) => (rule.Properties.EventPattern as { source?: string[] }).source?.[0] === 'aws.s3',
    );
    expect(rules).toHaveLength(1);
    expect(rules[0]?.[1].Properties.EventPattern).toEqual({
      source: ['aws.s3'],
      'detail-type': ['Object Created'],
      detail: {
        bucket: { name: [{ 'Fn::ImportValue': expect.stringContaining('pushline-shared') }] },
        object: { key: ['artifacts/shop-api/deploy.zip'] },
      },
    });
    expect(rules[0]?.[1].Properties.Targets).toEqual([
      expect.objectContaining({ Arn: expect.objectContaining({ 'Fn::Join': expect.anything() }) }),
    ]);
    expect(artifactKey({ name: 'shop-api' })).toBe('artifacts/shop-api/deploy.zip');
  });

  test('THEN the pipeline is V2 with an S3 source that does not poll, then the CodeDeploy ECS action reading the artifact files', () => {
    template.hasResourceProperties('AWS::CodePipeline::Pipeline', {
      PipelineType: 'V2',
      Stages: [
        {
          Name: 'Source',
          Actions: [
            Match.objectLike({
              ActionTypeId: { Category: 'Source', Owner: 'AWS', Provider: 'S3', Version: '1' },
              Configuration: {
                S3Bucket: { 'Fn::ImportValue': Match.stringLikeRegexp('pushline-shared') },
                S3ObjectKey: 'artifacts/shop-api/deploy.zip',
                PollForSourceChanges: false,
              },
              OutputArtifacts: [{ Name: 'DeployArtifact' }],
            }),
          ],
        },
        {
          Name: 'Deploy',
          Actions: [
            Match.objectLike({
              ActionTypeId: { Category: 'Deploy', Owner: 'AWS', Provider: 'CodeDeployToECS', Version: '1' },
              Configuration: Match.objectLike({
                TaskDefinitionTemplateArtifact: 'DeployArtifact',
                TaskDefinitionTemplatePath: 'taskdef.json',
                AppSpecTemplateArtifact: 'DeployArtifact',
                AppSpecTemplatePath: 'appspec.yaml',
                Image1ArtifactName: 'DeployArtifact',
                Image1ContainerName: 'IMAGE1_NAME',
              }),
            }),
          ],
        },
      ],
    });
  });

  test('THEN iam:PassRole is granted only on the task and execution roles, and only to ECS tasks', () => {
    const roles = resources(template, 'AWS::IAM::Role')
      .filter(([, role]) => JSON.stringify(role.Properties.AssumeRolePolicyDocument).includes('ecs-tasks'))
      .map(([id]) => id)
      .sort();
    expect(roles).toHaveLength(2);
    const passRoles = resources(template, 'AWS::IAM::Policy').flatMap(([, policy]) =>
      ((policy.Properties.PolicyDocument as { Statement: Record<string, unknown>[] }).Statement ?? []).filter(
        (s) => [s.Action].flat().some((a) => typeof a === 'string' && /^iam:(PassRole|\*)$|^\*$/.test(a)),
      ),
    );
    expect(passRoles).toEqual([
      {
        Action: 'iam:PassRole',
        Effect: 'Allow',
        Condition: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
        Resource: roles.map((id) => ({ 'Fn::GetAtt': [id, 'Arn'] })),
      },
    ]);
  });

  test('THEN, evaluated as IAM would, the deploy action may pass the task roles to ECS tasks and no other role or service', async () => {
    const account = '111111111111';
    const roleArn = (id: string) => `arn:aws:iam::${account}:role/${id}`;
    const roleIds = Object.keys(template.findResources('AWS::IAM::Role'));
    const [[, deployPolicy] = []] = resources(template, 'AWS::IAM::Policy').filter(([id]) =>
      id.startsWith('DeployDeployRole'),
    );
    const target = {
      partition: 'aws',
      region: 'ap-northeast-1',
      account,
      refs: Object.fromEntries(
        Object.keys(template.toJSON().Resources as object).map((id) => [id, `ref-${id}`]),
      ),
      attributes: Object.fromEntries(roleIds.map((id) => [`${id}.Arn`, roleArn(id)])),
    };
    const identityPolicy = resolveIntrinsics(deployPolicy?.Properties.PolicyDocument, {
      ...target,
      attributes: {
        ...target.attributes,
        [`${logicalIdOf(template, 'AWS::S3::Bucket', 'ArtifactStore')}.Arn`]: 'arn:aws:s3:::artifact-store',
      },
    }) as PolicyDocument;
    const noResourcePolicy: PolicyDocument = { Version: '2012-10-17', Statement: [] };
    const passRole = (role: string, service: string) =>
      simulate(noResourcePolicy, {
        principal: roleArn('DeployRole'),
        action: 'iam:PassRole',
        resource: { arn: roleArn(role), account },
        context: { 'iam:PassedToService': service },
        identityPolicy,
      });
    const executionRole = logicalIdOf(template, 'AWS::IAM::Role', 'ExecutionRole');
    const taskRole = logicalIdOf(template, 'AWS::IAM::Role', 'ServiceTaskRole');

    expect(await passRole(executionRole, 'ecs-tasks.amazonaws.com')).toBe('Allowed');
    expect(await passRole(taskRole, 'ecs-tasks.amazonaws.com')).toBe('Allowed');
    expect(await passRole(taskRole, 'lambda.amazonaws.com')).toBe('ImplicitlyDenied');
    expect(await passRole('Administrator', 'ecs-tasks.amazonaws.com')).toBe('ImplicitlyDenied');
    expect(
      await passRole(
        logicalIdOf(template, 'AWS::IAM::Role', 'DeploymentGroupServiceRole'),
        'ecs-tasks.amazonaws.com',
      ),
    ).toBe('ImplicitlyDenied');
  });

  test('THEN failed pipeline runs and failed deployments are published to an encrypted topic', () => {
    const topic = logicalIdOf(template, 'AWS::SNS::Topic', 'Notifications');
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: Match.objectLike({
        source: ['aws.codepipeline'],
        detail: Match.objectLike({ state: ['FAILED'] }),
      }),
      Targets: [Match.objectLike({ Arn: { Ref: topic } })],
    });
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: Match.objectLike({
        source: ['aws.codedeploy'],
        detail: Match.objectLike({ state: ['FAILURE'] }),
      }),
      Targets: [Match.objectLike({ Arn: { Ref: topic } })],
    });
    template.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  test('GIVEN a fresh install WHEN CodePipeline runs the new pipeline once by itself and its source finds no artifact THEN that failure pages no one, while every later failed run is announced', () => {
    const patterns = resources(template, 'AWS::Events::Rule')
      .map(([, r]) => r.Properties.EventPattern as { source: string[]; detail: unknown })
      .filter((pattern) => pattern.source.includes('aws.codepipeline'));
    expect(patterns.map((pattern) => pattern.detail)).toEqual([
      {
        state: ['FAILED'],
        // The run CodePipeline starts on creation carries trigger-type CreatePipeline.
        $or: [
          { 'execution-trigger': { 'trigger-type': [{ 'anything-but': ['CreatePipeline'] }] } },
          { 'execution-trigger': { 'trigger-type': [{ exists: false }] } },
        ],
      },
    ]);
  });

  test('THEN until the first rollout the service runs the public bootstrap image, answering on the container port', () => {
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({
          Image: BOOTSTRAP_IMAGE,
          Command: ['/bin/sh', '-c', Match.stringLikeRegexp('listen 80;')],
        }),
      ],
    });
  });

  test('THEN the deploy templates are published where the build reads them', () => {
    template.hasResourceProperties('AWS::SSM::Parameter', { Name: '/pushline/shop-api/deploy/taskdef' });
    template.hasResourceProperties('AWS::SSM::Parameter', { Name: '/pushline/shop-api/deploy/appspec' });
  });
});

describe('service stack options', () => {
  test('GIVEN a certificate THEN production is HTTPS on 443, port 80 redirects to it, and the test listener is HTTPS too', () => {
    const certificateArn =
      'arn:aws:acm:ap-northeast-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666';
    const template = Template.fromStack(
      serviceStack(deployConfig(`{ containerPort: 8080, certificateArn: "${certificateArn}" }`)),
    );
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 443,
      Protocol: 'HTTPS',
      Certificates: [{ CertificateArn: certificateArn }],
    });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 80,
      DefaultActions: [
        Match.objectLike({ Type: 'redirect', RedirectConfig: Match.objectLike({ Port: '443' }) }),
      ],
    });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 8080,
      Protocol: 'HTTPS',
    });
  });

  test('GIVEN an existing VPC named in full THEN no VPC is created and the tasks run in its private subnets', () => {
    const template = Template.fromStack(
      serviceStack(
        deployConfig(
          '{ containerPort: 80, testListenerCidrs: ["10.20.0.0/16", "2001:db8::/32"], vpc: { vpcId: vpc-0a1b2c3d4e5f60718, availabilityZones: [ap-northeast-1a, ap-northeast-1c], publicSubnetIds: [subnet-0a000000000000001, subnet-0a000000000000002], privateSubnetIds: [subnet-0b000000000000001, subnet-0b000000000000002] } }',
        ),
      ),
    );
    template.resourceCountIs('AWS::EC2::VPC', 0);
    template.hasResourceProperties('AWS::ECS::Service', {
      NetworkConfiguration: {
        AwsvpcConfiguration: Match.objectLike({
          AssignPublicIp: 'DISABLED',
          Subnets: ['subnet-0b000000000000001', 'subnet-0b000000000000002'],
        }),
      },
    });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Subnets: ['subnet-0a000000000000001', 'subnet-0a000000000000002'],
    });
    template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      SecurityGroupIngress: Match.arrayWith([
        Match.objectLike({ CidrIp: '10.20.0.0/16', FromPort: 8080 }),
        Match.objectLike({ CidrIpv6: '2001:db8::/32', FromPort: 8080 }),
      ]),
    });
  });

  test('GIVEN an existing VPC without testListenerCidrs THEN the config is refused naming the field', () => {
    expect(() =>
      serviceStack(
        deployConfig(
          '{ containerPort: 80, vpc: { vpcId: vpc-0a1b2c3d4e5f60718, availabilityZones: [a, b], publicSubnetIds: [subnet-0a000000000000001, subnet-0a000000000000002], privateSubnetIds: [subnet-0b000000000000001, subnet-0b000000000000002] } }',
        ),
      ),
    ).toThrow(/deploy\.testListenerCidrs: is required with an existing VPC/);
  });

  test.each([
    ['{ containerPort: 80, cpu: 300 }', /deploy\.cpu: 300 is not a Fargate size/],
    ['{ containerPort: 80, cpu: 256, memory: 4096 }', /deploy\.memory: 4096 MiB does not fit cpu 256/],
    [
      '{ containerPort: 80, testListenerPort: 80 }',
      /deploy\.testListenerPort: 80 is taken by the production listener/,
    ],
  ])('GIVEN deploy %s THEN the config is refused with an error naming the field', (deploy, message) => {
    expect(() => serviceStack(deployConfig(deploy))).toThrow(message);
  });

  test('GIVEN a fixed account and region WHEN synthesized THEN nothing is looked up and the subnets spread over the zones CloudFormation lists', () => {
    const config = parseConfig(
      [
        'env: { account: "123456789012", region: ap-northeast-1 }',
        'webhook: { allowedCidrs: [backlog-jp] }',
        'repositories:',
        '  - name: shop-api',
        '    source: { provider: backlog, repository: SHOP/api, cloneUrl: "example@example.git.backlog.jp:/SHOP/api.git" }',
        '    deploy: { containerPort: 80, vpc: { maxAzs: 3, natGateways: 1 } }',
      ].join('\n'),
    );
    const { app, stacks } = buildApp(config);
    const assembly = app.synth();
    expect(assembly.manifest.missing ?? []).toEqual([]);
    const [network] = stacks.networks;
    if (network === undefined) throw new Error('no network stack');
    const subnets = resources(Template.fromStack(network), 'AWS::EC2::Subnet');
    const zones = subnets.map(([, subnet]) => JSON.stringify(subnet.Properties.AvailabilityZone));
    expect(new Set(zones).size).toBe(3);
    expect(zones.every((zone) => zone.includes('Fn::GetAZs'))).toBe(true);
  });

  test('GIVEN an arm64-only build THEN the tasks run on ARM64', () => {
    const template = Template.fromStack(
      serviceStack(deployConfig('{ containerPort: 80 }', ['docker: { platforms: [linux/arm64] }'])),
    );
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
    });
  });

  test('GIVEN no NAT gateways THEN the tasks get public addresses in public subnets, still reachable only from the load balancer', () => {
    const template = Template.fromStack(
      serviceStack(deployConfig('{ containerPort: 80, vpc: { natGateways: 0 } }')),
    );
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.hasResourceProperties('AWS::ECS::Service', {
      NetworkConfiguration: { AwsvpcConfiguration: Match.objectLike({ AssignPublicIp: 'ENABLED' }) },
    });
    const serviceGroup = resources(template, 'AWS::EC2::SecurityGroup').find(([id]) =>
      id.includes('ServiceSecurityGroup'),
    );
    expect(serviceGroup?.[1].Properties.SecurityGroupIngress).toBeUndefined();
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      FromPort: 80,
      SourceSecurityGroupId: Match.anyValue(),
    });
  });

  test('GIVEN every option WHEN synthesized with cdk-nag AwsSolutions THEN no rule fails', () => {
    const config = deployConfig(
      '{ containerPort: 3000, healthCheckPath: /healthz, cpu: 512, memory: 1024, certificateArn: "arn:aws:acm:ap-northeast-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666", environment: { NODE_ENV: production }, secrets: { DATABASE_URL: shop/db }, notificationEmail: ops@example.com, vpc: { maxAzs: 3, natGateways: 0 } }',
    );
    const { app, stacks } = buildApp(config, { nag: true });
    expect(() => app.synth()).not.toThrow();
    Template.fromStack(stacks.services[0] as ServiceStack).hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
    });
  });

  test('GIVEN 50 repositories THEN each deployed one gets its own service stack with its own artifact key', () => {
    const { app, stacks } = buildApp(generatedConfig(50));
    const assembly = app.synth();
    expect(stacks.services).toHaveLength(13);
    const patterns = stacks.services.map((s) => {
      const { Resources } = assembly.getStackByName(s.stackName).template as {
        Resources: Record<string, Resource>;
      };
      const rule = Object.values(Resources).find(
        (r) => r.Type === 'AWS::Events::Rule' && JSON.stringify(r.Properties.EventPattern).includes('aws.s3'),
      );
      return JSON.stringify(rule?.Properties.EventPattern);
    });
    expect(new Set(patterns).size).toBe(13);
  });
});

/**
 * What a later `cdk deploy` does to a running service that CodeDeploy controls. ECS's UpdateService
 * accepts only desired count, deployment configuration, health check grace period, placement and
 * tag options on such a service; a different task definition, network configuration, platform
 * version or load balancer is refused ("Unable to update task definition on services with a
 * CODE_DEPLOY deployment controller", aws/aws-cdk#23564, cloudformation-coverage-roadmap#1529).
 * So the service resource must only change where UpdateService allows it.
 */
describe('service stack: later deploys of a service CodeDeploy controls', () => {
  const BASE = '{ containerPort: 80, cpu: 256, memory: 512, desiredCount: 2 }';
  const serviceOf = (deploy: string) => {
    const template = Template.fromStack(serviceStack(deployConfig(deploy)));
    const [entry] = resources(template, 'AWS::ECS::Service');
    if (!entry) throw new Error('no service');
    return { template, service: entry[1].Properties };
  };
  const before = serviceOf(BASE);

  test('GIVEN the service THEN it names its task definition by family, so a new revision is not a change to the service', () => {
    expect(before.service.TaskDefinition).toBe('pushline-shop-api');
    expect(before.service.DeploymentController).toEqual({ Type: 'CODE_DEPLOY' });
  });

  test.each([
    ['cpu and memory', '{ containerPort: 80, cpu: 512, memory: 1024, desiredCount: 2 }'],
    [
      'environment',
      '{ containerPort: 80, cpu: 256, memory: 512, desiredCount: 2, environment: { LOG_LEVEL: debug } }',
    ],
  ])(
    'GIVEN only %s change WHEN synthesized again THEN the task definition and its template change, the service resource does not',
    (_what, deploy) => {
      const after = serviceOf(deploy);
      expect(after.service).toEqual(before.service);
      const taskDefinitions = (t: Template) =>
        resources(t, 'AWS::ECS::TaskDefinition').map(([, r]) => r.Properties);
      expect(taskDefinitions(after.template)).not.toEqual(taskDefinitions(before.template));
      const templates = (t: Template) =>
        resources(t, 'AWS::SSM::Parameter').map(([, r]) => JSON.stringify(r.Properties.Value));
      expect(templates(after.template)).not.toEqual(templates(before.template));
    },
  );

  test('GIVEN desiredCount changes WHEN synthesized again THEN DesiredCount is the only property of the service that changes, one UpdateService accepts', () => {
    const after = serviceOf('{ containerPort: 80, cpu: 256, memory: 512, desiredCount: 4 }');
    const changed = Object.keys(after.service).filter(
      (key) => JSON.stringify(after.service[key]) !== JSON.stringify(before.service[key]),
    );
    expect(changed).toEqual(['DesiredCount']);
    expect(after.service.DesiredCount).toBe(4);
  });
});

describe('README: what a later cdk deploy changes at once', () => {
  const VARIANTS: Record<string, string> = {
    healthCheckPath: 'healthCheckPath: /healthz',
    testListenerCidrs: 'testListenerCidrs: ["10.1.0.0/16"]',
    notificationEmail: 'notificationEmail: ops@example.com',
    logRetentionDays: 'logRetentionDays: 90',
    desiredCount: 'desiredCount: 3',
    trafficShift: 'trafficShift: all-at-once',
    terminationWaitMinutes: 'terminationWaitMinutes: 5',
  };
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(
    readme.indexOf('### What a later `cdk deploy` may change on a running service'),
  );
  const atOnce = section.slice(
    section.indexOf('- **Takes effect at once'),
    section.indexOf('\n- **', section.indexOf('- **Takes effect at once') + 5),
  );
  const promised = [...atOnce.matchAll(/`([A-Za-z]+)`/g)].map((m) => m[1] ?? '');

  test('GIVEN the settings the README says take effect at once THEN it names some, and each is one the test knows', () => {
    expect(promised.length).toBeGreaterThan(0);
    for (const field of promised) expect(Object.keys(VARIANTS)).toContain(field);
  });

  test.each(promised)(
    'GIVEN %s, promised to take effect at once, changes THEN the service resource is unchanged',
    (field) => {
      const service = (deploy: string) =>
        resources(Template.fromStack(serviceStack(deployConfig(deploy))), 'AWS::ECS::Service')[0]?.[1]
          .Properties;
      expect(service(`{ containerPort: 80, ${VARIANTS[field]} }`)).toEqual(service('{ containerPort: 80 }'));
    },
  );
});
