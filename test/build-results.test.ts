import { Match, Template } from 'aws-cdk-lib/assertions';
import { parseConfig } from '../lib/config/load';
import { type PipelineConfig, sourceApiUrl } from '../lib/config/schema';
import { reporterRoutes } from '../lib/shared-stack';
import { buildApp, sampleConfig } from './support/app';
import { problemsOf } from './support/config';

/** The shared stack's build reporter and notification topic, as synthesized from the config. */

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Principal?: unknown;
}

function withNotifications(config: PipelineConfig): PipelineConfig {
  return {
    ...config,
    notifications: {
      email: ['platform@example.com', 'oncall@example.com'],
      slack: { workspaceId: 'T0123ABCD', channelId: 'C0123ABCD' },
    },
  };
}

function reporterStatements(template: Template): Statement[] {
  const fns = template.findResources('AWS::Lambda::Function', {
    Properties: { Description: Match.stringLikeRegexp('^pushline reporter') },
  });
  expect(Object.keys(fns)).toHaveLength(1);
  const fn = Object.values(fns)[0];
  const role = (fn?.Properties.Role as { 'Fn::GetAtt': [string] } | undefined)?.['Fn::GetAtt'][0];
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((p) => (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref === role))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
}

const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);

describe('build reporter', () => {
  const config = withNotifications(sampleConfig());
  const template = Template.fromStack(buildApp(config).stacks.shared);

  test('GIVEN the sample config THEN one rule sends the build state changes of exactly the three pushline projects to the reporter', () => {
    const rules = template.findResources('AWS::Events::Rule', {
      Properties: { EventPattern: { source: ['aws.codebuild'] } },
    });
    expect(Object.values(rules).map((r) => r.Properties.EventPattern)).toEqual([
      {
        source: ['aws.codebuild'],
        'detail-type': ['CodeBuild Build State Change'],
        detail: {
          'project-name': ['pushline-shop-api', 'pushline-shop-web', 'pushline-tools-batch'],
          'build-status': ['IN_PROGRESS', 'SUCCEEDED', 'FAILED', 'FAULT', 'TIMED_OUT', 'STOPPED'],
        },
      },
    ]);
  });

  test('THEN the reporter may read the token secret, read builds (BatchGetBuilds, ListBuildsForProject) of the pushline projects only, publish to the topic, and nothing else', () => {
    const statements = reporterStatements(template);
    const byAction = (action: string) => statements.filter((s) => actionsOf(s).includes(action));

    expect(byAction('codebuild:BatchGetBuilds')).toHaveLength(1);
    const builds = byAction('codebuild:BatchGetBuilds')[0];
    expect(actionsOf(builds as Statement)).toEqual([
      'codebuild:BatchGetBuilds',
      'codebuild:ListBuildsForProject',
    ]);
    expect(JSON.stringify(builds?.Resource)).toContain(':project/pushline-shop-api');
    expect(builds?.Resource).toHaveLength(3);
    expect(JSON.stringify(builds?.Resource)).not.toContain('*');

    const secretRead = byAction('secretsmanager:GetSecretValue');
    expect(secretRead).toHaveLength(1);
    expect(JSON.stringify(secretRead[0]?.Resource)).toMatch(/ReporterProviderTokens/);

    expect(statements.flatMap(actionsOf).sort()).toEqual(
      [
        'codebuild:BatchGetBuilds',
        'codebuild:ListBuildsForProject',
        'codedeploy:GetDeployment',
        'ecs:DescribeTaskDefinition',
        'kms:Decrypt',
        'kms:GenerateDataKey*',
        'secretsmanager:DescribeSecret',
        'secretsmanager:GetSecretValue',
        'sns:Publish',
        'sqs:GetQueueAttributes',
        'sqs:GetQueueUrl',
        'sqs:SendMessage',
      ].sort(),
    );
  });

  test('THEN the route table is bundled, not passed as an environment variable, and the token secret starts empty', () => {
    const fn = Object.values(
      template.findResources('AWS::Lambda::Function', {
        Properties: { Description: Match.stringLikeRegexp('^pushline reporter') },
      }),
    )[0];
    expect(Object.keys(fn?.Properties.Environment.Variables).sort()).toEqual([
      'NOTIFICATION_TOPIC_ARN',
      'PROVIDER_TOKENS_SECRET_ARN',
    ]);
    template.hasResourceProperties('AWS::SecretsManager::Secret', {
      Description: Match.stringLikeRegexp('^pushline build results'),
      SecretString: '{}',
    });
  });

  test('THEN deployments of the service stacks reach the reporter, which may read only their deployments and the task definitions they run', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.codedeploy'],
        'detail-type': ['CodeDeploy Deployment State-change Notification'],
        detail: {
          application: [{ prefix: 'pushline-service-' }],
          state: ['START', 'SUCCESS', 'FAILURE', 'STOP'],
        },
      },
      Targets: [
        Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('ReporterHandler'), 'Arn'] } }),
      ],
    });
    const statements = reporterStatements(template);
    const getDeployment = statements.find((s) => actionsOf(s).includes('codedeploy:GetDeployment'));
    expect(JSON.stringify(getDeployment?.Resource)).toContain(':deploymentgroup:pushline-service-*');
    expect(statements.find((s) => actionsOf(s).includes('ecs:DescribeTaskDefinition'))?.Resource).toBe('*');
  });

  test('THEN a report that failed every retry lands in a queue whose alarm reaches the topic', () => {
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: Match.anyValue() } },
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmDescription: Match.stringLikeRegexp('could not be reported'),
      AlarmActions: [{ Ref: Match.stringLikeRegexp('NotificationsTopic') }],
    });
  });

  test('GIVEN a repository with report: false THEN its route says so (failed builds are still announced)', () => {
    const base = sampleConfig();
    const quiet = {
      ...base,
      repositories: base.repositories.map((r, i) => (i === 1 ? { ...r, report: false } : r)),
    };
    expect(reporterRoutes(quiet).map((r) => [r.name, r.report, r.apiUrl])).toEqual([
      ['shop-api', true, 'https://example.backlog.jp'],
      ['shop-web', false, 'https://api.github.com'],
      ['tools/batch', true, 'https://gitlab.com/api/v4'],
    ]);
  });
});

