import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { BUILD_NOT_KEPT, DELIVERY_TABLE_FAILED } from '../lambda/webhook/start-build';
import { expandCidrs } from '../lib/config/cidr-presets';
import { parseConfig } from '../lib/config/load';
import type { PipelineConfig } from '../lib/config/schema';
import { WebhookReceiver } from '../lib/constructs/webhook-receiver';
import { buildProjectName } from '../lib/resource-names';
import { buildApp, generatedConfig, sampleConfig } from './support/app';

interface PolicyStatementJson {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
  Principal?: unknown;
}

function sharedTemplate(config: PipelineConfig = sampleConfig()): Template {
  const { stacks } = buildApp(config);
  return Template.fromStack(stacks.shared);
}

function actions(statement: PolicyStatementJson): string[] {
  return Array.isArray(statement.Action) ? statement.Action : [statement.Action];
}

/** Every statement of every IAM policy attached to the role of the function with this description prefix. */
function functionStatements(template: Template, description: string): PolicyStatementJson[] {
  const functions = template.findResources('AWS::Lambda::Function', {
    Properties: { Description: Match.stringLikeRegexp(description) },
  });
  const roles = Object.values(functions).map(
    (fn) => (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0],
  );
  expect(roles).toHaveLength(1);
  const policies = template.findResources('AWS::IAM::Policy');
  return Object.values(policies)
    .filter((p) => (p.Properties.Roles as { Ref: string }[]).some((r) => roles.includes(r.Ref)))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as PolicyStatementJson[]);
}

function projectArn(name: string) {
  return {
    'Fn::Join': [
      '',
      [
        'arn:',
        { Ref: 'AWS::Partition' },
        ':codebuild:',
        { Ref: 'AWS::Region' },
        ':',
        { Ref: 'AWS::AccountId' },
        `:project/${name}`,
      ],
    ],
  };
}

