import {
  Aws,
  CfnCondition,
  CfnMapping,
  Duration,
  Fn,
  PhysicalName,
  RemovalPolicy,
  Stack,
  Validations,
} from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as codedeploy from 'aws-cdk-lib/aws-codedeploy';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { RegionInfo } from 'aws-cdk-lib/region-info';
import { Construct } from 'constructs';
import { normalizeCidr } from '../config/cidr-presets';
import { DEFAULT_NEW_VPC, type DeployConfig, type TrafficShift } from '../config/schema';
import { serviceProblems } from '../config/service-problems';
import type { TaskDefinitionSettings } from '../deploy-templates';
import { createLogBucket } from './log-bucket';
import { createServiceVpc } from './service-network';

/**
 * What the service runs until the first rollout, so that `cdk deploy` on a fresh account succeeds
 * before any build has pushed an image. A public image: it needs no push, and synth stays offline.
 */
export const BOOTSTRAP_IMAGE = 'public.ecr.aws/nginx/nginx:stable-alpine';

/** The container the load balancer routes to; the AppSpec names it. */
export const CONTAINER_NAME = 'app';

/** Maps the config's `trafficShift` to CodeDeploy's predefined ECS deployment configurations. */
export const DEPLOYMENT_CONFIGS: Readonly<Record<TrafficShift, codedeploy.IEcsDeploymentConfig>> = {
  'all-at-once': codedeploy.EcsDeploymentConfig.ALL_AT_ONCE,
  'canary-10-5m': codedeploy.EcsDeploymentConfig.CANARY_10PERCENT_5MINUTES,
  'canary-10-15m': codedeploy.EcsDeploymentConfig.CANARY_10PERCENT_15MINUTES,
  'linear-10-1m': codedeploy.EcsDeploymentConfig.LINEAR_10PERCENT_EVERY_1MINUTES,
  'linear-10-3m': codedeploy.EcsDeploymentConfig.LINEAR_10PERCENT_EVERY_3MINUTES,
};

/** A rollout rolls back when more than this share of a target group's responses are 5xx. */
export const TARGET_5XX_RATE_PERCENT = 5;

export interface BlueGreenServiceProps {
  /** The `deploy` section of the repository's config. */
  readonly deploy: DeployConfig;
  /** Task definition family. Every rollout registers a new revision of it. */
  readonly family: string;
  /** Where the service's images come from; the execution role may pull from it. */
  readonly imageRepository: ecr.IRepository;
  /**
   * CPU architecture of the tasks; must match the platform the build produces.
   * @default 'X86_64'
   */
  readonly cpuArchitecture?: 'X86_64' | 'ARM64';
  /**
   * Image the service runs until the first rollout.
   * @default BOOTSTRAP_IMAGE, answering 200 on every path of the container port
   */
  readonly bootstrapImage?: string;
  /**
   * The VPC to run in, such as a `ServiceNetwork` that other services share; it must have the
   * subnets `deploy.vpc` implies (private with egress, or public only with `natGateways: 0`).
   * @default the VPC `deploy.vpc` names, or else a VPC of the service's own shaped by `deploy.vpc`
   */
  readonly vpc?: ec2.IVpc;
}

/**
 * An ECS Fargate service behind an Application Load Balancer whose new versions CodeDeploy rolls
 * out Blue/Green: the new task set is first reachable on the test listener, then traffic shifts
 * (canary, linear or all at once), and the deployment rolls back by itself when it fails or when
 * the 5xx-rate or unhealthy-host alarms of either target group fire.
 */
