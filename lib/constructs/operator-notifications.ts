import { Duration } from 'aws-cdk-lib';
import * as chatbot from 'aws-cdk-lib/aws-chatbot';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

export interface SlackChannel {
  /** The Slack workspace ID (authorized once in the AWS Chatbot console), e.g. `T0123ABCD`. */
  readonly workspaceId: string;
  /** The Slack channel ID, e.g. `C0123ABCD`. */
  readonly channelId: string;
}

export interface OperatorNotificationsProps {
  /**
   * Email addresses subscribed to the topic (each confirms once).
   * @default - no email subscription
   */
  readonly emails?: readonly string[];
  /**
   * An AWS Chatbot Slack channel that receives the topic's messages.
   * @default - no Slack channel
   */
  readonly slack?: SlackChannel;
  /**
   * The name of the Chatbot channel configuration (unique in the account).
   * @default 'pushline-notifications'
   */
  readonly slackConfigurationName?: string;
}

/**
 * The platform team's notification topic: failed builds, failed deployments and alarms, by email
 * and optionally in Slack through AWS Chatbot. SSL-only and encrypted with its own key, because
 * EventBridge and CloudWatch alarms cannot publish to a topic encrypted with the AWS-managed SNS key.
 */
export class OperatorNotifications extends Construct {
  public readonly topic: sns.Topic;
  public readonly key: kms.Key;
  /** The Slack channel configuration, when one was asked for. */
  public readonly slackChannel?: chatbot.SlackChannelConfiguration;

  constructor(scope: Construct, id: string, props: OperatorNotificationsProps = {}) {
    super(scope, id);
    validateProps(props);
    this.key = new kms.Key(this, 'Key', {
      description: 'Encrypts the pushline notifications topic',
      enableKeyRotation: true,
      pendingWindow: Duration.days(7),
    });
    // "Amazon SNS topic is encrypted" in the CloudWatch alarm actions and EventBridge target docs:
    // the publishing service needs GenerateDataKey and Decrypt on a customer managed key.
    for (const service of ['events.amazonaws.com', 'cloudwatch.amazonaws.com']) {
      this.key.grant(new iam.ServicePrincipal(service), 'kms:Decrypt', 'kms:GenerateDataKey*');
    }
    this.topic = new sns.Topic(this, 'Topic', {
      displayName: 'pushline',
      masterKey: this.key,
      enforceSSL: true,
    });
    for (const email of props.emails ?? [])
      this.topic.addSubscription(new subscriptions.EmailSubscription(email));
    if (props.slack) {
      this.slackChannel = new chatbot.SlackChannelConfiguration(this, 'SlackChannel', {
        slackChannelConfigurationName: props.slackConfigurationName ?? 'pushline-notifications',
        slackWorkspaceId: props.slack.workspaceId,
        slackChannelId: props.slack.channelId,
        notificationTopics: [this.topic],
        loggingLevel: chatbot.LoggingLevel.ERROR,
      });
    }
  }

  /** Sends the alarm's ALARM and OK transitions to the topic. */
  public notifyOnAlarm(alarm: cloudwatch.Alarm): void {
    const action = new cloudwatchActions.SnsAction(this.topic);
    alarm.addAlarmAction(action);
    alarm.addOkAction(action);
  }

  /**
   * Announces failed and stopped CodeDeploy deployments of the applications whose names start with
   * `applicationPrefix` (CloudFormation names an unnamed application `<stack name>-<logical id>-…`).
   */
  public notifyFailedDeployments(applicationPrefix: string): events.Rule {
    return new events.Rule(this, 'DeploymentFailed', {
      description: 'Announces failed (rolled back) and stopped pushline deployments',
      eventPattern: {
        source: ['aws.codedeploy'],
        detailType: ['CodeDeploy Deployment State-change Notification'],
        detail: { application: [{ prefix: applicationPrefix }], state: ['FAILURE', 'STOP'] },
      },
      targets: [
        new targets.SnsTopic(this.topic, {
          message: events.RuleTargetInput.fromObject({
            version: '1.0',
            source: 'custom',
            id: events.EventField.fromPath('$.detail.deploymentId'),
            content: {
              textType: 'client-markdown',
              title: `:x: pushline: deployment ${events.EventField.fromPath('$.detail.deploymentId')} ${events.EventField.fromPath('$.detail.state')}`,
              description: `Application ${events.EventField.fromPath('$.detail.application')}, deployment group ${events.EventField.fromPath('$.detail.deploymentGroup')} in ${events.EventField.region}: CodeDeploy rolls back to the version that ran before.`,
            },
            metadata: { eventType: 'DeploymentFailed' },
          }),
        }),
      ],
    });
  }
}

function validateProps(props: OperatorNotificationsProps): void {
  for (const email of props.emails ?? []) {
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email))
      throw new Error(`OperatorNotifications: emails must be email addresses, got "${email}"`);
  }
  if (props.slack && !/^[0-9A-Z]{1,255}$/.test(props.slack.workspaceId))
    throw new Error(
      `OperatorNotifications: slack.workspaceId must be a Slack workspace ID such as T0123ABCD, got "${props.slack.workspaceId}"`,
    );
  if (props.slack && !/^[A-Za-z0-9]{1,255}$/.test(props.slack.channelId))
    throw new Error(
      `OperatorNotifications: slack.channelId must be a Slack channel ID such as C0123ABCD, got "${props.slack.channelId}"`,
    );
}
