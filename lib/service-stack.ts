import { CfnOutput, Duration, PhysicalName, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import type { Construct } from 'constructs';
import {
  type DeployConfig,
  type DeployEnvironment,
  type PipelineConfig,
  projectSuffix,
  type RepositoryConfig,
  type ValidationConfig,
} from './config/schema';
import { BlueGreenService } from './constructs/blue-green-service';
import { DeployPipeline, type DeployTarget, grantDeploy } from './constructs/deploy-pipeline';
import { natPublicIps, type ServiceNetwork, zonesResolvedAtDeploy } from './constructs/service-network';
import { ValidationHook } from './constructs/validation-hook';
import {
  ADVANCED_PARAMETER_LIMIT,
  renderAppSpecTemplate,
  renderTaskDefinitionTemplate,
  STANDARD_PARAMETER_LIMIT,
  worstCaseTaskDefinitionLength,
} from './deploy-templates';
import { artifactKey, deployTemplateParameterName } from './resource-names';

export interface ServiceStackProps extends StackProps {
  /** The validated config (installation-wide settings such as the name prefix). */
  readonly config: PipelineConfig;
  /** The repository this stack deploys; it must have a `deploy` section. */
  readonly repository: RepositoryConfig;
  /** The shared artifact bucket the build writes the deploy artifact to. */
  readonly artifactBucket: s3.IBucket;
  /** The repository's ECR repository, holding the commit images the service runs. */
  readonly imageRepository: ecr.IRepository;
  /**
   * The named environment (of `deploy.environments`) this stack serves. Then the stack holds that
   * environment's service and deploy templates only; the repository's `PipelineStack` deploys it.
   * @default the repository's one service, with its deploy pipeline in this stack
   */
  readonly deployEnvironment?: DeployEnvironment;
  /**
   * The account of the pipeline that deploys this environment. When it is another account, this
   * stack makes the role the pipeline's deploy action assumes, and the pipeline's stack publishes the
   * deploy templates.
   * @default this stack's account
   */
  readonly pipelineAccount?: string;
  /**
   * The network the service shares with the installation's other services in this account and
   * region (a `NetworkStack`'s). Not for a `deploy.vpc` with `vpcId`: that VPC is imported here.
   * @default a VPC of the service's own in this stack, shaped by `deploy.vpc`
   */
  readonly network?: ServiceNetwork;
  /**
   * The region of the pipeline that deploys this environment. When it is another region, the
   * pipeline's stack publishes the deploy templates (the build reads parameters of its own region).
   * @default this stack's region
   */
  readonly pipelineRegion?: string;
}

/**
 * One repository's ECS service and its deploy pipeline (or, with `deploy.environments`, one
 * environment's service). A stack of its own because CodeDeploy, not CloudFormation, owns the
 * running task definition and the listeners' target groups after the first rollout; keeping them
 * apart from the build means a later `cdk deploy` of the build never touches the service.
 */
export class ServiceStack extends Stack {
  public readonly service: BlueGreenService;
  /** The deploy pipeline, unless the repository's `PipelineStack` deploys this environment. */
  public readonly pipeline?: DeployPipeline;
  /** Failed pipeline runs and failed deployments are published here (when the pipeline is here). */
  public readonly notifications?: sns.Topic;
  /** The environment this stack serves; unnamed without `deploy.environments`. */
  public readonly deployEnvironment: DeployEnvironment;
  /** The check before production traffic, when `deploy.validation` asks for one. */
  public readonly validationHook?: ValidationHook;
  /** The templates the build reads; in the pipeline's stack when this stack is in another account. */
  public readonly taskDefinitionTemplate?: ssm.StringParameter;
  public readonly appSpecTemplate?: ssm.StringParameter;
  /**
   * The role the pipeline's deploy action assumes, when the pipeline runs in another account or
   * region (CodePipeline then reads the artifact from its store in this region as this role).
   */
  public readonly pipelineDeployRole?: iam.Role;
  private readonly pipelineAccount?: string;
  private readonly config: PipelineConfig;
  private readonly repository: RepositoryConfig;
  private readonly zoneCount: number;
  /** Where the validation hook reaches the internet-facing test listener from. */
  private readonly egressIps: readonly string[];
  private readonly pipelineRegion?: string;

  constructor(scope: Construct, id: string, props: ServiceStackProps) {
    super(scope, id, props);
    const { config, repository } = props;
    if (repository.deploy === undefined) {
      throw new Error(
        `ServiceStack: repository ${repository.name} has no deploy section; only deployed repositories get a service stack`,
      );
    }
    this.config = config;
    this.repository = repository;
    this.pipelineRegion = props.pipelineRegion;
    this.pipelineAccount = props.pipelineAccount;
    this.deployEnvironment = props.deployEnvironment ?? { approval: false, deploy: repository.deploy };
    const { deploy, name: environmentName } = this.deployEnvironment;
    this.zoneCount = deploy.vpc !== undefined && 'maxAzs' in deploy.vpc ? deploy.vpc.maxAzs : 2;
    const family = `${config.name}-${projectSuffix(repository.name)}`;

    this.service = new BlueGreenService(this, 'Service', {
      deploy,
      family: environmentName === undefined ? family : `${family}-${environmentName}`,
      imageRepository: props.imageRepository,
      cpuArchitecture: cpuArchitecture(repository),
      vpc: props.network?.vpc,
    });
    this.egressIps = props.network?.egressIps ?? natPublicIps(this.service.vpc);

    if (props.pipelineAccount !== undefined && (this.crossAccount || this.crossRegion)) {
      this.pipelineDeployRole = this.createPipelineDeployRole(props.pipelineAccount);
    }

    const scheme = deploy.certificateArn ? 'https' : 'http';
    const testUrl = `${scheme}://${this.service.loadBalancer.loadBalancerDnsName}:${deploy.testListenerPort}`;
    if (deploy.validation) this.validationHook = this.addValidationHook(deploy, deploy.validation, testUrl);

    if (environmentName === undefined) {
      this.notifications = notificationTopic(this, deploy);
      this.pipeline = new DeployPipeline(this, 'Deploy', {
        artifactBucket: props.artifactBucket,
        artifactKey: artifactKey(repository),
        targets: [this.deployTarget()],
        accessLogsBucket: this.service.logsBucket,
        notificationTopic: this.notifications,
      });
    }

    if (!this.deployTemplatesElsewhere) {
      const published = this.publishDeployTemplates(this, '');
      this.taskDefinitionTemplate = published.taskdef;
      this.appSpecTemplate = published.appspec;
    }

    new CfnOutput(this, 'ServiceUrl', {
      value: `${scheme}://${this.service.loadBalancer.loadBalancerDnsName}/`,
      description: `Production URL of ${repository.name}`,
    });
    new CfnOutput(this, 'TestUrl', {
      value: `${scheme}://${this.service.loadBalancer.loadBalancerDnsName}:${deploy.testListenerPort}/`,
      description:
        'Test listener: the new version before traffic shifts (reachable from deploy.testListenerCidrs)',
    });
    if (this.pipeline) new CfnOutput(this, 'PipelineName', { value: this.pipeline.pipeline.pipelineName });
    new CfnOutput(this, 'CodeDeployApplication', { value: this.service.application.applicationName });
    new CfnOutput(this, 'DeploymentGroup', { value: this.service.deploymentGroup.deploymentGroupName });
    new CfnOutput(this, 'ClusterName', { value: this.service.cluster.clusterName });
    new CfnOutput(this, 'ServiceName', { value: this.service.service.serviceName });
    if (this.notifications) {
      new CfnOutput(this, 'NotificationTopicArn', { value: this.notifications.topicArn });
    }
  }

  /**
   * The `AfterAllowTestTraffic` check. The load balancer is internet-facing, so the function reaches
   * the test listener through the NAT gateways' public addresses, which the listener admits.
   */
  private addValidationHook(
    deploy: DeployConfig,
    validation: ValidationConfig,
    testUrl: string,
  ): ValidationHook {
    if (deploy.certificateArn !== undefined) {
      throw new Error(
        `ServiceStack: deploy.validation cannot check an HTTPS test listener yet (the load balancer's DNS name does not match ${deploy.certificateArn}); leave validation out where certificateArn is set`,
      );
    }
    const hook = new ValidationHook(this, 'Validation', {
      vpc: this.service.vpc,
      testUrl: `${testUrl}${validation.path}`,
      expectStatus: validation.expectStatus,
      timeout: Duration.seconds(validation.timeoutSeconds),
      deploymentGroup: this.service.deploymentGroup,
      logRetention: deploy.logRetentionDays as RetentionDays,
    });
    hook.grantInvoke(this.service.deploymentGroup.role);
    for (const ip of this.egressIps) {
      this.service.testListener.connections.allowDefaultPortFrom(
        ec2.Peer.ipv4(`${ip}/32`),
        'Validation hook, through the NAT gateway',
      );
    }
    return hook;
  }

  /** True when the pipeline that deploys this service runs in another account. */
  public get crossAccount(): boolean {
    return this.pipelineAccount !== undefined && this.pipelineAccount !== this.account;
  }

  /** True when the pipeline that deploys this service runs in another region. */
  public get crossRegion(): boolean {
    return this.pipelineRegion !== undefined && this.pipelineRegion !== this.region;
  }

  /**
   * True when the build cannot read this stack's parameters (it reads those of its own account and
   * region only), so the pipeline's stack publishes this service's deploy templates.
   */
  public get deployTemplatesElsewhere(): boolean {
    return this.crossAccount || this.crossRegion;
  }

  /**
   * Writes the `taskdef` and `appspec` templates the build copies into the artifact, as SSM
   * parameters in `scope`'s stack: this one, or the pipeline's when this stack is in another account
   * or region (the build reads parameters of its own account and region only).
   */
  public publishDeployTemplates(
    scope: Construct,
    idPrefix: string,
  ): { taskdef: ssm.StringParameter; appspec: ssm.StringParameter } {
    const { config, repository } = this;
    const environmentName = this.deployEnvironment.name;
    const taskSettings = this.service.taskSettings;
    const worstCase = worstCaseTaskDefinitionLength(taskSettings);
    if (worstCase > ADVANCED_PARAMETER_LIMIT) {
      throw new Error(
        `ServiceStack: the taskdef.json of ${repository.name} could reach ${worstCase} characters, more than an SSM parameter holds (${ADVANCED_PARAMETER_LIMIT}); shorten deploy.environment or move values into deploy.secrets`,
      );
    }
    const taskdef = new ssm.StringParameter(scope, `${idPrefix}TaskDefinitionTemplate`, {
      parameterName: deployTemplateParameterName(config.name, repository, 'taskdef', environmentName),
      description: `taskdef.json the build of ${repository.name} puts into the deploy artifact (<IMAGE1_NAME> is the commit image)`,
      stringValue: Stack.of(scope).toJsonString(renderTaskDefinitionTemplate(taskSettings), 2),
      tier: worstCase > STANDARD_PARAMETER_LIMIT ? ssm.ParameterTier.ADVANCED : ssm.ParameterTier.STANDARD,
    });
    const appspec = new ssm.StringParameter(scope, `${idPrefix}AppSpecTemplate`, {
      parameterName: deployTemplateParameterName(config.name, repository, 'appspec', environmentName),
      description: `appspec.yaml the build of ${repository.name} puts into the deploy artifact`,
      stringValue: renderAppSpecTemplate(taskSettings, {
        afterAllowTestTraffic: this.validationHook?.function.functionArn,
      }),
    });
    return { taskdef, appspec };
  }

  /**
   * The role a pipeline in `pipelineAccount` (another account, or this account in another region)
   * assumes to deploy here: the deploy permissions on this service. From another account it also
   * reads the pipeline's artifact store, which lives in the pipeline account (its bucket and key
   * policies name this role; without them the wildcard below reaches nothing); in this account the
   * store's bucket policy alone lets it read.
   */
  private createPipelineDeployRole(pipelineAccount: string): iam.Role {
    const role = new iam.Role(this, 'PipelineDeployRole', {
      roleName: PhysicalName.GENERATE_IF_NEEDED,
      assumedBy: new iam.AccountPrincipal(pipelineAccount),
      description: this.crossAccount
        ? `The deploy pipeline in account ${pipelineAccount} deploys this service as this role`
        : `The deploy pipeline in region ${this.pipelineRegion} deploys this service as this role`,
    });
    grantDeploy(role, this.service.deploymentGroup, [this.service.executionRole, this.service.taskRole]);
    if (!this.crossAccount) return role;
    const inPipelineAccount = { StringEquals: { 'aws:ResourceAccount': pipelineAccount } };
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject', 's3:GetObjectVersion'],
        resources: ['*'],
        conditions: inPipelineAccount,
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['kms:Decrypt', 'kms:DescribeKey'],
        resources: ['*'],
        conditions: {
          StringEquals: {
            ...inPipelineAccount.StringEquals,
            'kms:ViaService': `s3.${this.region}.amazonaws.com`,
          },
        },
      }),
    );
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        "The pipeline's artifact store and its key live in the pipeline account and are named there: reads are limited to that account (aws:ResourceAccount), and its bucket and key policies grant this role alone. ecs:RegisterTaskDefinition has no resource-level permissions.",
    });
    return role;
  }

  /** This stack's service as a stage of a deploy pipeline. */
  public deployTarget(): DeployTarget {
    return {
      name: this.deployEnvironment.name,
      deploymentGroup: this.service.deploymentGroup,
      taskRoles: [this.service.executionRole, this.service.taskRole],
      approval: this.deployEnvironment.approval,
      role: this.pipelineDeployRole,
    };
  }
  /** The first `deploy.vpc.maxAzs` zones of the region, resolved by CloudFormation (`zonesResolvedAtDeploy`). */
  public override get availabilityZones(): string[] {
    return zonesResolvedAtDeploy(this.zoneCount ?? 2);
  }
}

