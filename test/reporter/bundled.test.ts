import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LocalAwsEndpoints, startLocalAwsEndpoints } from '../../local/aws-endpoints';
import { type LocalGitHostApi, startLocalGitHostApi } from '../../local/git-host-api';
import { type LocalNotificationTopic, startLocalNotificationTopic } from '../../local/notification-topic';
import { functionBundle, invokeBundle, synthesize } from '../webhook/bundle';
import { BACKLOG_ENV, buildEvent, GITHUB_ENV, GITHUB_SHA, GITLAB_ENV, GITLAB_SHA, TOKENS } from './support';

/**
 * The reporter exactly as `cdk synth` bundled it, in its own `node` process, with the API base
 * URLs of the config pointed at the local Git host stand-in and the AWS SDK at local Secrets
 * Manager, CodeBuild and SNS through `AWS_ENDPOINT_URL_*`.
 */

const TOKENS_SECRET = 'pushline-provider-tokens';
const TOPIC_ARN = 'arn:aws:sns:us-west-2:123456789012:pushline-notifications';

let api: LocalGitHostApi;
let aws: LocalAwsEndpoints;
let topic: LocalNotificationTopic;
let assemblyDir: string;
let bundle: string;
let env: Record<string, string>;

beforeAll(async () => {
  api = await startLocalGitHostApi();
  api.backlogPullRequests.set('SHOP/api', [{ number: 7, branch: 'main' }]);
  aws = await startLocalAwsEndpoints({
    secrets: { [TOKENS_SECRET]: JSON.stringify(TOKENS) },
    region: 'us-west-2',
  });
  topic = await startLocalNotificationTopic();
  const dir = mkdtempSync(join(tmpdir(), 'pushline-config-'));
  writeFileSync(
    join(dir, 'pipeline.config.yaml'),
    `
name: pushline
webhook:
  allowedCidrs: [github-hooks]
repositories:
  - name: hello-world
    source: { provider: github, repository: Codertocat/Hello-World, cloneUrl: "git@github.com:Codertocat/Hello-World.git", apiUrl: "${api.apiUrls.github}" }
  - name: diaspora
    source: { provider: gitlab, repository: mike/diaspora, cloneUrl: "git@example.com:mike/diaspora.git", apiUrl: "${api.apiUrls.gitlab}" }
  - name: shop-api
    source: { provider: backlog, repository: SHOP/api, cloneUrl: "example@example.git.backlog.jp:/SHOP/api.git", apiUrl: "${api.apiUrls.backlog}" }
`,
  );
  assemblyDir = await synthesize(join(dir, 'pipeline.config.yaml'));
  bundle = functionBundle(assemblyDir, 'pushline reporter');
  env = {
    ...aws.env,
    ...topic.env,
    PROVIDER_TOKENS_SECRET_ARN: TOKENS_SECRET,
    NOTIFICATION_TOPIC_ARN: TOPIC_ARN,
  };
}, 300_000);

afterAll(async () => {
  await Promise.all([api?.close(), aws?.close(), topic?.close()]);
  if (assemblyDir) rmSync(assemblyDir, { recursive: true, force: true });
});

beforeEach(() => {
  api.reports.length = 0;
  topic.messages.length = 0;
});