describe('shared stack: webhook receiver', () => {
  const config = sampleConfig();
  const template = sharedTemplate(config);

  test('GIVEN the sample config THEN only the configured CIDRs may invoke the API: Allow plus Deny NotIpAddress with exactly the expanded presets', () => {
    const apis = template.findResources('AWS::ApiGateway::RestApi');
    expect(Object.keys(apis)).toHaveLength(1);
    const policy = Object.values(apis)[0]?.Properties.Policy as { Statement: PolicyStatementJson[] };
    expect(policy.Statement).toEqual([
      { Effect: 'Allow', Principal: { AWS: '*' }, Action: 'execute-api:Invoke', Resource: 'execute-api:/*' },
      {
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 'execute-api:Invoke',
        Resource: 'execute-api:/*',
        Condition: { NotIpAddress: { 'aws:SourceIp': expandCidrs(config.webhook.allowedCidrs) } },
      },
    ]);
    expect(expandCidrs(config.webhook.allowedCidrs)).toEqual(
      expect.arrayContaining(['54.248.107.22/32', '192.30.252.0/22', '34.74.226.0/24']),
    );
  });

  test('THEN POST /webhooks/{provider} is a Lambda proxy integration that requires a Content-Type header', () => {
    template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: '{provider}' });
    template.hasResourceProperties('AWS::ApiGateway::Method', {
      HttpMethod: 'POST',
      AuthorizationType: 'NONE',
      RequestParameters: { 'method.request.header.Content-Type': true },
      RequestValidatorId: Match.anyValue(),
      Integration: { Type: 'AWS_PROXY', IntegrationHttpMethod: 'POST' },
    });
  });

  test('THEN the stage is throttled as configured and writes JSON access logs to a log group with retention', () => {
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'v1',
      MethodSettings: [
        Match.objectLike({
          ThrottlingRateLimit: config.webhook.throttle.rateLimit,
          ThrottlingBurstLimit: config.webhook.throttle.burstLimit,
        }),
      ],
      AccessLogSetting: {
        DestinationArn: Match.anyValue(),
        Format: Match.stringLikeRegexp('^\\{"requestId"'),
      },
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      RetentionInDays: config.webhook.logRetentionDays,
    });
  });

  test('THEN the webhook function may start exactly the configured CodeBuild projects and read exactly the one secret', () => {
    const statements = functionStatements(template, '^pushline webhook: authenticates');
    const startBuild = statements.filter((s) => actions(s).includes('codebuild:StartBuild'));
    expect(startBuild).toHaveLength(1);
    expect(actions(startBuild[0] as PolicyStatementJson)).toEqual(['codebuild:StartBuild']);
    expect(startBuild[0]?.Resource).toEqual(
      ['pushline-shop-api', 'pushline-shop-web', 'pushline-tools-batch'].map(projectArn),
    );
    expect(config.repositories.map((r) => buildProjectName(config.name, r))).toEqual([
      'pushline-shop-api',
      'pushline-shop-web',
      'pushline-tools-batch',
    ]);

    const secretReads = statements.filter((s) => actions(s).includes('secretsmanager:GetSecretValue'));
    expect(secretReads).toHaveLength(1);
    expect(secretReads[0]?.Resource).toEqual({ Ref: expect.stringMatching(/^WebhooksSecret/) });
    for (const statement of statements) {
      expect(actions(statement).some((a) => a.endsWith(':*') || a === '*')).toBe(false);
      expect(statement.Resource).not.toEqual('*');
    }
  });

  test('THEN the retry consumer may start the same projects and nothing in Secrets Manager', () => {
    const statements = functionStatements(template, '^pushline webhook: retries');
    const startBuild = statements.filter((s) => actions(s).includes('codebuild:StartBuild'));
    expect(startBuild[0]?.Resource).toEqual(
      ['pushline-shop-api', 'pushline-shop-web', 'pushline-tools-batch'].map(projectArn),
    );
    expect(statements.flatMap(actions).filter((a) => a.startsWith('secretsmanager:'))).toEqual([]);
  });

  test('THEN the secret is generated by CloudFormation and completed by a custom resource that is given only its ARN', () => {
    const secrets = template.findResources('AWS::SecretsManager::Secret', {
      Properties: { Description: Match.stringLikeRegexp('^pushline webhook secret') },
    });
    expect(Object.keys(secrets)).toHaveLength(1);
    const properties = Object.values(secrets)[0]?.Properties as Record<string, unknown>;
    expect(properties.SecretString).toBeUndefined();
    expect(properties.GenerateSecretString).toEqual(
      expect.objectContaining({ SecretStringTemplate: '{}', GenerateStringKey: 'backlog' }),
    );
    template.hasResourceProperties('Custom::PushlineWebhookSecret', {
      ServiceToken: Match.anyValue(),
      SecretArn: { Ref: Match.stringLikeRegexp('^WebhooksSecret') },
    });
    const custom = Object.values(template.findResources('Custom::PushlineWebhookSecret'))[0];
    expect(Object.keys(custom?.Properties ?? {}).sort()).toEqual(['SecretArn', 'ServiceToken']);
  });

  test('THEN the functions are Node.js 22 on arm64 and the routing table is bundled, not in the environment', () => {
    const functions = template.findResources('AWS::Lambda::Function', {
      Properties: { Description: Match.stringLikeRegexp('^pushline webhook') },
    });
    expect(Object.keys(functions)).toHaveLength(3);
    for (const fn of Object.values(functions)) {
      expect(fn.Properties.Runtime).toBe('nodejs22.x');
      expect(fn.Properties.Architectures).toEqual(['arm64']);
      expect(JSON.stringify(fn.Properties.Environment ?? {})).not.toContain('shop-api');
    }
  });

  test('THEN a build that cannot start goes to the dead-letter queue after webhook.maxBuildAttempts tries, and its depth raises an alarm', () => {
    template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: {
        deadLetterTargetArn: Match.anyValue(),
        maxReceiveCount: config.webhook.maxBuildAttempts,
      },
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Namespace: 'AWS/SQS',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^WebhooksDeadLetterQueue'), 'QueueName'] },
        },
      ],
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  test('THEN the retry queue hides a message for at least six times the retry consumer’s timeout, as AWS advises for SQS event sources', () => {
    const mappings = Object.values(template.findResources('AWS::Lambda::EventSourceMapping'));
    expect(mappings).toHaveLength(1);
    const mapping = mappings[0]?.Properties as {
      EventSourceArn: { 'Fn::GetAtt': [string, string] };
      FunctionName: { Ref: string };
    };
    const resources = template.toJSON().Resources as Record<string, { Properties: Record<string, number> }>;
    const queue = resources[mapping.EventSourceArn['Fn::GetAtt'][0]];
    const consumer = resources[mapping.FunctionName.Ref];
    expect(consumer?.Properties.Timeout).toBeGreaterThan(0);
    expect(queue?.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(
      6 * (consumer?.Properties.Timeout ?? 0),
    );
  });

  test('GIVEN the default config THEN API Gateway gets its account-wide CloudWatch Logs role, kept on deletion, before the logging stage is made', () => {
    const accounts = template.findResources('AWS::ApiGateway::Account');
    expect(Object.values(accounts)).toHaveLength(1);
    const [accountId, account] = Object.entries(accounts)[0] ?? ['', { Properties: {} }];
    expect(account.DeletionPolicy).toBe('Retain');
    const roleArn = account.Properties.CloudWatchRoleArn as { 'Fn::GetAtt': [string, string] };
    const roleId = roleArn['Fn::GetAtt'][0];
    const role = template.toJSON().Resources[roleId];
    expect(role.DeletionPolicy).toBe('Retain');
    expect(role.Properties.AssumeRolePolicyDocument.Statement[0].Principal).toEqual({
      Service: 'apigateway.amazonaws.com',
    });
    expect(JSON.stringify(role.Properties.ManagedPolicyArns)).toContain(
      ':iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs',
    );
    const stages = Object.values(template.findResources('AWS::ApiGateway::Stage'));
    expect(stages).toHaveLength(1);
    expect(stages[0]?.DependsOn).toEqual(expect.arrayContaining([accountId]));
  });

  test('GIVEN webhook.apiGatewayAccountRole: false THEN the stack leaves the account setting alone', () => {
    const base = sampleConfig();
    const off = sharedTemplate({ ...base, webhook: { ...base.webhook, apiGatewayAccountRole: false } });
    off.resourceCountIs('AWS::ApiGateway::Account', 0);
    expect(JSON.stringify(off.toJSON())).not.toContain('AmazonAPIGatewayPushToCloudWatchLogs');
  });

  test('THEN a build neither started nor queued is counted from its ERROR line and raises an alarm, and delivery-table failures are counted', () => {
    const handlerLogs = { Ref: Match.stringLikeRegexp('^WebhooksHandlerLogs') };
    template.hasResourceProperties('AWS::Logs::MetricFilter', {
      LogGroupName: handlerLogs,
      FilterPattern: `{ $.message = "${BUILD_NOT_KEPT}" }`,
      MetricTransformations: [{ MetricNamespace: 'pushline', MetricName: 'BuildNotKept', MetricValue: '1' }],
    });
    template.hasResourceProperties('AWS::Logs::MetricFilter', {
      LogGroupName: handlerLogs,
      FilterPattern: `{ $.message = "${DELIVERY_TABLE_FAILED}" }`,
      MetricTransformations: [
        { MetricNamespace: 'pushline', MetricName: 'DeliveryTableFailures', MetricValue: '1' },
      ],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'pushline',
      MetricName: 'BuildNotKept',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
  });

  test('THEN the webhook function gives up before the providers do (10 s)', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^pushline webhook: authenticates'),
      Timeout: 10,
    });
  });

  test('THEN redeliveries are recognized through a DynamoDB table whose records expire by TTL', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      TimeToLiveSpecification: { AttributeName: 'expiration', Enabled: true },
    });
  });

  test('THEN the stack prints a webhook URL per configured provider, the secret name and the command that reads it', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    for (const [id, provider] of [
      ['WebhookUrlBacklog', 'backlog'],
      ['WebhookUrlGithub', 'github'],
      ['WebhookUrlGitlab', 'gitlab'],
    ] as const) {
      expect(JSON.stringify(outputs[id]?.Value)).toContain(`/webhooks/${provider}`);
    }
    expect(outputs.WebhookSecretName).toBeDefined();
    expect(JSON.stringify(outputs.WebhookSecretCommand?.Value)).toContain(
      'aws secretsmanager get-secret-value --secret-id',
    );
  });

  test('GIVEN a config with only GitHub repositories THEN only the GitHub URL is printed', () => {
    const githubOnly = sampleConfig();
    const only = {
      ...githubOnly,
      repositories: githubOnly.repositories.filter((r) => r.source.provider === 'github'),
    };
    const outputs = sharedTemplate(only).toJSON().Outputs as Record<string, unknown>;
    expect(Object.keys(outputs).filter((k) => k.startsWith('WebhookUrl'))).toEqual(['WebhookUrlGithub']);
  });

  test('GIVEN Bitbucket Cloud and Gitea repositories THEN their webhook URLs are printed too, /webhooks/bitbucket and /webhooks/gitea', () => {
    const config = parseConfig(`
webhook:
  allowedCidrs: [203.0.113.0/24]
repositories:
  - name: bb-app
    source: { provider: bitbucket, repository: team/app, cloneUrl: "git@bitbucket.org:team/app.git" }
  - name: gitea-app
    source:
      provider: gitea
      repository: team/app
      cloneUrl: "ssh://git@gitea.example.com:2222/team/app.git"
      knownHosts: ["[gitea.example.com]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"]
`);
    const outputs = sharedTemplate(config).toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(Object.keys(outputs).filter((k) => k.startsWith('WebhookUrl'))).toEqual([
      'WebhookUrlBitbucket',
      'WebhookUrlGitea',
    ]);
    expect(JSON.stringify(outputs.WebhookUrlBitbucket?.Value)).toContain('/webhooks/bitbucket');
    expect(JSON.stringify(outputs.WebhookUrlGitea?.Value)).toContain('/webhooks/gitea');
  });

  test('GIVEN 50 repositories THEN the function environment stays far below Lambda’s 4 KB limit and StartBuild lists all 50 projects', () => {
    const large = generatedConfig(50);
    const big = sharedTemplate(large);
    const handler = Object.values(
      big.findResources('AWS::Lambda::Function', {
        Properties: { Description: Match.stringLikeRegexp('^pushline webhook: authenticates') },
      }),
    )[0];
    expect(JSON.stringify(handler?.Properties.Environment).length).toBeLessThan(1024);
    const startBuild = functionStatements(big, '^pushline webhook: authenticates').find((s) =>
      actions(s).includes('codebuild:StartBuild'),
    );
    expect(startBuild?.Resource).toHaveLength(50);
  });
});