describe('notification topic', () => {
  const config = withNotifications(sampleConfig());
  const template = Template.fromStack(buildApp(config).stacks.shared);

  test('GIVEN two email addresses and a Slack channel THEN the KMS-encrypted topic has both email subscriptions and a Chatbot Slack channel', () => {
    template.hasResourceProperties('AWS::SNS::Topic', {
      KmsMasterKeyId: Match.anyValue(),
      DisplayName: 'pushline',
    });
    const emails = template.findResources('AWS::SNS::Subscription', { Properties: { Protocol: 'email' } });
    expect(
      Object.values(emails)
        .map((s) => s.Properties.Endpoint)
        .sort(),
    ).toEqual(['oncall@example.com', 'platform@example.com']);
    template.hasResourceProperties('AWS::Chatbot::SlackChannelConfiguration', {
      ConfigurationName: 'pushline-notifications',
      SlackWorkspaceId: 'T0123ABCD',
      SlackChannelId: 'C0123ABCD',
      SnsTopicArns: [{ Ref: Match.stringLikeRegexp('NotificationsTopic') }],
    });
  });

  test('THEN the dead-letter alarm tells the topic when it goes into alarm and when it is OK again', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmDescription: Match.stringLikeRegexp('^Pushes whose build could not be started'),
      AlarmActions: [{ Ref: Match.stringLikeRegexp('NotificationsTopic') }],
      OKActions: [{ Ref: Match.stringLikeRegexp('NotificationsTopic') }],
    });
  });

  test('THEN failed and stopped deployments of the service stacks reach the topic', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.codedeploy'],
        'detail-type': ['CodeDeploy Deployment State-change Notification'],
        detail: { application: [{ prefix: 'pushline-service-' }], state: ['FAILURE', 'STOP'] },
      },
      Targets: [Match.objectLike({ Arn: { Ref: Match.stringLikeRegexp('NotificationsTopic') } })],
    });
  });

  test('THEN EventBridge and CloudWatch alarms may use the key of the topic', () => {
    const keys = template.findResources('AWS::KMS::Key', {
      Properties: { Description: 'Encrypts the pushline notifications topic' },
    });
    const statements = Object.values(keys)[0]?.Properties.KeyPolicy.Statement as Statement[];
    const services = statements.flatMap(
      (s) => (s.Principal as { Service?: string | string[] } | undefined)?.Service ?? [],
    );
    expect(services.sort()).toEqual(['cloudwatch.amazonaws.com', 'events.amazonaws.com']);
  });

  test('GIVEN no notifications in the config THEN the topic exists without subscriptions or Slack', () => {
    const plain = Template.fromStack(buildApp(sampleConfig()).stacks.shared);
    plain.resourceCountIs('AWS::SNS::Subscription', 0);
    plain.resourceCountIs('AWS::Chatbot::SlackChannelConfiguration', 0);
  });
});