export class BlueGreenService extends Construct {
  public readonly vpc: ec2.IVpc;
  public readonly cluster: ecs.Cluster;
  public readonly taskDefinition: ecs.FargateTaskDefinition;
  public readonly service: ecs.FargateService;
  public readonly executionRole: iam.Role;
  /** The role the application runs as; grant it what the application needs. */
  public readonly taskRole: iam.Role;
  public readonly logGroup: logs.LogGroup;
  public readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  public readonly productionListener: elbv2.ApplicationListener;
  public readonly testListener: elbv2.ApplicationListener;
  public readonly blueTargetGroup: elbv2.ApplicationTargetGroup;
  public readonly greenTargetGroup: elbv2.ApplicationTargetGroup;
  /** Alarms that roll a deployment back. */
  public readonly alarms: readonly cloudwatch.IAlarm[];
  public readonly application: codedeploy.EcsApplication;
  public readonly deploymentGroup: codedeploy.EcsDeploymentGroup;
  /**
   * Load balancer access logs, the VPC flow logs of a VPC of the service's own; S3 access logs of
   * the stack's other buckets.
   */
  public readonly logsBucket: s3.Bucket;
  /** The settings the task definition was made from; `deploy-templates.ts` renders them. */
  public readonly taskSettings: TaskDefinitionSettings;

