import { ArnFormat, Stack, Validations } from 'aws-cdk-lib';
import type * as codedeploy from 'aws-cdk-lib/aws-codedeploy';
import * as codepipeline from 'aws-cdk-lib/aws-codepipeline';
import * as actions from 'aws-cdk-lib/aws-codepipeline-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { IMAGE_PLACEHOLDER_NAME } from '../deploy-templates';
import { createArtifactStore } from './artifact-store';

/** One service the pipeline deploys to, in its own stage. */
export interface DeployTarget {
  /**
   * Names the target's stage and its templates in the artifact (`taskdef-<name>.json`,
   * `appspec-<name>.yaml`). Lowercase letters, digits and `-`.
   * @default the pipeline's only target: stage `Deploy`, `taskdef.json` and `appspec.yaml`
   */
  readonly name?: string;
  /** The Blue/Green deployment group of the target's service. */
  readonly deploymentGroup: codedeploy.IEcsDeploymentGroup;
  /** The roles in the service's task definitions: the only roles the deploy action may pass to ECS. */
  readonly taskRoles: readonly iam.IRole[];
  /**
   * Wait for a person's approval (announced on the notification topic) before deploying.
   * @default false
   */
  readonly approval?: boolean;
  /**
   * The role the deploy action assumes, when the target is in another account (made there, with the
   * deploy permissions and read access to the artifact store).
   * @default a role in the pipeline's account with exactly the deploy permissions
   */
  readonly role?: iam.IRole;
}

/**
 * A deploy pipeline's artifact store in another region of the pipeline's account, by name:
 * CloudFormation references do not cross regions.
 */
export interface RegionalArtifactStore {
  /** The bucket's name. */
  readonly bucketName: string;
  /**
   * The alias (`alias/…`) of the customer-managed key that encrypts the bucket, which deploy roles
   * in other accounts need.
   * @default S3-managed encryption
   */
  readonly keyAliasName?: string;
}

/** The artifact files CodePipeline reads for one target. */
export function deployTemplateFiles(targetName: string | undefined): { taskdef: string; appspec: string } {
  return targetName === undefined
    ? { taskdef: 'taskdef.json', appspec: 'appspec.yaml' }
    : { taskdef: `taskdef-${targetName}.json`, appspec: `appspec-${targetName}.yaml` };
}

export interface DeployPipelineProps {
  /** The bucket the build writes the deploy artifact to; versioned, with EventBridge notifications on. */
  readonly artifactBucket: s3.IBucket;
  /** Key of this service's artifact zip (`imageDetail.json` and each target's templates). */
  readonly artifactKey: string;
  /** Where the image goes, in order; one stage each. */
  readonly targets: readonly DeployTarget[];
  /** Bucket for the S3 access logs of the pipeline's own artifact store. */
  readonly accessLogsBucket: s3.IBucket;
  /**
   * Where failed pipeline runs and failed (rolled back) deployments are announced.
   * @default no notifications
   */
  readonly notificationTopic?: sns.ITopic;
  /**
   * The artifact store of each other region a target runs in, by region: CodePipeline copies the
   * artifact there before the region's deploy action reads it. Each lives in the pipeline's account;
   * its bucket policy (and key policy) let that region's deploy roles read.
   * @default none: every target is in the pipeline's region
   */
  readonly crossRegionArtifactStores?: Readonly<Record<string, RegionalArtifactStore>>;
}

/**
 * The CodePipeline (V2) that deploys each new artifact: S3 source on exactly the artifact key,
 * started by an EventBridge rule on the object's creation (no polling), then per target an optional
 * manual approval and a CodeDeploy ECS Blue/Green action that registers the target's `taskdef` with
 * the commit's image (the same `imageDetail.json` for every target) and deploys it with its
 * `appspec`.
 */