describe('cdk-nag', () => {
  /** The nag findings of the shared stack only (other stacks have their own tests and owners). */
  function sharedStackFindings(config: PipelineConfig): string[] {
    const { app } = buildApp(config, { nag: true });
    try {
      app.synth();
      return [];
    } catch (err) {
      return (err as Error).message.split('\n').filter((line) => line.includes('pushline-shared/'));
    }
  }

  test.each([
    ['without env', undefined],
    ['with env', { account: '123456789012', region: 'ap-northeast-1' }],
  ])(
    'GIVEN every notification option %s WHEN synthesized with cdk-nag THEN the shared stack has no finding',
    (_, env) => {
      expect(sharedStackFindings({ ...withNotifications(sampleConfig()), ...(env ? { env } : {}) })).toEqual(
        [],
      );
    },
  );
});

describe('config: where build results go', () => {
  const head = 'webhook:\n  allowedCidrs: [backlog-jp]\nrepositories:\n';

  const enterprise =
    '{ provider: backlog, repository: P/app, cloneUrl: "ssh://git@git.example.com:8972/P/app.git", knownHosts: ["[git.example.com]:8972 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"] }';

  test('GIVEN a Backlog Enterprise repository (no Backlog space in its clone URL) and no apiUrl THEN the config is rejected naming source.apiUrl', () => {
    const problems = problemsOf(`${head}  - name: app\n    source: ${enterprise}\n`);
    expect(problems).toEqual([
      expect.stringMatching(/^repositories\[0\]\.source\.apiUrl: is required for a Backlog repository/),
    ]);
  });

  test('GIVEN the same repository with report: false THEN it needs no apiUrl', () => {
    const config = parseConfig(`${head}  - name: app\n    report: false\n    source: ${enterprise}\n`);
    expect(config.repositories[0]?.report).toBe(false);
  });

  test.each([
    [
      'github.com',
      '{ provider: github, repository: a/b, cloneUrl: "git@github.com:a/b.git" }',
      'https://api.github.com',
    ],
    [
      'GitHub Enterprise Server',
      '{ provider: github, host: ghes.example.jp, repository: a/b, cloneUrl: "git@ghes.example.jp:a/b.git", knownHosts: ["ghes.example.jp ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"] }',
      'https://ghes.example.jp/api/v3',
    ],
    [
      'GitLab self-managed',
      '{ provider: gitlab, host: gitlab.example.jp, repository: a/b, cloneUrl: "git@gitlab.example.jp:a/b.git", knownHosts: ["gitlab.example.jp ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"] }',
      'https://gitlab.example.jp/api/v4',
    ],
    [
      'Bitbucket Cloud',
      '{ provider: bitbucket, repository: team/app, cloneUrl: "git@bitbucket.org:team/app.git" }',
      'https://api.bitbucket.org/2.0',
    ],
    [
      'a Gitea server',
      '{ provider: gitea, repository: team/app, cloneUrl: "ssh://git@gitea.example.jp:2222/team/app.git", knownHosts: ["[gitea.example.jp]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"] }',
      'https://gitea.example.jp/api/v1',
    ],
    [
      'a backlog.com space cloned from git.backlog.com',
      '{ provider: backlog, repository: P/app, cloneUrl: "demo@git.backlog.com:/P/app.git" }',
      'https://demo.backlog.com',
    ],
  ])(
    'GIVEN a repository on %s without apiUrl THEN results go to the API URL derived for it',
    (_where, source, expected) => {
      const config = parseConfig(`${head}  - name: app\n    source: ${source}\n`);
      expect(sourceApiUrl(config.repositories[0]?.source ?? { provider: 'github', cloneUrl: '' })).toBe(
        expected,
      );
    },
  );

  test('GIVEN an apiUrl that is not an http(s) URL and a Slack channel ID with spaces THEN both are named', () => {
    const problems = problemsOf(
      `notifications:\n  slack: { workspaceId: T0123ABCD, channelId: "my channel" }\n${head}  - name: app\n    source: { provider: github, repository: o/app, cloneUrl: "git@github.com:o/app.git", apiUrl: "ftp://ghe.example.com" }\n`,
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^repositories\[0\]\.source\.apiUrl: must be an http\(s\) URL .*"ftp:\/\/ghe\.example\.com"/,
        ),
        expect.stringMatching(/^notifications\.slack\.channelId: must be a Slack channel ID .*"my channel"/),
      ]),
    );
  });

  test('GIVEN GitHub Enterprise with a trailing slash THEN statuses go to that API without the slash', () => {
    const config = parseConfig(
      `${head}  - name: app\n    source: { provider: github, repository: o/app, cloneUrl: "git@ghe.example.com:o/app.git", apiUrl: "https://ghe.example.com/api/v3/" }\n`,
    );
    expect(reporterRoutes(config).map((r) => r.apiUrl)).toEqual(['https://ghe.example.com/api/v3']);
  });
});