  constructor(scope: Construct, id: string, props: BlueGreenServiceProps) {
    super(scope, id);
    const { deploy } = props;
    validateDeploy(deploy);
    const https = deploy.certificateArn !== undefined;
    const productionPort = https ? 443 : 80;

    this.logsBucket = createLogBucket(this, 'AccessLogs', {
      receives:
        props.vpc === undefined
          ? 'the load balancer’s access logs and the VPC flow logs'
          : 'the load balancer’s access logs',
    });

    this.vpc = props.vpc ?? createOrImportVpc(this, deploy, this.logsBucket);
    const tasksArePublic =
      deploy.vpc !== undefined && 'natGateways' in deploy.vpc && deploy.vpc.natGateways === 0;

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: this.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });

    // GENERATE_IF_NEEDED: a name only when a stack in another account refers to it (a pipeline there).
    this.logGroup = new logs.LogGroup(this, 'ServiceLogs', {
      logGroupName: PhysicalName.GENERATE_IF_NEEDED,
      retention: deploy.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.executionRole = new iam.Role(this, 'ExecutionRole', {
      roleName: PhysicalName.GENERATE_IF_NEEDED,
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'ECS pulls the image, reads the secrets and writes the logs of the service as this role',
    });
    this.taskRole = new iam.Role(this, 'TaskRole', {
      roleName: PhysicalName.GENERATE_IF_NEEDED,
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'The service application runs as this role',
    });
    // Rollouts run the commit images of this repository, not the bootstrap image.
    props.imageRepository.grantPull(this.executionRole);
    Validations.of(this.executionRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'ecr:GetAuthorizationToken has no resource-level permissions; image pulls are limited to this repository.',
    });

    const secrets = Object.fromEntries(
      Object.entries(deploy.secrets ?? {}).map(([variable, secretName]) => [
        variable,
        secretsmanager.Secret.fromSecretNameV2(this, `Secret-${variable}`, secretName),
      ]),
    );
    const stack = Stack.of(this);
    this.taskSettings = {
      family: props.family,
      executionRoleArn: this.executionRole.roleArn,
      taskRoleArn: this.taskRole.roleArn,
      containerName: CONTAINER_NAME,
      containerPort: deploy.containerPort,
      cpu: deploy.cpu,
      memory: deploy.memory,
      cpuArchitecture: props.cpuArchitecture ?? 'X86_64',
      environment: deploy.environment ?? {},
      secrets: Object.fromEntries(Object.entries(secrets).map(([variable, s]) => [variable, s.secretArn])),
      logGroupName: this.logGroup.logGroupName,
      logRegion: stack.region,
      logStreamPrefix: CONTAINER_NAME,
    };

    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      family: this.taskSettings.family,
      cpu: this.taskSettings.cpu,
      memoryLimitMiB: this.taskSettings.memory,
      executionRole: this.executionRole,
      taskRole: this.taskRole,
      runtimePlatform: {
        cpuArchitecture:
          this.taskSettings.cpuArchitecture === 'ARM64'
            ? ecs.CpuArchitecture.ARM64
            : ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });
    const usesBootstrapImage = props.bootstrapImage === undefined;
    this.taskDefinition.addContainer('App', {
      containerName: this.taskSettings.containerName,
      image: ecs.ContainerImage.fromRegistry(props.bootstrapImage ?? BOOTSTRAP_IMAGE),
      command: usesBootstrapImage ? bootstrapCommand(deploy.containerPort) : undefined,
      essential: true,
      portMappings: [{ containerPort: this.taskSettings.containerPort, protocol: ecs.Protocol.TCP }],
      environment: { ...this.taskSettings.environment },
      secrets: Object.fromEntries(
        Object.entries(secrets).map(([variable, s]) => [variable, ecs.Secret.fromSecretsManager(s)]),
      ),
      logging: ecs.LogDrivers.awsLogs({
        logGroup: this.logGroup,
        streamPrefix: this.taskSettings.logStreamPrefix,
      }),
    });
    if (deploy.environment !== undefined) {
      Validations.of(this.taskDefinition).acknowledge({
        id: 'AwsSolutions-ECS2',
        reason:
          'deploy.environment holds non-secret settings by design; secrets go through deploy.secrets (Secrets Manager), never environment values.',
      });
    }

    const loadBalancerSecurityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc: this.vpc,
      description: 'Load balancer of the service: production listener open, test listener restricted',
      allowAllOutbound: false,
    });
    this.loadBalancer = new elbv2.ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc: this.vpc,
      internetFacing: true,
      securityGroup: loadBalancerSecurityGroup,
      dropInvalidHeaderFields: true,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
    });
    logLoadBalancerAccess(this.loadBalancer, this.logsBucket, 'load-balancer');

    const targetGroupProps: elbv2.ApplicationTargetGroupProps = {
      vpc: this.vpc,
      port: deploy.containerPort,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targetType: elbv2.TargetType.IP,
      deregistrationDelay: Duration.seconds(30),
      healthCheck: {
        path: deploy.healthCheckPath,
        healthyHttpCodes: '200-399',
        interval: Duration.seconds(15),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 3,
      },
    };
    this.blueTargetGroup = new elbv2.ApplicationTargetGroup(this, 'BlueTargetGroup', targetGroupProps);
    this.greenTargetGroup = new elbv2.ApplicationTargetGroup(this, 'GreenTargetGroup', targetGroupProps);

    const certificates = deploy.certificateArn
      ? [elbv2.ListenerCertificate.fromArn(deploy.certificateArn)]
      : undefined;
    const protocol = https ? elbv2.ApplicationProtocol.HTTPS : elbv2.ApplicationProtocol.HTTP;
    const sslPolicy = https ? elbv2.SslPolicy.RECOMMENDED_TLS : undefined;
    this.productionListener = this.loadBalancer.addListener('ProductionListener', {
      port: productionPort,
      protocol,
      certificates,
      sslPolicy,
      open: true,
      defaultTargetGroups: [this.blueTargetGroup],
    });
    if (https) {
      this.loadBalancer.addRedirect({ sourcePort: 80, targetPort: 443 });
    }
    Validations.of(loadBalancerSecurityGroup).acknowledge({
      id: 'AwsSolutions-EC23',
      reason:
        'The production listener serves the public application; the test listener port is open only to deploy.testListenerCidrs.',
    });
    this.testListener = this.loadBalancer.addListener('TestListener', {
      port: deploy.testListenerPort,
      protocol,
      certificates,
      sslPolicy,
      open: false,
      defaultTargetGroups: [this.greenTargetGroup],
    });
    for (const peer of testListenerPeers(this.vpc, deploy)) {
      this.testListener.connections.allowDefaultPortFrom(
        peer,
        'Test listener: new task set before traffic shifts',
      );
    }

    const serviceSecurityGroup = new ec2.SecurityGroup(this, 'ServiceSecurityGroup', {
      vpc: this.vpc,
      description: 'Tasks of the service: reachable from the load balancer only',
    });
    this.service = new ecs.FargateService(this, 'Service', {
      cluster: this.cluster,
      taskDefinition: this.taskDefinition,
      desiredCount: deploy.desiredCount,
      deploymentController: { type: ecs.DeploymentControllerType.CODE_DEPLOY },
      // With CodeDeploy in control these only bound the task count while tasks drain.
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      healthCheckGracePeriod: Duration.seconds(60),
      securityGroups: [serviceSecurityGroup],
      assignPublicIp: tasksArePublic,
      vpcSubnets: { subnetType: tasksArePublic ? ec2.SubnetType.PUBLIC : ec2.SubnetType.PRIVATE_WITH_EGRESS },
      propagateTags: ecs.PropagatedTagSource.SERVICE,
    });
    this.service.attachToApplicationTargetGroup(this.blueTargetGroup);
    // CodeDeploy moves the service to the green target group; its tasks must be reachable there too.
    this.greenTargetGroup.registerConnectable(this.service, ec2.Port.tcp(deploy.containerPort));

    this.alarms = [
      ...targetGroupAlarms(this, 'Blue', this.blueTargetGroup),
      ...targetGroupAlarms(this, 'Green', this.greenTargetGroup),
    ];

    this.application = new codedeploy.EcsApplication(this, 'Application', {
      applicationName: PhysicalName.GENERATE_IF_NEEDED,
    });
    this.deploymentGroup = new codedeploy.EcsDeploymentGroup(this, 'DeploymentGroup', {
      deploymentGroupName: PhysicalName.GENERATE_IF_NEEDED,
      application: this.application,
      service: this.service,
      deploymentConfig: DEPLOYMENT_CONFIGS[deploy.trafficShift],
      blueGreenDeploymentConfig: {
        blueTargetGroup: this.blueTargetGroup,
        greenTargetGroup: this.greenTargetGroup,
        listener: this.productionListener,
        testListener: this.testListener,
        terminationWaitTime: Duration.minutes(deploy.terminationWaitMinutes),
      },
      alarms: [...this.alarms],
      autoRollback: { failedDeployment: true, deploymentInAlarm: true, stoppedDeployment: true },
    });
    Validations.of(this.deploymentGroup).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AWSCodeDeployRoleForECS]',
      reason:
        "AWSCodeDeployRoleForECS is AWS's maintained policy for ECS Blue/Green; it tracks the calls CodeDeploy makes to ECS, ELB, CloudWatch and Lambda hooks.",
    });
  }
}