export class DeployPipeline extends Construct {
  public readonly pipeline: codepipeline.Pipeline;
  /** The EventBridge rule that starts the pipeline when the artifact is written. */
  public readonly trigger: events.Rule;
  /** The role of the first target's Blue/Green deploy action. */
  public readonly deployRole: iam.IRole;
  /** The role of each target's Blue/Green deploy action, in target order. */
  public readonly deployRoles: readonly iam.IRole[];
  private readonly crossRegionArtifactStores: Readonly<Record<string, s3.IBucket>>;
  private readonly pipelineKeyGrants: iam.PolicyStatement[] = [];

  constructor(scope: Construct, id: string, props: DeployPipelineProps) {
    super(scope, id);
    validateTargets(props.targets);
    this.crossRegionArtifactStores = Object.fromEntries(
      Object.entries(props.crossRegionArtifactStores ?? {}).map(([region, store]) => [
        region,
        this.importArtifactStore(region, store),
      ]),
    );

    // A deploy action in another account reads the artifacts; CodePipeline requires a KMS key then.
    // One in another region reads the store there.
    const crossAccount = props.targets.some(
      (t) =>
        t.role !== undefined &&
        !sameAccount(t.role, this) &&
        Stack.of(t.deploymentGroup).region === Stack.of(this).region,
    );
    const artifactStore = createArtifactStore(this, 'ArtifactStore', {
      customerManagedKey: crossAccount,
      accessLogsBucket: props.accessLogsBucket,
    });

    this.pipeline = new codepipeline.Pipeline(this, 'Pipeline', {
      pipelineType: codepipeline.PipelineType.V2,
      executionMode: codepipeline.ExecutionMode.SUPERSEDED,
      // CDK takes the home store either as the artifact bucket or, with stores elsewhere, among them.
      ...(Object.keys(this.crossRegionArtifactStores).length === 0
        ? { artifactBucket: artifactStore }
        : {
            crossRegionReplicationBuckets: {
              ...this.crossRegionArtifactStores,
              [Stack.of(this).region]: artifactStore,
            },
          }),
      crossAccountKeys: false,
      restartExecutionOnUpdate: false,
    });

    for (const statement of this.pipelineKeyGrants) this.pipeline.addToRolePolicy(statement);

    const artifact = new codepipeline.Artifact('DeployArtifact');
    this.pipeline.addStage({
      stageName: 'Source',
      actions: [
        new actions.S3SourceAction({
          actionName: 'Artifact',
          bucket: props.artifactBucket,
          bucketKey: props.artifactKey,
          output: artifact,
          // The EventBridge rule below starts the pipeline; neither polling nor CloudTrail.
          trigger: actions.S3Trigger.NONE,
        }),
      ],
    });

    this.deployRoles = props.targets.map((target) =>
      this.addTarget(target, artifact, artifactStore, props.notificationTopic),
    );
    this.deployRole = this.deployRoles[0] as iam.IRole;

    this.trigger = new events.Rule(this, 'ArtifactCreated', {
      description: `Starts the deploy pipeline when s3://…/${props.artifactKey} is written`,
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: {
          bucket: { name: [props.artifactBucket.bucketName] },
          object: { key: [props.artifactKey] },
        },
      },
      targets: [new targets.CodePipeline(this.pipeline)],
    });

