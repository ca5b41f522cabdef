import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type * as codedeploy from 'aws-cdk-lib/aws-codedeploy';
import * as codepipeline from 'aws-cdk-lib/aws-codepipeline';
import * as actions from 'aws-cdk-lib/aws-codepipeline-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { IMAGE_PLACEHOLDER_NAME } from '../deploy-templates';

export interface DeployPipelineProps {
  /** The bucket the build writes the deploy artifact to; versioned, with EventBridge notifications on. */
  readonly artifactBucket: s3.IBucket;
  /** Key of this service's artifact zip (`imageDetail.json`, `taskdef.json`, `appspec.yaml`). */
  readonly artifactKey: string;
  /** The Blue/Green deployment group the pipeline deploys to. */
  readonly deploymentGroup: codedeploy.IEcsDeploymentGroup;
  /** The roles in the service's task definitions: the only roles the deploy action may pass to ECS. */
  readonly taskRoles: readonly iam.IRole[];
  /** Bucket for the S3 access logs of the pipeline's own artifact store. */
  readonly accessLogsBucket: s3.IBucket;
  /**
   * Where failed pipeline runs and failed (rolled back) deployments are announced.
   * @default no notifications
   */
  readonly notificationTopic?: sns.ITopic;
}

/**
 * The CodePipeline (V2) that deploys each new artifact: S3 source on exactly the artifact key,
 * started by an EventBridge rule on the object's creation (no polling), then a CodeDeploy ECS
 * Blue/Green action that registers `taskdef.json` with the commit's image and deploys it with
 * `appspec.yaml`.
 */
export class DeployPipeline extends Construct {
  public readonly pipeline: codepipeline.Pipeline;
  /** The EventBridge rule that starts the pipeline when the artifact is written. */
  public readonly trigger: events.Rule;
  /** The role of the Blue/Green deploy action. */
  public readonly deployRole: iam.Role;

  constructor(scope: Construct, id: string, props: DeployPipelineProps) {
    super(scope, id);
    if (props.taskRoles.length === 0) {
      throw new Error('DeployPipeline: taskRoles must name the roles of the task definition (got none)');
    }

    const artifactStore = new s3.Bucket(this, 'ArtifactStore', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: props.accessLogsBucket,
      serverAccessLogsPrefix: 'pipeline-artifact-store/',
      removalPolicy: RemovalPolicy.RETAIN,
      // Copies of deploy artifacts; the build's originals stay versioned in the artifact bucket.
      lifecycleRules: [{ expiration: Duration.days(30) }],
    });

    this.pipeline = new codepipeline.Pipeline(this, 'Pipeline', {
      pipelineType: codepipeline.PipelineType.V2,
      executionMode: codepipeline.ExecutionMode.SUPERSEDED,
      artifactBucket: artifactStore,
      crossAccountKeys: false,
      restartExecutionOnUpdate: false,
    });

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

    this.deployRole = new iam.Role(this, 'DeployRole', {
      assumedBy: new iam.ArnPrincipal(this.pipeline.role.roleArn),
      description:
        'CodePipeline registers the task definition and starts the Blue/Green deployment as this role',
    });
    this.grantDeploy(props.deploymentGroup, props.taskRoles, artifactStore);
    this.pipeline.addStage({
      stageName: 'Deploy',
      actions: [
        new actions.CodeDeployEcsDeployAction({
          actionName: 'BlueGreen',
          deploymentGroup: props.deploymentGroup,
          taskDefinitionTemplateFile: artifact.atPath('taskdef.json'),
          appSpecTemplateFile: artifact.atPath('appspec.yaml'),
          containerImageInputs: [{ input: artifact, taskDefinitionPlaceholder: IMAGE_PLACEHOLDER_NAME }],
          // The action would grant iam:PassRole on every role; grantDeploy scopes it to the task roles.
          role: this.deployRole.withoutPolicyUpdates(),
        }),
      ],
    });

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

    if (props.notificationTopic) this.notifyFailures(props.notificationTopic, props.deploymentGroup);
    acknowledgeArtifactStoreGrants([this.pipeline, this.deployRole], artifactStore);
  }

  private grantDeploy(
    deploymentGroup: codedeploy.IEcsDeploymentGroup,
    taskRoles: readonly iam.IRole[],
    artifactStore: s3.IBucket,
  ): void {
    this.deployRole.addToPolicy(
      new iam.PolicyStatement({
        actions: [
          'codedeploy:GetApplication',
          'codedeploy:GetApplicationRevision',
          'codedeploy:RegisterApplicationRevision',
        ],
        resources: [deploymentGroup.application.applicationArn],
      }),
    );
    this.deployRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['codedeploy:CreateDeployment', 'codedeploy:GetDeployment'],
        resources: [deploymentGroup.deploymentGroupArn],
      }),
    );
    this.deployRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['codedeploy:GetDeploymentConfig'],
        resources: [deploymentGroup.deploymentConfig.deploymentConfigArn],
      }),
    );
    this.deployRole.addToPolicy(
      new iam.PolicyStatement({ actions: ['ecs:RegisterTaskDefinition'], resources: ['*'] }),
    );
    this.deployRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['iam:PassRole'],
        resources: taskRoles.map((role) => role.roleArn),
        conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
      }),
    );
    artifactStore.grantRead(this.deployRole);
    Validations.of(this.deployRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'ecs:RegisterTaskDefinition has no resource-level permissions; iam:PassRole is limited to the task roles.',
    });
  }

  private notifyFailures(topic: sns.ITopic, deploymentGroup: codedeploy.IEcsDeploymentGroup): void {
    this.pipeline.onStateChange('PipelineFailed', {
      description: 'Announces failed runs of the deploy pipeline',
      eventPattern: { detail: { state: ['FAILED'] } },
      target: new targets.SnsTopic(topic, {
        message: events.RuleTargetInput.fromText(
          `Deploy pipeline ${events.EventField.fromPath('$.detail.pipeline')} failed (execution ${events.EventField.fromPath('$.detail.execution-id')}).`,
        ),
      }),
    });
    new events.Rule(this, 'DeploymentFailed', {
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
  }
}

/**
 * CodePipeline's own grants on its artifact store (read and write for the pipeline and the source
 * action, read for the deploy action) use S3's action groups and the bucket's object wildcard. The
 * bucket holds nothing but this pipeline's artifacts, so the wildcards reach no further.
 */
function acknowledgeArtifactStoreGrants(scopes: readonly Construct[], artifactStore: s3.Bucket): void {
  const bucketLogicalId = Stack.of(artifactStore).resolve(
    (artifactStore.node.defaultChild as s3.CfnBucket).logicalId,
  );
  const reason =
    "CodePipeline's grants on its own artifact store, a bucket that holds only this pipeline's artifacts.";
  const findings = [
    'Action::s3:Abort*',
    'Action::s3:DeleteObject*',
    'Action::s3:GetBucket*',
    'Action::s3:GetObject*',
    'Action::s3:List*',
    `Resource::<${bucketLogicalId}.Arn>/*`,
  ];
  for (const scope of scopes) {
    Validations.of(scope).acknowledge(
      ...findings.map((finding) => ({ id: `AwsSolutions-IAM5[${finding}]`, reason })),
    );
  }
}