/** The first thing CloudFormation or ECS would refuse in the settings, as an error naming the field. */
function validateDeploy(deploy: DeployConfig): void {
  const [problem] = serviceProblems(deploy);
  if (problem) throw new Error(`BlueGreenService: deploy.${problem.field} ${problem.message}`);
}

/**
 * Imports the VPC the config names in full (no look-up, so synth stays offline), or creates one of
 * the service's own in the construct.
 */
function createOrImportVpc(scope: Construct, deploy: DeployConfig, flowLogBucket: s3.IBucket): ec2.IVpc {
  const settings = deploy.vpc ?? DEFAULT_NEW_VPC;
  if ('vpcId' in settings) {
    return ec2.Vpc.fromVpcAttributes(scope, 'Vpc', {
      vpcId: settings.vpcId,
      availabilityZones: settings.availabilityZones,
      publicSubnetIds: settings.publicSubnetIds,
      privateSubnetIds: settings.privateSubnetIds,
    });
  }
  return createServiceVpc(scope, settings, flowLogBucket);
}

function testListenerPeers(vpc: ec2.IVpc, deploy: DeployConfig): ec2.IPeer[] {
  if (deploy.testListenerCidrs === undefined) return [ec2.Peer.ipv4(vpc.vpcCidrBlock)];
  return deploy.testListenerCidrs.map((entry) => {
    const cidr = normalizeCidr(entry);
    return cidr.includes(':') ? ec2.Peer.ipv6(cidr) : ec2.Peer.ipv4(cidr);
  });
}

/**
 * Makes nginx answer 200 on every path of the container port, so the bootstrap task passes the
 * target group's health check whatever `healthCheckPath` and `containerPort` are.
 */
function bootstrapCommand(port: number): string[] {
  const server = `server { listen ${port}; location / { default_type text/plain; return 200 "pushline bootstrap: push a commit to deploy"; } }`;
  return [
    '/bin/sh',
    '-c',
    `printf '%s\\n' '${server}' > /etc/nginx/conf.d/default.conf && exec nginx -g 'daemon off;'`,
  ];
}

