import { Template } from 'aws-cdk-lib/assertions';
import { parse } from 'yaml';
import { parseConfig } from '../lib/config/load';
import type { PipelineConfig } from '../lib/config/schema';
import {
  IMAGE_PLACEHOLDER,
  renderAppSpecTemplate,
  renderTaskDefinitionTemplate,
  type TaskDefinitionSettings,
} from '../lib/deploy-templates';
import type { ServiceStack } from '../lib/service-stack';
import { buildApp, sampleConfig } from './support/app';

type Intrinsic = string | number | boolean | null | Intrinsic[] | { [key: string]: Intrinsic };

/**
 * Evaluates the intrinsics a template uses for names and ARNs with stand-in values, the same way
 * everywhere, so two places that reference the same role or log group compare equal.
 */
function evaluate(value: Intrinsic): Intrinsic {
  if (Array.isArray(value)) return value.map(evaluate);
  if (value === null || typeof value !== 'object') return value;
  const ref = value.Ref;
  if (typeof ref === 'string') {
    const pseudo: Record<string, string> = {
      'AWS::Region': 'ap-northeast-1',
      'AWS::AccountId': '123456789012',
      'AWS::Partition': 'aws',
    };
    return pseudo[ref] ?? `ref-${ref}`;
  }
  const getAtt = value['Fn::GetAtt'];
  if (Array.isArray(getAtt)) return `arn:aws:iam::123456789012:role/${String(getAtt[0])}`;
  const join = value['Fn::Join'];
  if (Array.isArray(join)) {
    const [separator, parts] = join as [string, Intrinsic[]];
    return parts.map((part) => String(evaluate(part))).join(separator);
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, evaluate(v)]));
}

interface Resource {
  Type: string;
  Properties: Record<string, Intrinsic>;
}

function resourcesOf(stack: ServiceStack, type: string): Resource[] {
  const resources = Template.fromStack(stack).toJSON().Resources as Record<string, Resource>;
  return Object.values(resources).filter((r) => r.Type === type);
}

function parameterValue(stack: ServiceStack, name: string): string {
  const parameter = resourcesOf(stack, 'AWS::SSM::Parameter').find((p) => p.Properties.Name === name);
  if (!parameter) throw new Error(`no parameter ${name}`);
  return String(evaluate(parameter.Properties.Value ?? null));
}

/** What CodePipeline's CodeDeployToECS action does with `taskdef.json` and `imageDetail.json`. */
function fillImage(taskdef: string, imageDetail: string): string {
  const { ImageURI } = JSON.parse(imageDetail) as { ImageURI: string };
  return taskdef.replaceAll(IMAGE_PLACEHOLDER, ImageURI);
}

interface RenderedContainer {
  name: string;
  image: string;
  essential: boolean;
  portMappings: { containerPort: number; protocol: string }[];
  environment: { name: string; value: string }[];
  secrets: { name: string; valueFrom: string }[];
  logConfiguration: { logDriver: string; options: Record<string, string> };
}

interface RenderedTaskDefinition {
  family: string;
  executionRoleArn: string;
  taskRoleArn: string;
  networkMode: string;
  requiresCompatibilities: string[];
  cpu: string;
  memory: string;
  runtimePlatform: { cpuArchitecture: string; operatingSystemFamily: string };
  containerDefinitions: RenderedContainer[];
}

interface SynthesizedContainer {
  Name: string;
  PortMappings: { ContainerPort: number; Protocol: string }[];
  Environment?: { Name: string; Value: string }[];
  Secrets?: { Name: string; ValueFrom: string }[];
  LogConfiguration: { LogDriver: string; Options: Record<string, string> };
}

const commit = '9fceb02d0ae598e95dc970b74767f19372d61af8';
const imageDetail = JSON.stringify({
  ImageURI: `123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/shop-api:${commit}`,
});

function deployed(config: PipelineConfig): {
  taskdef: RenderedTaskDefinition;
  appspec: string;
  synthesized: Record<string, Intrinsic>;
  stack: ServiceStack;
} {
  const { stacks } = buildApp(config);
  const stack = stacks.services[0];
  if (!stack) throw new Error('no service stack');
  const repo = config.repositories.find((r) => r.deploy !== undefined);
  const prefix = `/${config.name}/${repo?.name.replace(/[^A-Za-z0-9-]/g, '-')}/deploy`;
  const taskdef = JSON.parse(
    fillImage(parameterValue(stack, `${prefix}/taskdef`), imageDetail),
  ) as RenderedTaskDefinition;
  const appspec = parameterValue(stack, `${prefix}/appspec`);
  const [definition] = resourcesOf(stack, 'AWS::ECS::TaskDefinition');
  if (!definition) throw new Error('no task definition');
  return {
    taskdef,
    appspec,
    synthesized: evaluate(definition.Properties) as Record<string, Intrinsic>,
    stack,
  };
}

