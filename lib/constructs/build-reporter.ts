import { join } from 'node:path';
import { ArnFormat, Duration, Stack, Token, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { BUILD_STATUSES } from '../../lambda/reporter/events';
import { REPORT_PROVIDERS, type ReporterRoute } from '../../lambda/reporter/routes';
import { acknowledgeFunction, createPushlineFunction } from './pushline-function';

export { REPORT_PROVIDERS, type ReporterRoute } from '../../lambda/reporter/routes';

const ENTRY = join(__dirname, '..', '..', 'lambda', 'reporter', 'index.ts');

export interface BuildReporterProps {
  /** The build projects whose results are reported, with where and whether to report them. */
  readonly routes: readonly ReporterRoute[];
  /**
   * Where failed builds are announced.
   * @default - failed builds are only reported on the commit
   */
  readonly notificationTopic?: sns.ITopic;
  /**
   * Also report the CodeDeploy deployments of the applications whose names start with this prefix,
   * as the status `pushline/<name>/deploy` on the deployed commit.
   * @default - deployments are not reported
   */
  readonly deploymentApplicationPrefix?: string;
  /**
   * Retention of the function's logs.
   * @default logs.RetentionDays.THREE_MONTHS
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Lambda's asynchronous retries of a report whose provider API failed (0 to 2).
   * @default 2
   */
  readonly retryAttempts?: number;
}

/**
 * Puts the result of every build on the commit: an EventBridge rule on CodeBuild "Build State
 * Change" of the given projects invokes a function that sets a GitHub or GitLab commit status or
 * comments on the Backlog pull requests of the pushed branch, and announces failed builds on the
 * notification topic. The providers' tokens live in one secret this construct creates and the
 * operator fills (`{"github": …, "gitlab": …, "backlog": …}`). A report that fails is retried by
 * Lambda with backoff and then kept in a queue with an alarm; the build never waits for it.
 */
export class BuildReporter extends Construct {
  public readonly handler: nodejs.NodejsFunction;
  /** The provider tokens: `{"github": token, "gitlab": token, "backlog": apiKey}`, filled by the operator. */
  public readonly tokens: secretsmanager.Secret;
  /** Events whose report still failed after every retry. */
  public readonly failedReports: sqs.Queue;
  /** In alarm while a failed report waits in `failedReports`. */
  public readonly failedReportsAlarm: cloudwatch.Alarm;
  /** The rule that sends the projects' build state changes to the function. */
  public readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: BuildReporterProps) {
    super(scope, id);
    validateProps(props);
    const projectNames = [...new Set(props.routes.map((r) => r.projectName))];
    const logRetention = props.logRetention ?? logs.RetentionDays.THREE_MONTHS;

    this.tokens = new secretsmanager.Secret(this, 'ProviderTokens', {
      description:
        'pushline build results: {"github": token with commit status write, "gitlab": token with api scope, "backlog": API key}; filled by the operator',
      // An empty object: the tokens are created on each Git host by a person and put here by them.
      secretObjectValue: {},
    });
    Validations.of(this.tokens).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'The tokens are issued by GitHub, GitLab and Backlog, not by AWS; no rotation function can create them. Operators replace them with put-secret-value and the function reads the new value within minutes.',
    });

    this.failedReports = new sqs.Queue(this, 'FailedReports', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.failedReports).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is the dead end itself (the on-failure destination); its depth raises an alarm.',
    });
    this.failedReportsAlarm = new cloudwatch.Alarm(this, 'FailedReportsAlarm', {
      alarmDescription:
        'Build results that could not be reported to the Git host after every retry (token, API URL or host outage); see README "Build results".',
      metric: this.failedReports.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: cloudwatch.Stats.MAXIMUM,
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    this.handler = createPushlineFunction(this, 'Handler', {
      entry: ENTRY,
      description: 'pushline reporter: puts build results on the commit and announces failed builds',
      // Each API call gives up after 10 s; a Backlog report makes one call per open pull request.
      timeout: Duration.seconds(60),
      logRetention,
      logGroupId: 'HandlerLogs',
      environment: {
        PROVIDER_TOKENS_SECRET_ARN: this.tokens.secretArn,
        ...(props.notificationTopic ? { NOTIFICATION_TOPIC_ARN: props.notificationTopic.topicArn } : {}),
      },
      retryAttempts: props.retryAttempts ?? 2,
      maxEventAge: Duration.hours(6),
      onFailure: new destinations.SqsDestination(this.failedReports),
      define: { 'process.env.PUSHLINE_REPORT_ROUTES': JSON.stringify(JSON.stringify(props.routes)) },
    });
    acknowledgeFunction(this.handler);
    this.tokens.grantRead(this.handler);
    if (props.notificationTopic) {
      props.notificationTopic.grantPublish(this.handler);
      Validations.of(this.handler).acknowledge({
        id: 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
        reason:
          "Publishing to the KMS-encrypted notification topic: CDK's grantPublish allows the GenerateDataKey variants on that topic's one key only.",
      });
    }
    if (projectNames.length > 0) {
      this.handler.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'ReadOwnBuilds',
          // ListBuildsForProject: a deployment's commit back to the branch it was pushed on (Backlog).
          actions: ['codebuild:BatchGetBuilds', 'codebuild:ListBuildsForProject'],
          resources: projectNames.map((name) =>
            Stack.of(this).formatArn({ service: 'codebuild', resource: 'project', resourceName: name }),
          ),
        }),
      );
    }

    if (props.deploymentApplicationPrefix) this.reportDeployments(props.deploymentApplicationPrefix);

    this.rule = new events.Rule(this, 'BuildStateChange', {
      description: "Sends pushline's build state changes to the reporter",
      enabled: projectNames.length > 0,
      eventPattern: {
        source: ['aws.codebuild'],
        detailType: ['CodeBuild Build State Change'],
        detail: {
          // An empty list matches nothing in EventBridge, so a placeholder keeps the rule valid.
          'project-name': projectNames.length > 0 ? projectNames : ['-'],
          'build-status': [...BUILD_STATUSES],
        },
      },
      targets: [this.target()],
    });
  }

  private target(): targets.LambdaFunction {
    return new targets.LambdaFunction(this.handler, {
      deadLetterQueue: this.failedReports,
      retryAttempts: 8,
    });
  }

  /** A rule on the deployments of those applications, and just enough to read what they deploy. */
  private reportDeployments(applicationPrefix: string): void {
    const stack = Stack.of(this);
    this.handler.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadOwnDeployments',
        actions: ['codedeploy:GetDeployment'],
        resources: [
          stack.formatArn({
            service: 'codedeploy',
            resource: 'deploymentgroup',
            resourceName: `${applicationPrefix}*`,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
      }),
    );
    this.handler.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadDeployedImage',
        actions: ['ecs:DescribeTaskDefinition'],
        resources: ['*'],
      }),
    );
    Validations.of(this.handler).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'ecs:DescribeTaskDefinition supports no resource-level permissions (Service Authorization Reference, Amazon ECS); it only reads which image a deployment runs.',
      },
      {
        // cdk-nag names a concrete region and account as they are, unresolved ones as <AWS::…>.
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:codedeploy:${Token.isUnresolved(stack.region) ? '<AWS::Region>' : stack.region}:${Token.isUnresolved(stack.account) ? '<AWS::AccountId>' : stack.account}:deploymentgroup:${applicationPrefix}*]`,
        reason:
          "GetDeployment on the deployment groups of pushline's service stacks only: CloudFormation names their applications after the stack, which starts with this prefix.",
      },
    );
    new events.Rule(this, 'DeploymentStateChange', {
      description: "Sends pushline's deployment state changes to the reporter",
      eventPattern: {
        source: ['aws.codedeploy'],
        detailType: ['CodeDeploy Deployment State-change Notification'],
        detail: {
          application: [{ prefix: applicationPrefix }],
          state: ['START', 'SUCCESS', 'FAILURE', 'STOP'],
        },
      },
      targets: [this.target()],
    });
  }
}

function validateProps(props: BuildReporterProps): void {
  const attempts = props.retryAttempts ?? 2;
  if (!Number.isInteger(attempts) || attempts < 0 || attempts > 2)
    throw new Error(`BuildReporter: retryAttempts must be 0, 1 or 2 (Lambda's limit), got ${attempts}`);
  for (const route of props.routes) {
    if (!(REPORT_PROVIDERS as readonly string[]).includes(route.provider))
      throw new Error(
        `BuildReporter: routes[].provider must be one of ${REPORT_PROVIDERS.join(', ')}, got "${route.provider}"`,
      );
    if (!/^https?:\/\//.test(route.apiUrl))
      throw new Error(`BuildReporter: routes[].apiUrl must be an http(s) URL, got "${route.apiUrl}"`);
  }
}
