import { join } from 'node:path';
import { CustomResource, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { compileRoutes } from '../../lambda/webhook/compile-routes';
import { WEBHOOK_PROVIDERS, type WebhookProvider } from '../../lambda/webhook/push-event';
import type { WebhookRoute } from '../../lambda/webhook/routes';
import { BUILD_NOT_KEPT, DELIVERY_TABLE_FAILED } from '../../lambda/webhook/start-build';
import { isCidr } from '../config/schema';
import { acknowledgeFunction, createPushlineFunction } from './pushline-function';

export type { WebhookRoute } from '../../lambda/webhook/routes';

const LAMBDA_DIR = join(__dirname, '..', '..', 'lambda', 'webhook');
/** What the functions' bundles take for the SDK's default credential chain (see the file). */

/** The retry queue's visibility timeout, in multiples of the retry function's timeout (AWS: at least 6). */
const RETRY_VISIBILITY_FACTOR = 6;

export interface WebhookReceiverProps {
  /** The configured repositories: who builds on which pushes, and with which CodeBuild project. */
  readonly routes: readonly WebhookRoute[];
  /** Source CIDRs allowed to call the API (presets already expanded). */
  readonly allowedCidrs: readonly string[];
  /**
   * Stage throttling: steady requests per second.
   * @default 10
   */
  readonly rateLimit?: number;
  /**
   * Stage throttling: burst.
   * @default 20
   */
  readonly burstLimit?: number;
  /**
   * Retention of the access log and the function logs.
   * @default logs.RetentionDays.THREE_MONTHS
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * StartBuild tries from the retry queue before a request goes to the dead-letter queue.
   * @default 5
   */
  readonly maxBuildAttempts?: number;
  /**
   * The API stage, the first segment of the webhook URL's path.
   * @default 'v1'
   */
  readonly stageName?: string;
  /**
   * Give API Gateway its account-wide CloudWatch Logs role (`AWS::ApiGateway::Account` with a role
   * carrying `AmazonAPIGatewayPushToCloudWatchLogs`), without which a stage with access logging
   * cannot be created. Both are kept when the stack is deleted, since every REST API of the account
   * and region uses that setting. Turn it off where something else already manages the setting.
   * @default true
   */
  readonly cloudWatchRole?: boolean;
  /**
   * Where the receiver's alarms notify (a build neither started nor queued).
   * @default - the alarms only change state; nobody is notified
   */
  readonly alarmTopic?: sns.ITopic;
}

/**
 * The webhook receiver: a REST API (resource policy allow-listing the providers' addresses) in
 * front of a function that authenticates each delivery with the provider's value of one generated
 * secret, routes the push to the configured repositories and starts exactly one CodeBuild build of
 * the pushed commit per repository. Builds CodeBuild cannot start now go to a retry queue, then a
 * dead-letter queue with an alarm; redeliveries are recognized through a DynamoDB table with TTL.
 */
export class WebhookReceiver extends Construct {
  public readonly api: apigateway.RestApi;
  public readonly handler: nodejs.NodejsFunction;
  public readonly retryHandler: nodejs.NodejsFunction;
  /** `{"backlog": …, "github": …, "gitlab": …, "bitbucket": …, "gitea": …}`, values generated at deploy time. */
  public readonly secret: secretsmanager.Secret;
  public readonly retryQueue: sqs.Queue;
  public readonly deadLetterQueue: sqs.Queue;
  /** In alarm while anything waits in the dead-letter queue. */
  public readonly deadLetterAlarm: cloudwatch.Alarm;
  public readonly idempotencyTable: dynamodb.Table;
  /** In alarm when a push could neither start its build nor be queued (its StartBuild input is in the log line). */
  public readonly buildNotKeptAlarm: cloudwatch.Alarm;
  /** Deliveries whose builds started without the delivery table (a redelivery may build twice). */
  public readonly deliveryTableFailures: cloudwatch.Metric;
  /** The CodeBuild projects the function may start, by name. */
  public readonly projectNames: readonly string[];

  constructor(scope: Construct, id: string, props: WebhookReceiverProps) {
    super(scope, id);
    validateProps(props);
    const logRetention = props.logRetention ?? logs.RetentionDays.THREE_MONTHS;
    const maxBuildAttempts = props.maxBuildAttempts ?? 5;
    this.projectNames = [...new Set(props.routes.map((r) => r.projectName))];

    this.secret = new secretsmanager.Secret(this, 'Secret', {
      description:
        'pushline webhook secret: {"backlog": url token, "github": HMAC secret, "gitlab": token, "bitbucket": HMAC secret, "gitea": HMAC secret}',
      // CloudFormation generates one key; the initializer below adds the others inside Secrets Manager.
      generateSecretString: {
        secretStringTemplate: '{}',
        generateStringKey: 'backlog',
        excludePunctuation: true,
        passwordLength: 43,
      },
    });
    Validations.of(this.secret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'A webhook secret is also configured in Backlog, GitHub and GitLab by hand; an automatic rotation would break every webhook. Operators rotate it with put-secret-value and the function picks the new value up without a redeploy.',
    });
    this.completeSecret(logRetention);

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This is the dead-letter queue itself; its depth raises an alarm.',
    });
    const retryTimeout = Duration.seconds(60);
    this.retryQueue = new sqs.Queue(this, 'RetryQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // "set the source queue's visibility timeout to at least six times the configuration timeout
      // on your function" (Lambda Developer Guide, "Creating and configuring an Amazon SQS event
      // source mapping", https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html).
      visibilityTimeout: Duration.seconds(retryTimeout.toSeconds() * RETRY_VISIBILITY_FACTOR),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: maxBuildAttempts },
    });
    this.deadLetterAlarm = new cloudwatch.Alarm(this, 'DeadLetterAlarm', {
      alarmDescription:
        'Pushes whose build could not be started after every retry wait in the dead-letter queue; see README "Webhooks" to redrive them.',
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(1),
        statistic: cloudwatch.Stats.MAXIMUM,
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    this.idempotencyTable = new dynamodb.Table(this, 'DeliveryTable', {
      partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: 'expiration',
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // Only dedupe records that expire by themselves within days.
      removalPolicy: RemovalPolicy.DESTROY,
    });

    const startBuild = new iam.PolicyStatement({
      actions: ['codebuild:StartBuild'],
      resources: this.projectNames.map((name) =>
        Stack.of(this).formatArn({ service: 'codebuild', resource: 'project', resourceName: name }),
      ),
    });

    this.handler = this.createFunction('Handler', 'index.ts', logRetention, {
      description: 'pushline webhook: authenticates a push and starts the build of the pushed commit',
      // Providers give up after 10 s; every AWS call is bounded (client-config.ts) well inside it, and
      // an in-progress delivery record expires with the invocation.
      timeout: Duration.seconds(10),
      define: { 'process.env.PUSHLINE_ROUTES': JSON.stringify(JSON.stringify(compileRoutes(props.routes))) },
      environment: {
        WEBHOOK_SECRET_ARN: this.secret.secretArn,
        RETRY_QUEUE_URL: this.retryQueue.queueUrl,
        IDEMPOTENCY_TABLE_NAME: this.idempotencyTable.tableName,
      },
    });
    this.secret.grantRead(this.handler);
    this.retryQueue.grantSendMessages(this.handler);
    this.idempotencyTable.grantReadWriteData(this.handler);
    if (this.projectNames.length > 0) this.handler.addToRolePolicy(startBuild);
    this.buildNotKeptAlarm = this.alarmOnLogMessage('BuildNotKept', BUILD_NOT_KEPT, props.alarmTopic);
    this.deliveryTableFailures = this.countLogMessage('DeliveryTableFailures', DELIVERY_TABLE_FAILED);

    this.retryHandler = this.createFunction('RetryHandler', 'retry.ts', logRetention, {
      description: 'pushline webhook: retries the builds CodeBuild could not start at once',
      timeout: retryTimeout,
      environment: { RETRY_QUEUE_URL: this.retryQueue.queueUrl },
    });
    this.retryHandler.addEventSource(
      new SqsEventSource(this.retryQueue, { batchSize: 5, reportBatchItemFailures: true }),
    );
    if (this.projectNames.length > 0) this.retryHandler.addToRolePolicy(startBuild);

    this.api = this.createApi(props, logRetention);
  }

  /** The URL to register with a provider. */
  public urlFor(provider: WebhookProvider): string {
    return this.api.urlForPath(`/webhooks/${provider}`);
  }

  /** A metric counting the webhook function's log lines with this message (JSON logs). */
  private countLogMessage(name: string, message: string): cloudwatch.Metric {
    const filter = new logs.MetricFilter(this, `${name}Filter`, {
      logGroup: this.handler.logGroup,
      filterPattern: logs.FilterPattern.stringValue('$.message', '=', message),
      metricNamespace: 'pushline',
      metricName: name,
      metricValue: '1',
    });
    return filter.metric({ statistic: cloudwatch.Stats.SUM, period: Duration.minutes(1) });
  }

  private alarmOnLogMessage(name: string, message: string, topic?: sns.ITopic): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, `${name}Alarm`, {
      alarmDescription:
        'A push could neither start its build nor be queued; its log line holds the StartBuild input. See README "Webhooks" to start it by hand.',
      metric: this.countLogMessage(name, message),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (topic) alarm.addAlarmAction(new cloudwatchActions.SnsAction(topic));
    return alarm;
  }

  private createFunction(
    id: string,
    entry: string,
    logRetention: logs.RetentionDays,
    options: {
      description: string;
      timeout: Duration;
      environment: Record<string, string>;
      define?: Record<string, string>;
    },
  ): nodejs.NodejsFunction {
    const fn = createPushlineFunction(this, id, {
      entry: join(LAMBDA_DIR, entry),
      description: options.description,
      timeout: options.timeout,
      environment: options.environment,
      define: options.define,
      logRetention,
      logGroupId: `${id}Logs`,
    });
    acknowledgeFunction(fn);
    return fn;
  }

  private completeSecret(logRetention: logs.RetentionDays): void {
    const initializer = this.createFunction('SecretInitializer', 'secret-initializer.ts', logRetention, {
      description: 'pushline webhook: gives every provider a generated value in the webhook secret',
      timeout: Duration.seconds(30),
      environment: {},
    });
    this.secret.grantRead(initializer);
    this.secret.grantWrite(initializer);
    const provider = new cr.Provider(this, 'SecretInitializerProvider', { onEventHandler: initializer });
    acknowledgeFunction(provider);
    const initializerId = Stack.of(this).getLogicalId(initializer.node.defaultChild as lambda.CfnFunction);
    Validations.of(provider).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${initializerId}.Arn>:*]`,
      reason:
        "CDK's Provider framework invokes the initializer's versions (function ARN with :*); the grant is CDK's own and limited to that one function.",
    });
    new CustomResource(this, 'SecretValues', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::PushlineWebhookSecret',
      // Only the ARN: the values never pass through CloudFormation.
      properties: { SecretArn: this.secret.secretArn },
    });
  }

  private createApi(props: WebhookReceiverProps, logRetention: logs.RetentionDays): apigateway.RestApi {
    const accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const invoke = { actions: ['execute-api:Invoke'], resources: ['execute-api:/*'] };
    const api = new apigateway.RestApi(this, 'Api', {
      description: 'pushline webhooks: POST /webhooks/{provider}',
      endpointConfiguration: { types: [apigateway.EndpointType.REGIONAL] },
      // A stage with access logging fails to create until the account has this role: "CloudWatch
      // Logs role ARN must be set in account settings to enable logging" (API Gateway Developer
      // Guide, "Set up CloudWatch logging for REST APIs in API Gateway",
      // https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html). CDK
      // makes the role and the AWS::ApiGateway::Account and makes the stage depend on them.
      cloudWatchRole: props.cloudWatchRole ?? true,
      ...((props.cloudWatchRole ?? true) ? { cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN } : {}),
      policy: new iam.PolicyDocument({
        statements: [
          new iam.PolicyStatement({
            effect: iam.Effect.ALLOW,
            principals: [new iam.AnyPrincipal()],
            ...invoke,
          }),
          new iam.PolicyStatement({
            effect: iam.Effect.DENY,
            principals: [new iam.AnyPrincipal()],
            ...invoke,
            conditions: { NotIpAddress: { 'aws:SourceIp': [...props.allowedCidrs] } },
          }),
        ],
      }),
      deployOptions: {
        stageName: props.stageName ?? 'v1',
        throttlingRateLimit: props.rateLimit ?? 10,
        throttlingBurstLimit: props.burstLimit ?? 20,
        accessLogDestination: new apigateway.LogGroupLogDestination(accessLogs),
        // Standard fields only: the resource path, never the query string with Backlog's token.
        accessLogFormat: apigateway.AccessLogFormat.jsonWithStandardFields(),
      },
    });
    const validator = new apigateway.RequestValidator(this, 'ContentTypeValidator', {
      restApi: api,
      validateRequestParameters: true,
      // No body model: each provider's body is validated by its adapter in the function.
      validateRequestBody: true,
    });
    api.root
      .addResource('webhooks')
      .addResource('{provider}')
      .addMethod('POST', new apigateway.LambdaIntegration(this.handler, { proxy: true }), {
        requestParameters: { 'method.request.header.Content-Type': true },
        requestValidator: validator,
      });
    Validations.of(api).acknowledge(
      {
        id: 'AwsSolutions-APIG3',
        reason:
          'The resource policy already admits only the providers’ published sender addresses and the stage is throttled; every request is then authenticated by token or HMAC.',
      },
      {
        id: 'AwsSolutions-APIG4',
        reason:
          'Git hosts cannot sign with IAM or present Cognito tokens; the function authenticates every delivery with the provider’s token or HMAC signature before doing anything.',
      },
      {
        id: 'AwsSolutions-COG4',
        reason: 'Same as APIG4: webhook senders authenticate with a shared secret checked by the function.',
      },
      {
        id: 'AwsSolutions-APIG6',
        reason:
          'JSON access logs are on; execution logging is off because it can log request details including Backlog’s token.',
      },
      {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        reason:
          'API Gateway’s account-wide logging role; AWS documents this managed policy as the permissions it needs (API Gateway Developer Guide, "Set up CloudWatch logging for REST APIs").',
      },
    );
    return api;
  }
}

function validateProps(props: WebhookReceiverProps): void {
  if (props.allowedCidrs.length === 0)
    throw new Error('WebhookReceiver: allowedCidrs must list at least one CIDR, got []');
  for (const cidr of props.allowedCidrs) {
    if (!isCidr(cidr) || !cidr.includes('/'))
      throw new Error(`WebhookReceiver: allowedCidrs must be CIDRs such as 203.0.113.0/24, got "${cidr}"`);
  }
  const attempts = props.maxBuildAttempts ?? 5;
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > 20)
    throw new Error(`WebhookReceiver: maxBuildAttempts must be an integer from 1 to 20, got ${attempts}`);
  for (const route of props.routes) {
    if (!(WEBHOOK_PROVIDERS as readonly string[]).includes(route.provider))
      throw new Error(
        `WebhookReceiver: routes[].provider must be one of ${WEBHOOK_PROVIDERS.join(', ')}, got "${route.provider}"`,
      );
  }
}