describe('deploy templates handed to the build', () => {
  test('GIVEN the sample config WHEN taskdef.json is filled with imageDetail.json THEN it registers the task definition the service was created with, with the commit image', () => {
    const { taskdef, synthesized } = deployed(sampleConfig());
    const [container] = synthesized.ContainerDefinitions as unknown as SynthesizedContainer[];
    const [rendered] = taskdef.containerDefinitions;

    expect(taskdef.family).toBe(synthesized.Family);
    expect(taskdef.executionRoleArn).toBe(synthesized.ExecutionRoleArn);
    expect(taskdef.taskRoleArn).toBe(synthesized.TaskRoleArn);
    expect(taskdef.executionRoleArn).not.toBe(taskdef.taskRoleArn);
    expect(taskdef.cpu).toBe(synthesized.Cpu);
    expect(taskdef.memory).toBe(synthesized.Memory);
    expect(taskdef.networkMode).toBe(synthesized.NetworkMode);
    expect(taskdef.requiresCompatibilities).toEqual(synthesized.RequiresCompatibilities);
    expect(taskdef.runtimePlatform).toEqual({
      cpuArchitecture: (synthesized.RuntimePlatform as Record<string, string>).CpuArchitecture,
      operatingSystemFamily: (synthesized.RuntimePlatform as Record<string, string>).OperatingSystemFamily,
    });
    expect(taskdef.containerDefinitions).toHaveLength(1);
    expect(rendered?.name).toBe(container?.Name);
    expect(rendered?.image).toBe(`123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/shop-api:${commit}`);
    expect(rendered?.portMappings).toEqual(
      container?.PortMappings.map((p) => ({ containerPort: p.ContainerPort, protocol: p.Protocol })),
    );
    expect(rendered?.logConfiguration).toEqual({
      logDriver: container?.LogConfiguration.LogDriver,
      options: container?.LogConfiguration.Options,
    });
  });

  test('GIVEN environment and secrets WHEN rendered THEN taskdef.json injects the same variables from the same secrets as the service', () => {
    const config = parseConfig(`
webhook: { allowedCidrs: [backlog-jp] }
repositories:
  - name: shop-api
    source: { provider: backlog, repository: SHOP/api, cloneUrl: "example@example.git.backlog.jp:/SHOP/api.git" }
    deploy:
      containerPort: 3000
      environment: { NODE_ENV: production, LOG_LEVEL: info }
      secrets: { DATABASE_URL: shop/api/database-url }
`);
    const { taskdef, synthesized } = deployed(config);
    const [container] = synthesized.ContainerDefinitions as unknown as SynthesizedContainer[];
    const [rendered] = taskdef.containerDefinitions;

    const byName = <T extends { name: string }>(list: T[] | undefined) =>
      [...(list ?? [])].sort((a, b) => a.name.localeCompare(b.name));
    expect(byName(rendered?.environment)).toEqual(
      byName(container?.Environment?.map((e) => ({ name: e.Name, value: e.Value }))),
    );
    expect(byName(rendered?.secrets)).toEqual(
      byName(container?.Secrets?.map((s) => ({ name: s.Name, valueFrom: s.ValueFrom }))),
    );
    expect(rendered?.secrets[0]?.valueFrom).toBe(
      'arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:shop/api/database-url',
    );
  });

  test('GIVEN the sample config THEN appspec.yaml has the shape CodeDeploy expects for ECS, naming the container and port the load balancer routes to', () => {
    const { appspec, synthesized, stack } = deployed(sampleConfig());
    const [container] = synthesized.ContainerDefinitions as unknown as SynthesizedContainer[];
    const [targetGroup] = resourcesOf(stack, 'AWS::ElasticLoadBalancingV2::TargetGroup');

    // CodeDeploy rejects any version other than the literal 0.0.
    expect(appspec).toMatch(/^version: 0\.0$/m);
    const parsed = parse(appspec) as {
      Resources: { TargetService: { Type: string; Properties: Record<string, unknown> } }[];
    };
    expect(parsed.Resources).toHaveLength(1);
    expect(parsed.Resources[0]?.TargetService).toEqual({
      Type: 'AWS::ECS::Service',
      Properties: {
        TaskDefinition: '<TASK_DEFINITION>',
        LoadBalancerInfo: {
          ContainerName: container?.Name,
          ContainerPort: container?.PortMappings[0]?.ContainerPort,
        },
      },
    });
    expect(targetGroup?.Properties.Port).toBe(container?.PortMappings[0]?.ContainerPort);
  });

  test('GIVEN an environment too large for a standard parameter THEN the template goes to an advanced one, and one too large for any parameter is refused naming deploy.environment', () => {
    const environment = (size: number) =>
      Object.fromEntries(Array.from({ length: size }, (_, i) => [`SETTING_${i}`, 'x'.repeat(40)]));
    const configWith = (size: number) =>
      parseConfig(
        JSON.stringify({
          webhook: { allowedCidrs: ['backlog-jp'] },
          repositories: [
            {
              name: 'shop-api',
              source: {
                provider: 'backlog',
                repository: 'SHOP/api',
                cloneUrl: 'example@example.git.backlog.jp:/SHOP/api.git',
              },
              deploy: { containerPort: 80, environment: environment(size) },
            },
          ],
        }),
      );
    const { stack } = deployed(configWith(60));
    const tiers = resourcesOf(stack, 'AWS::SSM::Parameter').map((p) => p.Properties.Tier ?? 'Standard');
    expect(tiers).toContain('Advanced');

    expect(() => buildApp(configWith(150))).toThrow(/deploy\.environment/);
  });

  test('GIVEN settings WHEN rendered THEN the image is the placeholder CodePipeline replaces and nothing else is', () => {
    const settings: TaskDefinitionSettings = {
      family: 'pushline-shop-api',
      executionRoleArn: 'arn:aws:iam::123456789012:role/execution',
      taskRoleArn: 'arn:aws:iam::123456789012:role/task',
      containerName: 'app',
      containerPort: 8080,
      cpu: 512,
      memory: 1024,
      cpuArchitecture: 'ARM64',
      environment: {},
      secrets: {},
      logGroupName: 'service-logs',
      logRegion: 'ap-northeast-1',
      logStreamPrefix: 'app',
    };
    const text = JSON.stringify(renderTaskDefinitionTemplate(settings));
    expect(text.split(IMAGE_PLACEHOLDER)).toHaveLength(2);
    expect(renderTaskDefinitionTemplate(settings).runtimePlatform.cpuArchitecture).toBe('ARM64');
    expect(renderAppSpecTemplate(settings)).toContain('ContainerPort: 8080');
  });
});