    if (props.notificationTopic) {
      // CodeDeploy's events stay on the event bus of the target's account and region: only
      // deployments here can be watched from here. A failed deployment elsewhere still fails its
      // deploy action, and so the pipeline run, which is announced.
      this.notifyFailures(
        props.notificationTopic,
        props.targets
          .map((t) => t.deploymentGroup)
          .filter(
            (group) =>
              group.env.account === Stack.of(this).account && group.env.region === Stack.of(this).region,
          ),
      );
    }
    acknowledgeArtifactStoreGrants(
      [this.pipeline, ...this.deployRoles.filter((role) => role.node.scope === this)],
      artifactStore,
      Object.entries(props.crossRegionArtifactStores ?? {}).map(([region, store]) => ({ region, ...store })),
    );
  }

  /** The target's stage: the approval when it asks for one, then its Blue/Green deploy. */
  private addTarget(
    target: DeployTarget,
    artifact: codepipeline.Artifact,
    artifactStore: s3.IBucket,
    topic: sns.ITopic | undefined,
  ): iam.IRole {
    const store = this.artifactStoreOf(target, artifactStore);
    const role = target.role ?? this.createDeployRole(target, store);
    const files = deployTemplateFiles(target.name);
    const deploy = new actions.CodeDeployEcsDeployAction({
      actionName: 'BlueGreen',
      deploymentGroup: target.deploymentGroup,
      taskDefinitionTemplateFile: artifact.atPath(files.taskdef),
      appSpecTemplateFile: artifact.atPath(files.appspec),
      containerImageInputs: [{ input: artifact, taskDefinitionPlaceholder: IMAGE_PLACEHOLDER_NAME }],
      // The action would grant iam:PassRole on every role; grantDeploy scopes it to the task roles.
      role: iam.Role.isRole(role) ? role.withoutPolicyUpdates() : role,
      runOrder: target.approval ? 2 : 1,
    });
    const approval = target.approval
      ? [
          new actions.ManualApprovalAction({
            actionName: 'Approve',
            notificationTopic: topic,
            additionalInformation: `Deploy this commit's image to ${target.name ?? 'the service'}?`,
            runOrder: 1,
          }),
        ]
      : [];
    const stageName = target.name === undefined ? 'Deploy' : `Deploy-${target.name}`;
    this.pipeline.addStage({ stageName, actions: [...approval, deploy] });
    const approvalScope = this.pipeline.node.tryFindChild(stageName)?.node.tryFindChild('Approve');
    if (approvalScope && topic) {
      Validations.of(approvalScope).acknowledge({
        id: 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
        reason:
          "Publishing the approval request to the KMS-encrypted notification topic needs data keys of that topic's key; the grant names that key only.",
      });
    }
    return role;
  }

  /**
   * A store in another region as CodePipeline takes it. The pipeline role copies artifacts into it
   * under the key's alias: KMS authorizes by key, and a key's ARN cannot be exported across regions,
   * so the grant names every key of that region and account, narrowed by `kms:ResourceAliases` to
   * the store's own ("Use aliases to control access to KMS keys",
   * https://docs.aws.amazon.com/kms/latest/developerguide/alias-authorization.html).
   */
  private importArtifactStore(region: string, store: RegionalArtifactStore): s3.IBucket {
    const stack = Stack.of(this);
    const id = `ArtifactStore${pascalCase(region)}`;
    const keyArn =
      store.keyAliasName === undefined
        ? undefined
        : stack.formatArn({
            service: 'kms',
            region,
            resource: store.keyAliasName,
            arnFormat: ArnFormat.NO_RESOURCE_NAME,
          });
    if (store.keyAliasName !== undefined) {
      this.pipelineKeyGrants.push(
        new iam.PolicyStatement({
          actions: ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey'],
          resources: [stack.formatArn({ service: 'kms', region, resource: 'key', resourceName: '*' })],
          conditions: { 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': store.keyAliasName } },
        }),
      );
    }
    // CDK's own grants on this imported key name the alias ARN, by which KMS authorizes nothing; the
    // statement above is the one that lets the pipeline role use the key.
    return s3.Bucket.fromBucketAttributes(this, id, {
      bucketName: store.bucketName,
      region,
      account: stack.account,
      encryptionKey: keyArn === undefined ? undefined : kms.Key.fromKeyArn(this, `${id}Key`, keyArn),
    });
  }

  /** The store the target's deploy action reads: the pipeline's own, or the copy in the target's region. */
  private artifactStoreOf(target: DeployTarget, home: s3.IBucket): s3.IBucket {
    const region = Stack.of(target.deploymentGroup).region;
    if (region === Stack.of(this).region) return home;
    const store = this.crossRegionArtifactStores[region];
    if (store === undefined) {
      throw new Error(
        `DeployPipeline: target ${target.name ?? 'the target'} is in ${region}, but crossRegionArtifactStores has no store there (got ${Object.keys(this.crossRegionArtifactStores).join(', ') || 'none'})`,
      );
    }
    return store;
  }

  private createDeployRole(target: DeployTarget, artifactStore: s3.IBucket): iam.Role {
    const suffix = target.name === undefined ? '' : pascalCase(target.name);
    const role = new iam.Role(this, `DeployRole${suffix}`, {
      assumedBy: new iam.ArnPrincipal(this.pipeline.role.roleArn),
      description:
        target.name === undefined
          ? 'CodePipeline registers the task definition and starts the Blue/Green deployment as this role'
          : `CodePipeline registers the task definition and starts the Blue/Green deployment of ${target.name} as this role`,
    });
    grantDeploy(role, target.deploymentGroup, target.taskRoles, artifactStore);
    return role;
  }

  private notifyFailures(
    topic: sns.ITopic,
    deploymentGroups: readonly codedeploy.IEcsDeploymentGroup[],
  ): void {
    this.pipeline.onStateChange('PipelineFailed', {
      description: 'Announces failed runs of the deploy pipeline, except the run it starts on creation',
      eventPattern: { detail: { state: ['FAILED'], $or: NOT_STARTED_BY_CREATION } },
      target: new targets.SnsTopic(topic, {
        message: events.RuleTargetInput.fromText(
          `Deploy pipeline ${events.EventField.fromPath('$.detail.pipeline')} failed (execution ${events.EventField.fromPath('$.detail.execution-id')}).`,
        ),
      }),
    });
    deploymentGroups.forEach((deploymentGroup, index) => {
      new events.Rule(this, index === 0 ? 'DeploymentFailed' : `DeploymentFailed${index + 1}`, {
        description: 'Announces failed (rolled back) Blue/Green deployments',
        eventPattern: {
          source: ['aws.codedeploy'],
          detailType: ['CodeDeploy Deployment State-change Notification'],
          detail: {
            application: [deploymentGroup.application.applicationName],
            deploymentGroup: [deploymentGroup.deploymentGroupName],
            state: ['FAILURE'],
          },
        },
        targets: [
          new targets.SnsTopic(topic, {
            message: events.RuleTargetInput.fromText(
              `Blue/Green deployment ${events.EventField.fromPath('$.detail.deploymentId')} of ${events.EventField.fromPath('$.detail.deploymentGroup')} failed; CodeDeploy rolls it back to the running version.`,
            ),
          }),
        ],
      });
    });
  }
}

