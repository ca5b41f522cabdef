/**
 * The `taskdef.json` and `appspec.yaml` templates that the build writes into each deploy artifact.
 * The service stack renders them from the very settings it gives its CDK task definition, so the
 * task definition CodeDeploy registers on a rollout matches the one CloudFormation created (family,
 * roles, container name and port, logs, cpu and memory); only the image changes.
 */

/** Replaced by CodePipeline with `ImageURI` of `imageDetail.json` (`Image1ContainerName`). */
export const IMAGE_PLACEHOLDER_NAME = 'IMAGE1_NAME';
export const IMAGE_PLACEHOLDER = `<${IMAGE_PLACEHOLDER_NAME}>`;
/** Replaced by CodePipeline with the ARN of the task definition it registered from `taskdef.json`. */
export const TASK_DEFINITION_PLACEHOLDER = '<TASK_DEFINITION>';

/** SSM standard parameters hold at most 4 KB, advanced ones 8 KB. */
export const STANDARD_PARAMETER_LIMIT = 4096;
export const ADVANCED_PARAMETER_LIMIT = 8192;

/** Everything the service's task definition is made of, apart from the image. */
export interface TaskDefinitionSettings {
  /** Task definition family; each rollout registers a new revision of it. */
  readonly family: string;
  readonly executionRoleArn: string;
  readonly taskRoleArn: string;
  /** The container the load balancer sends traffic to; the AppSpec names it. */
  readonly containerName: string;
  readonly containerPort: number;
  /** Fargate CPU units (256 = 0.25 vCPU). */
  readonly cpu: number;
  /** MiB. */
  readonly memory: number;
  readonly cpuArchitecture: 'X86_64' | 'ARM64';
  /** Plain environment variables. */
  readonly environment: Readonly<Record<string, string>>;
  /** Environment variable name to the ARN of the Secrets Manager secret ECS injects. */
  readonly secrets: Readonly<Record<string, string>>;
  readonly logGroupName: string;
  readonly logRegion: string;
  readonly logStreamPrefix: string;
}

/** The subset of an ECS `RegisterTaskDefinition` request that `taskdef.json` carries. */
export interface TaskDefinitionTemplate {
  readonly family: string;
  readonly executionRoleArn: string;
  readonly taskRoleArn: string;
  readonly networkMode: 'awsvpc';
  readonly requiresCompatibilities: readonly ['FARGATE'];
  readonly cpu: string;
  readonly memory: string;
  readonly runtimePlatform: { readonly cpuArchitecture: string; readonly operatingSystemFamily: 'LINUX' };
  readonly containerDefinitions: readonly ContainerDefinitionTemplate[];
}

export interface ContainerDefinitionTemplate {
  readonly name: string;
  readonly image: string;
  readonly essential: true;
  readonly portMappings: readonly { readonly containerPort: number; readonly protocol: 'tcp' }[];
  readonly environment: readonly { readonly name: string; readonly value: string }[];
  readonly secrets: readonly { readonly name: string; readonly valueFrom: string }[];
  readonly logConfiguration: {
    readonly logDriver: 'awslogs';
    readonly options: Readonly<Record<'awslogs-group' | 'awslogs-region' | 'awslogs-stream-prefix', string>>;
  };
}

/** The task definition template, with `<IMAGE1_NAME>` where the commit's image goes. */
export function renderTaskDefinitionTemplate(settings: TaskDefinitionSettings): TaskDefinitionTemplate {
  return {
    family: settings.family,
    executionRoleArn: settings.executionRoleArn,
    taskRoleArn: settings.taskRoleArn,
    networkMode: 'awsvpc',
    requiresCompatibilities: ['FARGATE'],
    cpu: String(settings.cpu),
    memory: String(settings.memory),
    runtimePlatform: { cpuArchitecture: settings.cpuArchitecture, operatingSystemFamily: 'LINUX' },
    containerDefinitions: [
      {
        name: settings.containerName,
        image: IMAGE_PLACEHOLDER,
        essential: true,
        portMappings: [{ containerPort: settings.containerPort, protocol: 'tcp' }],
        environment: Object.entries(settings.environment).map(([name, value]) => ({ name, value })),
        secrets: Object.entries(settings.secrets).map(([name, valueFrom]) => ({ name, valueFrom })),
        logConfiguration: {
          logDriver: 'awslogs',
          options: {
            'awslogs-group': settings.logGroupName,
            'awslogs-region': settings.logRegion,
            'awslogs-stream-prefix': settings.logStreamPrefix,
          },
        },
      },
    ],
  };
}

/**
 * The AppSpec CodeDeploy expects for an ECS Blue/Green deployment: the service's task definition
 * (filled in by CodePipeline) and the container and port the target groups route to.
 */
export function renderAppSpecTemplate(
  settings: Pick<TaskDefinitionSettings, 'containerName' | 'containerPort'>,
  hooks: AppSpecHooks = {},
): string {
  // Written out rather than serialized: CodeDeploy wants `version: 0.0`, which a YAML library
  // prints as the number 0. The container name is quoted as JSON, which is valid YAML.
  return [
    'version: 0.0',
    'Resources:',
    '  - TargetService:',
    '      Type: AWS::ECS::Service',
    '      Properties:',
    `        TaskDefinition: "${TASK_DEFINITION_PLACEHOLDER}"`,
    '        LoadBalancerInfo:',
    `          ContainerName: ${JSON.stringify(settings.containerName)}`,
    `          ContainerPort: ${settings.containerPort}`,
    ...(hooks.afterAllowTestTraffic === undefined
      ? []
      : ['Hooks:', `  - AfterAllowTestTraffic: ${JSON.stringify(hooks.afterAllowTestTraffic)}`]),
    '',
  ].join('\n');
}

/** Lambda functions CodeDeploy invokes at points of an ECS deployment (AppSpec `Hooks`). */
export interface AppSpecHooks {
  /**
   * Function (ARN) run once the test listener sends to the new task set, before production traffic.
   * @default no hook
   */
  readonly afterAllowTestTraffic?: string;
}

/**
 * The longest a rendered `taskdef.json` can become once CloudFormation fills in role ARNs, the log
 * group name and the region, which are unknown at synthesis. Used to pick the parameter tier.
 */
export function worstCaseTaskDefinitionLength(settings: TaskDefinitionSettings): number {
  // IAM role ARNs: partition (at most 10) + account + role name (at most 64); generated log group
  // names stay well under 256; region names are at most 20. Secret ARNs are built from the secret
  // name and pseudo-parameter tokens, whose placeholders are already longer than their values.
  const longest: TaskDefinitionSettings = {
    ...settings,
    executionRoleArn: `arn:${'p'.repeat(10)}:iam::123456789012:role/${'r'.repeat(64)}`,
    taskRoleArn: `arn:${'p'.repeat(10)}:iam::123456789012:role/${'r'.repeat(64)}`,
    logGroupName: 'g'.repeat(256),
    logRegion: 'r'.repeat(20),
  };
  return JSON.stringify(renderTaskDefinitionTemplate(longest), undefined, 2).length;
}