describe('the bundled reporter against the local Git host APIs', () => {
  test('GIVEN a successful build on each provider WHEN the three state changes are handled THEN GitHub and GitLab get success with the image and Backlog one comment', async () => {
    await invokeBundle(bundle, env, [
      buildEvent('pushline-hello-world', 'SUCCEEDED', GITHUB_ENV),
      buildEvent('pushline-diaspora', 'SUCCEEDED', GITLAB_ENV),
      buildEvent('pushline-shop-api', 'SUCCEEDED', BACKLOG_ENV),
    ]);

    expect(
      api.reports.map((r) => [r.provider, r.sha ?? r.pullRequest, r.state, r.context, r.description]),
    ).toEqual([
      [
        'github',
        GITHUB_SHA,
        'success',
        'pushline/hello-world',
        '123456789012.dkr.ecr.us-west-2.amazonaws.com/hello-world:6113728f27ae',
      ],
      [
        'gitlab',
        GITLAB_SHA,
        'success',
        'pushline/diaspora',
        '123456789012.dkr.ecr.us-west-2.amazonaws.com/diaspora:da1560886d4f',
      ],
      ['backlog', 7, undefined, undefined, undefined],
    ]);
    expect(api.reports[2]?.content).toContain(
      'Image: 123456789012.dkr.ecr.us-west-2.amazonaws.com/shop-api:7c3e1b5a9d2f',
    );
    expect(topic.messages).toEqual([]);
  });

  test('GIVEN a failed build on each provider WHEN handled THEN failure, failed and a failure comment, and three notices on the topic', async () => {
    const { logLines, stderrLogLines } = await invokeBundle(bundle, env, [
      buildEvent('pushline-hello-world', 'FAILED', GITHUB_ENV),
      buildEvent('pushline-diaspora', 'FAILED', GITLAB_ENV),
      buildEvent('pushline-shop-api', 'FAILED', BACKLOG_ENV),
    ]);

    expect(api.reports.map((r) => [r.provider, r.state])).toEqual([
      ['github', 'failure'],
      ['gitlab', 'failed'],
      ['backlog', undefined],
    ]);
    expect(api.reports[2]?.content).toContain('pushline/shop-api: 7c3e1b5a9d2f failed');
    expect(topic.messages.map((m) => [m.topicArn, m.subject])).toEqual([
      [TOPIC_ARN, 'pushline: build of hello-world failed'],
      [TOPIC_ARN, 'pushline: build of diaspora failed'],
      [TOPIC_ARN, 'pushline: build of shop-api failed'],
    ]);
    for (const token of Object.values(TOKENS))
      expect([...logLines, ...stderrLogLines].join('\n')).not.toContain(token);
  });

  test('GIVEN a late IN_PROGRESS of a build CodeBuild reports finished WHEN handled THEN GitHub gets success, never pending', async () => {
    const id = 'pushline-hello-world:8745a7a9-c340-456a-9166-edf953571bEX';
    aws.builds.set(id, {
      id,
      arn: `arn:aws:codebuild:us-west-2:123456789012:build/${id}`,
      projectName: 'pushline-hello-world',
      buildStatus: 'SUCCEEDED',
      startTime: Date.now() / 1000,
      environment: {
        environmentVariables: Object.entries(GITHUB_ENV).map(([name, value]) => ({
          name,
          value,
          type: 'PLAINTEXT',
        })),
      },
    });
    await invokeBundle(bundle, env, [buildEvent('pushline-hello-world', 'IN_PROGRESS', GITHUB_ENV)]);

    expect(api.reports.map((r) => r.state)).toEqual(['success']);
  });

  test('GIVEN an empty token secret WHEN a build is handled THEN nothing is reported, one warning per provider, no error', async () => {
    aws.secrets.set('empty-tokens', '{}');
    const { logLines, stderrLogLines } = await invokeBundle(
      bundle,
      { ...env, PROVIDER_TOKENS_SECRET_ARN: 'empty-tokens' },
      [
        buildEvent('pushline-hello-world', 'SUCCEEDED', GITHUB_ENV),
        buildEvent('pushline-hello-world', 'SUCCEEDED', GITHUB_ENV),
      ],
    );

    expect(api.reports).toEqual([]);
    const levels = [...logLines, ...stderrLogLines].map(
      (line) => JSON.parse(line) as { level: string; message: string },
    );
    expect(levels.filter((l) => l.level === 'WARN').map((l) => l.message)).toEqual([
      'no github token in the provider token secret: builds are not reported to github',
    ]);
    expect(levels.filter((l) => l.level === 'ERROR')).toEqual([]);
  });

  test('GIVEN the GitHub API answers 503 WHEN a build is handled THEN the invocation fails so that Lambda retries it, without the token in the log', async () => {
    api.failNext(1, 503);
    const failure = await invokeBundle(bundle, env, [
      buildEvent('pushline-hello-world', 'SUCCEEDED', GITHUB_ENV),
    ]).catch((err: { stdout?: string; stderr?: string }) => err);

    expect(failure).toHaveProperty('stderr');
    const output = `${(failure as { stdout?: string }).stdout ?? ''}${(failure as { stderr?: string }).stderr ?? ''}`;
    expect(output).toContain('HTTP 503');
    expect(output).not.toContain(TOKENS.github);
  });
});