/**
 * CodePipeline starts every new pipeline once by itself. At that time no build has written the
 * artifact, so the source stage fails: on every install and every re-created stack. That run's
 * execution trigger is `CreatePipeline` (CodePipeline API Reference, "ExecutionTrigger":
 * https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_ExecutionTrigger.html), which
 * the pipeline execution event carries as `detail.execution-trigger.trigger-type`; such a failure
 * pages no one. An event without a trigger is still announced.
 */
export const NOT_STARTED_BY_CREATION = [
  { 'execution-trigger': { 'trigger-type': events.Match.anythingBut('CreatePipeline') } },
  { 'execution-trigger': { 'trigger-type': events.Match.doesNotExist() } },
];

function validateTargets(targets: readonly DeployTarget[]): void {
  if (targets.length === 0)
    throw new Error('DeployPipeline: targets must list at least one service (got none)');
  const names = targets.map((t) => t.name);
  if (names.includes(undefined) && targets.length > 1) {
    throw new Error('DeployPipeline: with more than one target, every target needs a name');
  }
  const duplicate = names.find((name, i) => name !== undefined && names.indexOf(name) !== i);
  if (duplicate !== undefined) throw new Error(`DeployPipeline: target name ${duplicate} is used twice`);
  for (const target of targets) {
    if (target.name !== undefined && !/^[a-z][a-z0-9-]*$/.test(target.name)) {
      throw new Error(
        `DeployPipeline: target name ${JSON.stringify(target.name)} must be lowercase letters, digits and -`,
      );
    }
    if (target.taskRoles.length === 0) {
      throw new Error(
        `DeployPipeline: taskRoles of ${target.name ?? 'the target'} must name the roles of the task definition (got none)`,
      );
    }
  }
  if (targets[0]?.approval) {
    throw new Error(
      'DeployPipeline: the first target cannot wait for an approval: nothing before it was deployed',
    );
  }
}