describe('shared stack: GitHub redelivery', () => {
  const withRedelivery = (env?: { account: string; region: string }): PipelineConfig => {
    const config = sampleConfig();
    return {
      ...config,
      ...(env ? { env } : {}),
      webhook: {
        ...config.webhook,
        githubRedelivery: { intervalMinutes: 10, lookbackHours: 12, maxAttempts: 4 },
      },
    };
  };

  test.each([
    ['without env', undefined],
    ['with a concrete env', { account: '123456789012', region: 'eu-west-1' }],
  ])(
    'GIVEN webhook.githubRedelivery (%s) WHEN synthesized with cdk-nag THEN a scheduled function reconciles the GitHub repositories with a token it may read',
    (_, env) => {
      const config = withRedelivery(env);
      const { app } = buildApp(config, { nag: true });
      expect(() => app.synth()).not.toThrow();
      const template = Template.fromStack(buildApp(config).stacks.shared);
      template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(10 minutes)' });
      const github = config.repositories
        .filter((r) => r.source.provider === 'github')
        .map((r) => r.source.repository);
      template.hasResourceProperties('AWS::Lambda::Function', {
        Description: Match.stringLikeRegexp('redelivers GitHub webhook deliveries'),
        Environment: {
          Variables: Match.objectLike({
            REPOSITORIES: JSON.stringify(github),
            LOOKBACK_MINUTES: '720',
            MAX_ATTEMPTS: '4',
          }),
        },
      });
      const statements = functionStatements(template, 'redelivers GitHub webhook deliveries');
      expect(statements.flatMap(actions)).toEqual(
        expect.arrayContaining(['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret']),
      );
      // The token is the GitHub value of the provider-token secret the build reporter reads too.
      const variable = (description: string, name: string) =>
        Object.values(template.findResources('AWS::Lambda::Function')).find((f) =>
          String(f.Properties.Description).includes(description),
        )?.Properties.Environment.Variables[name];
      expect(variable('redelivers GitHub webhook deliveries', 'TOKEN_SECRET_ARN')).toEqual(
        variable('pushline reporter', 'PROVIDER_TOKENS_SECRET_ARN'),
      );
      expect(variable('pushline reporter', 'PROVIDER_TOKENS_SECRET_ARN')).toEqual({
        Ref: expect.any(String),
      });
      expect(Object.keys(template.findOutputs('GithubRedeliveryTokenSecretName'))).toEqual([]);
    },
  );

  test('GIVEN no webhook.githubRedelivery THEN no reconciler', () => {
    const rules = Template.fromStack(buildApp(sampleConfig()).stacks.shared).findResources(
      'AWS::Events::Rule',
      {
        Properties: { ScheduleExpression: Match.anyValue() },
      },
    );
    expect(Object.keys(rules)).toEqual([]);
  });
});

describe('WebhookReceiver: alarm topic', () => {
  test('GIVEN an alarmTopic THEN the build-not-kept alarm notifies it', () => {
    const stack = new Stack(new App(), 'Receiver');
    const topic = new sns.Topic(stack, 'Alarms');
    new WebhookReceiver(stack, 'Webhooks', { routes: [], allowedCidrs: ['192.0.2.0/24'], alarmTopic: topic });
    Template.fromStack(stack).hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'BuildNotKept',
      AlarmActions: [{ Ref: Match.stringLikeRegexp('^Alarms') }],
    });
  });
});

describe('shared stack: security checks', () => {
  test('GIVEN the sample config WHEN synthesized with cdk-nag THEN no rule fails', () => {
    const { app } = buildApp(sampleConfig(), { nag: true });
    expect(() => app.synth()).not.toThrow();
  });
});