/** The 5xx-rate and unhealthy-host alarms of one target group. */
function targetGroupAlarms(
  scope: Construct,
  color: string,
  targetGroup: elbv2.ApplicationTargetGroup,
): cloudwatch.Alarm[] {
  const period = Duration.minutes(1);
  const errorRate = new cloudwatch.MathExpression({
    // No requests means no errors, not missing data.
    expression: '100 * FILL(errors, 0) / FILL(requests, 1)',
    usingMetrics: {
      errors: targetGroup.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, { period }),
      requests: targetGroup.metrics.requestCount({ period }),
    },
    period,
    label: `${color} target 5xx rate (%)`,
  });
  return [
    errorRate.createAlarm(scope, `${color}Target5xxRate`, {
      alarmDescription: `More than ${TARGET_5XX_RATE_PERCENT}% of the ${color.toLowerCase()} target group's responses are 5xx; rolls back a running deployment`,
      threshold: TARGET_5XX_RATE_PERCENT,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    }),
    targetGroup.metrics
      .unhealthyHostCount({ period, statistic: cloudwatch.Stats.MAXIMUM })
      .createAlarm(scope, `${color}UnhealthyHosts`, {
        alarmDescription: `The ${color.toLowerCase()} target group has unhealthy tasks; rolls back a running deployment`,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 2,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
  ];
}

/**
 * Turns on access logs like `ApplicationLoadBalancer.logAccessLogs`, which needs the region at
 * synthesis. Environment-agnostic stacks look the region's load-balancer account up at deploy time;
 * regions opened since August 2022 have none and deliver as the log delivery service instead.
 */
function logLoadBalancerAccess(
  loadBalancer: elbv2.ApplicationLoadBalancer,
  bucket: s3.Bucket,
  prefix: string,
): void {
  const stack = Stack.of(loadBalancer);
  const mapId = 'LoadBalancerLogAccounts';
  const accounts =
    (stack.node.tryFindChild(mapId) as CfnMapping | undefined) ??
    new CfnMapping(stack, mapId, {
      mapping: Object.fromEntries(
        RegionInfo.regions.map((region) => [region.name, { account: region.elbv2Account ?? 'none' }]),
      ),
    });
  const conditionId = 'RegionHasLoadBalancerLogAccount';
  const hasAccount =
    (stack.node.tryFindChild(conditionId) as CfnCondition | undefined) ??
    new CfnCondition(stack, conditionId, {
      expression: Fn.conditionNot(Fn.conditionEquals(accounts.findInMap(Aws.REGION, 'account'), 'none')),
    });
  const logObjects = bucket.arnForObjects(`${prefix}/AWSLogs/${Aws.ACCOUNT_ID}/*`);
  bucket.addToResourcePolicy(
    new iam.PolicyStatement({
      actions: ['s3:PutObject'],
      // In a region without a load-balancer account, the own account stands in: it could write anyway.
      principals: [
        new iam.ArnPrincipal(
          Fn.conditionIf(
            hasAccount.logicalId,
            `arn:${Aws.PARTITION}:iam::${accounts.findInMap(Aws.REGION, 'account')}:root`,
            `arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:root`,
          ).toString(),
        ),
      ],
      resources: [logObjects],
    }),
  );
  bucket.addToResourcePolicy(
    new iam.PolicyStatement({
      actions: ['s3:PutObject'],
      principals: [new iam.ServicePrincipal('logdelivery.elasticloadbalancing.amazonaws.com')],
      resources: [logObjects],
    }),
  );
  loadBalancer.setAttribute('access_logs.s3.enabled', 'true');
  loadBalancer.setAttribute('access_logs.s3.bucket', bucket.bucketName);
  loadBalancer.setAttribute('access_logs.s3.prefix', prefix);
  // The load balancer checks that it may write when the attribute is set.
  if (bucket.policy) loadBalancer.node.addDependency(bucket.policy);
}