function sameAccount(a: Construct, b: Construct): boolean {
  return Stack.of(a).account === Stack.of(b).account;
}

/** `production-eu` → `ProductionEu`: construct IDs from environment names. */
export function pascalCase(name: string): string {
  return name
    .split('-')
    .map((part) => `${part.charAt(0).toUpperCase()}${part.slice(1)}`)
    .join('');
}

/**
 * What the Blue/Green action does as its role: register the revision and deploy it, nothing more;
 * and read the artifact store when it is in the role's account.
 */
export function grantDeploy(
  role: iam.Role,
  deploymentGroup: codedeploy.IEcsDeploymentGroup,
  taskRoles: readonly iam.IRole[],
  artifactStore?: s3.IBucket,
): void {
  role.addToPolicy(
    new iam.PolicyStatement({
      actions: [
        'codedeploy:GetApplication',
        'codedeploy:GetApplicationRevision',
        'codedeploy:RegisterApplicationRevision',
      ],
      resources: [deploymentGroup.application.applicationArn],
    }),
  );
  role.addToPolicy(
    new iam.PolicyStatement({
      actions: ['codedeploy:CreateDeployment', 'codedeploy:GetDeployment'],
      resources: [deploymentGroup.deploymentGroupArn],
    }),
  );
  role.addToPolicy(
    new iam.PolicyStatement({
      actions: ['codedeploy:GetDeploymentConfig'],
      resources: [deploymentGroup.deploymentConfig.deploymentConfigArn],
    }),
  );
  role.addToPolicy(new iam.PolicyStatement({ actions: ['ecs:RegisterTaskDefinition'], resources: ['*'] }));
  role.addToPolicy(
    new iam.PolicyStatement({
      actions: ['iam:PassRole'],
      resources: taskRoles.map((taskRole) => taskRole.roleArn),
      conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
    }),
  );
  artifactStore?.grantRead(role);
  Validations.of(role).acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason:
      'ecs:RegisterTaskDefinition has no resource-level permissions; iam:PassRole is limited to the task roles.',
  });
}

/**
 * CodePipeline's own grants on its artifact store (read and write for the pipeline and the source
 * action, read for the deploy action) use S3's action groups and the bucket's object wildcard. The
 * bucket holds nothing but this pipeline's artifacts, so the wildcards reach no further.
 */
function acknowledgeArtifactStoreGrants(
  scopes: readonly Construct[],
  artifactStore: s3.Bucket,
  elsewhere: readonly (RegionalArtifactStore & { region: string })[],
): void {
  const stack = Stack.of(artifactStore);
  const bucketLogicalId = stack.resolve((artifactStore.node.defaultChild as s3.CfnBucket).logicalId);
  const reason =
    "CodePipeline's grants on its own artifact store (and its key), which hold only this pipeline's artifacts.";
  const findings = [
    'Action::s3:Abort*',
    'Action::s3:DeleteObject*',
    'Action::s3:GetBucket*',
    'Action::s3:GetObject*',
    'Action::s3:List*',
    `Resource::<${bucketLogicalId}.Arn>/*`,
    // With a key (deploy targets in other accounts): CodePipeline's grants on that key alone.
    ...(artifactStore.encryptionKey || elsewhere.some((store) => store.keyAliasName !== undefined)
      ? ['Action::kms:GenerateDataKey*', 'Action::kms:ReEncrypt*']
      : []),
    // Its stores in other regions: the bucket by name, and that region's keys under the store's alias.
    ...elsewhere.flatMap((store) => [
      `Resource::arn:<AWS::Partition>:s3:::${stack.resolve(store.bucketName)}/*`,
      ...(store.keyAliasName === undefined
        ? []
        : [`Resource::arn:<AWS::Partition>:kms:${store.region}:${stack.account}:key/*`]),
    ]),
  ];
  for (const scope of scopes) {
    Validations.of(scope).acknowledge(
      ...findings.map((finding) => ({ id: `AwsSolutions-IAM5[${finding}]`, reason })),
    );
  }
}