/** The platform the build targets decides the tasks' CPU architecture. */
function cpuArchitecture(repository: RepositoryConfig): 'X86_64' | 'ARM64' {
  const platforms = repository.docker.platforms;
  // Without platforms the image is built for the build host's own CPU.
  if (platforms === undefined) return repository.build.arch === 'arm64' ? 'ARM64' : 'X86_64';
  if (platforms.some((p) => p.startsWith('linux/amd64'))) return 'X86_64';
  return 'ARM64';
}

/**
 * An SSL-only topic encrypted with its own key, because EventBridge cannot publish to a topic
 * encrypted with the AWS-managed SNS key.
 */
export function notificationTopic(scope: Construct, deploy: DeployConfig): sns.Topic {
  const key = new kms.Key(scope, 'NotificationKey', {
    description: 'Encrypts the deploy notifications topic',
    enableKeyRotation: true,
    pendingWindow: Duration.days(7),
  });
  key.grant(new iam.ServicePrincipal('events.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
  const topic = new sns.Topic(scope, 'Notifications', {
    displayName: 'pushline deploy failures',
    masterKey: key,
    enforceSSL: true,
  });
  if (deploy.notificationEmail) {
    topic.addSubscription(new subscriptions.EmailSubscription(deploy.notificationEmail));
  }
  return topic;
}
