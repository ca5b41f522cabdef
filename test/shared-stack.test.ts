import { Match, Template } from 'aws-cdk-lib/assertions';
import { expandCidrs } from '../lib/config/cidr-presets';
import type { PipelineConfig } from '../lib/config/schema';
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

describe('shared stack: security checks', () => {
  test('GIVEN the sample config WHEN synthesized with cdk-nag THEN no rule fails', () => {
    const { app } = buildApp(sampleConfig(), { nag: true });
    expect(() => app.synth()).not.toThrow();
  });
});
