import 'aws-sdk-client-mock-jest';
import { compileRoutes } from '../../lambda/webhook/compile-routes';
import { type LocalAwsEndpoints, startLocalAwsEndpoints } from '../../local/aws-endpoints';
import { loadWebhookHandler } from './load-handler';
import {
  apiEvent,
  backlogDelivery,
  bodyOf,
  fixture,
  fixtureText,
  githubDelivery,
  gitlabDelivery,
  LAMBDA_CONTEXT,
  SECRET,
  SECRET_ARN,
} from './support';

const GITHUB_PUSH = fixture('github', 'push-branch-created.json');
const GITHUB_HEAD = '6113728f27ae82c7b1a177c8d03f9e96e0adf246';
const GITLAB_PUSH = fixture('gitlab', 'push.json');
const BACKLOG_PUSH = fixture('backlog', 'push.json');

function env(name: string, value: string) {
  return { name, value, type: 'PLAINTEXT' };
}

describe('webhook function: pushes that build', () => {
  test('GIVEN a signed GitHub push to a configured branch WHEN delivered THEN 202 and exactly one StartBuild of the pushed SHA', async () => {
    const webhook = loadWebhookHandler();
    const result = await webhook.handler(githubDelivery(GITHUB_PUSH), LAMBDA_CONTEXT);

    expect(result.statusCode).toBe(202);
    expect(bodyOf(result)).toEqual({
      builds: [{ repository: 'hello-world', buildId: 'pushline-hello-world:build-1' }],
    });
    expect(webhook.codebuild).toHaveReceivedCommandTimes(webhook.CodeBuild.StartBuildCommand, 1);
    expect(webhook.codebuild).toHaveReceivedCommandWith(webhook.CodeBuild.StartBuildCommand, {
      projectName: 'pushline-hello-world',
      idempotencyToken: expect.stringMatching(/^[0-9a-f]{64}$/),
      environmentVariablesOverride: [
        env('COMMIT_SHA', GITHUB_HEAD),
        env('GIT_REF', 'refs/heads/master'),
        env('CLONE_URL', 'git@github.com:Codertocat/Hello-World.git'),
        env('SOURCE_PROVIDER', 'github'),
        env('SOURCE_REPOSITORY', 'Codertocat/Hello-World'),
        env('DELIVERY_ID', '72d3162e-cc78-11e3-81ab-4c9367dc0958'),
      ],
    });
  });

  test('GIVEN a GitHub push posted form-encoded and handed over base64-encoded WHEN delivered THEN it builds', async () => {
    const webhook = loadWebhookHandler();
    const result = await webhook.handler(
      githubDelivery(GITHUB_PUSH, { form: true, base64: true }),
      LAMBDA_CONTEXT,
    );
    expect(result.statusCode).toBe(202);
    expect(webhook.codebuild).toHaveReceivedCommandTimes(webhook.CodeBuild.StartBuildCommand, 1);
  });

  test('GIVEN a GitHub tag push matching the tag patterns WHEN delivered THEN it builds the tagged commit', async () => {
    const webhook = loadWebhookHandler();
    const result = await webhook.handler(
      githubDelivery(fixture('github', 'push-tag-created.json')),
      LAMBDA_CONTEXT,
    );
    expect(result.statusCode).toBe(202);
    const input = webhook.codebuild.commandCalls(webhook.CodeBuild.StartBuildCommand)[0]?.args[0].input;
    expect(input?.environmentVariablesOverride).toEqual(
      expect.arrayContaining([env('COMMIT_SHA', GITHUB_HEAD), env('GIT_REF', 'refs/tags/simple-tag')]),
    );
  });

  test('GIVEN a GitLab push with the right token WHEN delivered THEN 202 and one StartBuild of checkout_sha', async () => {
    const webhook = loadWebhookHandler();
    const result = await webhook.handler(gitlabDelivery(GITLAB_PUSH), LAMBDA_CONTEXT);
    expect(result.statusCode).toBe(202);
    expect(bodyOf(result)).toEqual({
      builds: [{ repository: 'diaspora', buildId: 'pushline-diaspora:build-1' }],
    });
    expect(webhook.codebuild).toHaveReceivedCommandTimes(webhook.CodeBuild.StartBuildCommand, 1);
    expect(webhook.codebuild).toHaveReceivedCommandWith(webhook.CodeBuild.StartBuildCommand, {
      projectName: 'pushline-diaspora',
      environmentVariablesOverride: [
        env('COMMIT_SHA', 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7'),
        env('GIT_REF', 'refs/heads/master'),
        env('CLONE_URL', 'git@example.com:mike/diaspora.git'),
        env('SOURCE_PROVIDER', 'gitlab'),
        env('SOURCE_REPOSITORY', 'mike/diaspora'),
        env('DELIVERY_ID', '13792a34-cac6-4fda-95a8-c58e00a3954e'),
      ],
    });
  });

  test('GIVEN GitLab tag push and branch creation deliveries WHEN delivered THEN each builds', async () => {
    const webhook = loadWebhookHandler();
    const tag = await webhook.handler(
      gitlabDelivery(fixture('gitlab', 'tag-push.json'), { hook: 'Tag Push Hook', uuid: 'tag-1' }),
      LAMBDA_CONTEXT,
    );
    const branch = await webhook.handler(
      gitlabDelivery(fixture('gitlab', 'push-branch-created.json'), { uuid: 'branch-1' }),
      LAMBDA_CONTEXT,
    );
    expect([tag.statusCode, branch.statusCode]).toEqual([202, 202]);
    expect(bodyOf(tag)).toEqual({ builds: [{ repository: 'example', buildId: 'pushline-example:build-1' }] });
    expect(webhook.codebuild).toHaveReceivedCommandTimes(webhook.CodeBuild.StartBuildCommand, 2);
  });

  test('GIVEN a Backlog form post with the URL token WHEN delivered THEN 202 and one StartBuild of `after`', async () => {
    const webhook = loadWebhookHandler();
    const result = await webhook.handler(backlogDelivery(BACKLOG_PUSH), LAMBDA_CONTEXT);
    expect(result.statusCode).toBe(202);
    expect(bodyOf(result)).toEqual({
      builds: [{ repository: 'shop-api', buildId: 'pushline-shop-api:build-1' }],
    });
    expect(webhook.codebuild).toHaveReceivedCommandTimes(webhook.CodeBuild.StartBuildCommand, 1);
    expect(webhook.codebuild).toHaveReceivedCommandWith(webhook.CodeBuild.StartBuildCommand, {
      projectName: 'pushline-shop-api',
      environmentVariablesOverride: [
        env('COMMIT_SHA', '7c3e1b5a9d2f4c6e8a0b1d3f5e7a9c2b4d6f8e01'),
        env('GIT_REF', 'refs/heads/main'),
        env('CLONE_URL', 'example@example.git.backlog.jp:/SHOP/api.git'),
        env('SOURCE_PROVIDER', 'backlog'),
        env('SOURCE_REPOSITORY', 'SHOP/api'),
        env(
          'DELIVERY_ID',
          'example.backlog.jp/SHOP/api:refs/heads/main:2a9f4ba4b4a8c4d8e4a1f7e9ad2c5d1b7e5f0a11:7c3e1b5a9d2f4c6e8a0b1d3f5e7a9c2b4d6f8e01',
        ),
      ],
    });
  });

  test('GIVEN Backlog branch creation and a tag push (no file lists) WHEN delivered THEN both build despite the path filter', async () => {
    const webhook = loadWebhookHandler();
    const created = await webhook.handler(
      backlogDelivery(fixture('backlog', 'push-branch-created.json')),
      LAMBDA_CONTEXT,
    );
    const tag = await webhook.handler(backlogDelivery(fixture('backlog', 'push-tag.json')), LAMBDA_CONTEXT);
    expect([created.statusCode, tag.statusCode]).toEqual([202, 202]);
  });
});

describe('webhook function: the same repository on two servers', () => {
  const onGhes = {
    ...GITHUB_PUSH,
    repository: {
      ...(GITHUB_PUSH.repository as object),
      html_url: 'https://ghes.example.co.jp/Codertocat/Hello-World',
    },
  };

  test('GIVEN Codertocat/Hello-World configured on github.com and on a GitHub Enterprise Server WHEN each server delivers a push THEN each builds only its own repository', async () => {
    const webhook = loadWebhookHandler();
    const fromDotCom = await webhook.handler(
      githubDelivery(GITHUB_PUSH, { deliveryId: 'dotcom-1' }),
      LAMBDA_CONTEXT,
    );
    const fromGhes = await webhook.handler(githubDelivery(onGhes, { deliveryId: 'ghes-1' }), LAMBDA_CONTEXT);

    expect(bodyOf(fromDotCom)).toEqual({
      builds: [{ repository: 'hello-world', buildId: 'pushline-hello-world:build-1' }],
    });
    expect(bodyOf(fromGhes)).toEqual({
      builds: [{ repository: 'hello-world-ghes', buildId: 'pushline-hello-world-ghes:build-2' }],
    });
    expect(webhook.codebuild).toHaveReceivedCommandTimes(webhook.CodeBuild.StartBuildCommand, 2);
    expect(webhook.codebuild).toHaveReceivedCommandWith(webhook.CodeBuild.StartBuildCommand, {
      projectName: 'pushline-hello-world-ghes',
      environmentVariablesOverride: expect.arrayContaining([
        env('COMMIT_SHA', GITHUB_HEAD),
        env('CLONE_URL', 'git@ghes.example.co.jp:Codertocat/Hello-World.git'),
      ]),
    });
  });

  test('GIVEN a push from a GitHub server nobody configured WHEN delivered THEN 200 naming the server, no build', async () => {
    const webhook = loadWebhookHandler();
    const elsewhere = {
      ...onGhes,
      repository: { ...onGhes.repository, html_url: 'https://git.other.example/Codertocat/Hello-World' },
    };
    const result = await webhook.handler(githubDelivery(elsewhere), LAMBDA_CONTEXT);
    expect(result.statusCode).toBe(200);
    expect(bodyOf(result)).toEqual({
      ignored: 'repository Codertocat/Hello-World on git.other.example is not configured',
    });
    expect(webhook.codebuild).not.toHaveReceivedCommand(webhook.CodeBuild.StartBuildCommand);
  });

  test('GIVEN a Backlog Enterprise push (repository URL under /backlog/ on port 8969) WHEN delivered THEN only the Enterprise SHOP/api builds, cloned over port 8972', async () => {
    const webhook = loadWebhookHandler();
    const enterprise = {
      ...BACKLOG_PUSH,
      repository: {
        ...(BACKLOG_PUSH.repository as object),
        url: 'http://backlog.example.jp:8969/backlog/git/SHOP/api',
      },
    };
    const result = await webhook.handler(backlogDelivery(enterprise), LAMBDA_CONTEXT);
    expect(bodyOf(result)).toEqual({
      builds: [{ repository: 'shop-api-onprem', buildId: 'pushline-shop-api-onprem:build-1' }],
    });
    expect(webhook.codebuild).toHaveReceivedCommandTimes(webhook.CodeBuild.StartBuildCommand, 1);
    expect(webhook.codebuild).toHaveReceivedCommandWith(webhook.CodeBuild.StartBuildCommand, {
      environmentVariablesOverride: expect.arrayContaining([
        env('CLONE_URL', 'ssh://git@backlog.example.jp:8972/SHOP/api.git'),
        env('SOURCE_REPOSITORY', 'SHOP/api'),
      ]),
    });
  });
});

describe('webhook function: valid deliveries that build nothing', () => {
  test.each([
    ['GitHub ping', () => githubDelivery(fixture('github', 'ping.json'), { event: 'ping' }), 'ping'],
    [
      'GitHub tag deletion',
      () => githubDelivery(fixture('github', 'push-tag-deleted.json')),
      'tag simple-tag was deleted',
    ],
    [
      'GitHub branch deletion',
      () => githubDelivery({ ...fixture('github', 'push-tag-deleted.json'), ref: 'refs/heads/master' }),
      'branch master was deleted',
    ],
    [
      'GitHub push whose after is forty zeros, without the deleted flag',
      () => githubDelivery({ ...GITHUB_PUSH, after: '0'.repeat(40), deleted: false, head_commit: null }),
      'branch master was deleted',
    ],
    [
      'GitHub push to a branch no pattern matches',
      () => githubDelivery({ ...GITHUB_PUSH, ref: 'refs/heads/experiment' }),
      'branch experiment does not match the configured branch patterns',
    ],
    [
      'GitHub push to a repository not configured',
      () =>
        githubDelivery({
          ...GITHUB_PUSH,
          repository: { ...(GITHUB_PUSH.repository as object), full_name: 'someone/else' },
        }),
      'repository someone/else on github.com is not configured',
    ],
    [
      'GitHub issues event',
      () => githubDelivery({ action: 'opened' }, { event: 'issues' }),
      'event issues does not build',
    ],
    [
      'GitLab branch deletion',
      () => gitlabDelivery(fixture('gitlab', 'push-branch-deleted.json')),
      'branch master was deleted',
    ],
    [
      'GitLab issue hook',
      () => gitlabDelivery({ object_kind: 'issue' }, { hook: 'Issue Hook' }),
      'event Issue Hook does not build',
    ],
    [
      'Backlog branch deletion',
      () => backlogDelivery(fixture('backlog', 'push-branch-deleted.json')),
      'branch release/1.1 was deleted',
    ],
    [
      'Backlog push that changed no configured path',
      () =>
        backlogDelivery({
          ...BACKLOG_PUSH,
          revisions: [{ id: BACKLOG_PUSH.after, added: [], removed: [], modified: ['README.md'] }],
        }),
      'no changed path matches the configured paths',
    ],
  ])('GIVEN a %s WHEN delivered THEN 200 with the reason and no build', async (_name, delivery, reason) => {
    const webhook = loadWebhookHandler();
    const result = await webhook.handler(delivery(), LAMBDA_CONTEXT);
    expect(result.statusCode).toBe(200);
    expect(bodyOf(result)).toEqual({ ignored: reason });
    expect(webhook.codebuild).not.toHaveReceivedCommand(webhook.CodeBuild.StartBuildCommand);
  });

  test('GIVEN a GitLab push listing 2 of 4 commits WHEN paths are filtered THEN it builds rather than skips', async () => {
    const webhook = loadWebhookHandler({
      PUSHLINE_ROUTES: JSON.stringify(
        compileRoutes([
          {
            name: 'diaspora',
            projectName: 'pushline-diaspora',
            provider: 'gitlab',
            host: 'example.com',
            repository: 'mike/diaspora',
            cloneUrl: 'git@example.com:mike/diaspora.git',
            branches: ['master'],
            tags: [],
            paths: ['docs/**'],
          },
        ]),
      ),
    });
    const result = await webhook.handler(gitlabDelivery(GITLAB_PUSH), LAMBDA_CONTEXT);
    expect(result.statusCode).toBe(202);
  });
});

describe('webhook function: bad input gets a 4xx and never a build', () => {
  test('GIVEN a GitHub push whose body was altered after signing WHEN delivered THEN 401 with nothing revealed', async () => {
    const webhook = loadWebhookHandler();
    const signed = githubDelivery(GITHUB_PUSH);
    const tampered = { ...signed, body: (signed.body ?? '').replace(GITHUB_HEAD, 'f'.repeat(40)) };
    const result = await webhook.handler(tampered, LAMBDA_CONTEXT);
    expect(result.statusCode).toBe(401);
    expect(bodyOf(result)).toEqual({ error: 'unauthorized' });
    expect(webhook.codebuild).not.toHaveReceivedCommand(webhook.CodeBuild.StartBuildCommand);
  });

  test.each([
    ['GitHub push without a signature', () => githubDelivery(GITHUB_PUSH, { signature: null })],
    [
      'GitHub push signed with another secret',
      () => githubDelivery(GITHUB_PUSH, { secret: 'not-the-secret' }),
    ],
    [
      'GitHub push signed with the GitLab token',
      () => githubDelivery(GITHUB_PUSH, { secret: SECRET.gitlab }),
    ],
    ['GitLab push without a token', () => gitlabDelivery(GITLAB_PUSH, { token: null })],
    ['GitLab push with a wrong token', () => gitlabDelivery(GITLAB_PUSH, { token: `${SECRET.gitlab}x` })],
    ['GitLab push with the Backlog token', () => gitlabDelivery(GITLAB_PUSH, { token: SECRET.backlog })],
    ['Backlog post without a token', () => backlogDelivery(BACKLOG_PUSH, { token: null })],
    ['Backlog post with a wrong token', () => backlogDelivery(BACKLOG_PUSH, { token: 'guess' })],
    ['malformed body without credentials', () => apiEvent({ provider: 'github', body: '{"ref":' })],
  ])('GIVEN a %s WHEN delivered THEN 401 and no build', async (_name, delivery) => {
    const webhook = loadWebhookHandler();
    const result = await webhook.handler(delivery(), LAMBDA_CONTEXT);
    expect(result.statusCode).toBe(401);
    expect(bodyOf(result)).toEqual({ error: 'unauthorized' });
    expect(webhook.codebuild).not.toHaveReceivedCommand(webhook.CodeBuild.StartBuildCommand);
  });

  test.each([
    [
      'a signed GitHub body that is not JSON',
      () => githubDelivery('{"ref": "refs/heads/master"'),
      'body is not a JSON object',
    ],
    [
      'a signed GitHub push without after',
      () => githubDelivery({ ...GITHUB_PUSH, after: undefined }),
      'after: must be a string',
    ],
    [
      'a signed GitHub push with a short SHA',
      () => githubDelivery({ ...GITHUB_PUSH, after: '6113728', head_commit: null }),
      'after: must be a 40-hex commit SHA',
    ],
    [
      'a signed GitHub push of a note ref',
      () => githubDelivery({ ...GITHUB_PUSH, ref: 'refs/notes/commits' }),
      'ref: must be refs/heads/<branch> or refs/tags/<tag>',
    ],
    [
      'a GitLab push sent as text/plain',
      () => ({
        ...gitlabDelivery(GITLAB_PUSH),
        headers: {
          'Content-Type': 'text/plain',
          'X-Gitlab-Event': 'Push Hook',
          'X-Gitlab-Token': SECRET.gitlab,
        },
      }),
      'content type must be application/json',
    ],
    [
      'a GitLab push without project',
      () => gitlabDelivery({ ...GITLAB_PUSH, project: undefined }),
      'project: must be an object',
    ],
    [
      'a Backlog post without the payload field',
      () => ({ ...backlogDelivery(BACKLOG_PUSH), body: 'data=1' }),
      'form body has no payload field',
    ],
    [
      'a Backlog post whose payload is not JSON',
      () => backlogDelivery('{before:'),
      'payload is not a JSON object',
    ],
    [
      'a Backlog post of a repository URL that is not Backlog Git',
      () => backlogDelivery({ ...BACKLOG_PUSH, repository: { name: 'api', url: 'https://example.com/api' } }),
      'repository.url: must be a Backlog Git repository URL',
    ],
    [
      'a Backlog post whose repository URL is no URL at all (found by the property test)',
      () => backlogDelivery({ ...BACKLOG_PUSH, repository: { name: 'api', url: '<@q~LRJGo+' } }),
      'repository.url: must be an http(s) URL',
    ],
    [
      'a signed GitHub push whose commits is a string',
      () => githubDelivery({ ...GITHUB_PUSH, commits: 'a string' }),
      'commits: must be a list',
    ],
    [
      'a signed GitHub push listing a changed path that is not a string',
      () => githubDelivery({ ...GITHUB_PUSH, commits: [{ id: GITHUB_HEAD, added: [42] }] }),
      'commits[0].added[0]: must be a string',
    ],
    [
      'a signed GitHub push whose deleted is the text "false"',
      () => githubDelivery({ ...GITHUB_PUSH, deleted: 'false' }),
      'deleted: must be a boolean',
    ],
    [
      'a signed GitHub push whose repository URL is not a URL',
      () =>
        githubDelivery({
          ...GITHUB_PUSH,
          repository: { ...(GITHUB_PUSH.repository as object), html_url: 'Codertocat/Hello-World' },
        }),
      'repository.html_url: must be an http(s) URL',
    ],
    [
      'a GitLab push whose total_commits_count is text',
      () => gitlabDelivery({ ...GITLAB_PUSH, total_commits_count: '4' }),
      'total_commits_count: must be a number',
    ],
    [
      'a Backlog post whose revisions is an object',
      () => backlogDelivery({ ...BACKLOG_PUSH, revisions: { id: BACKLOG_PUSH.after } }),
      'revisions: must be a list',
    ],
  ])('GIVEN %s WHEN delivered THEN 400 with the reason and no build', async (_name, delivery, reason) => {
    const webhook = loadWebhookHandler();
    const result = await webhook.handler(delivery(), LAMBDA_CONTEXT);
    expect(result.statusCode).toBe(400);
    expect(bodyOf(result)).toEqual({ error: reason });
    expect(webhook.codebuild).not.toHaveReceivedCommand(webhook.CodeBuild.StartBuildCommand);
  });

  test('GIVEN a body over 5 MiB WHEN delivered THEN 400 before the secret is even read', async () => {
    const webhook = loadWebhookHandler();
    const huge = backlogDelivery({ ...BACKLOG_PUSH, padding: 'x'.repeat(5 * 1024 * 1024) });
    const result = await webhook.handler(huge, LAMBDA_CONTEXT);
    expect(result.statusCode).toBe(400);
    expect(webhook.secrets).not.toHaveReceivedCommand(webhook.SecretsManager.GetSecretValueCommand);
  });

  test('GIVEN an unknown provider WHEN delivered THEN 404', async () => {
    const webhook = loadWebhookHandler();
    const result = await webhook.handler(
      apiEvent({ provider: 'sourcehut', body: fixtureText('github', 'push-branch-created.json') }),
      LAMBDA_CONTEXT,
    );
    expect(result.statusCode).toBe(404);
    expect(webhook.codebuild).not.toHaveReceivedCommand(webhook.CodeBuild.StartBuildCommand);
  });
});

describe('webhook function: the secret', () => {
  test('GIVEN two deliveries within minutes WHEN handled THEN the secret is read once', async () => {
    const webhook = loadWebhookHandler();
    await webhook.handler(githubDelivery(GITHUB_PUSH, { deliveryId: 'a' }), LAMBDA_CONTEXT);
    await webhook.handler(gitlabDelivery(GITLAB_PUSH), LAMBDA_CONTEXT);
    expect(webhook.secrets).toHaveReceivedCommandTimes(webhook.SecretsManager.GetSecretValueCommand, 1);
    expect(webhook.secrets).toHaveReceivedCommandWith(webhook.SecretsManager.GetSecretValueCommand, {
      SecretId: SECRET_ARN,
    });
  });

  test('GIVEN the secret was rotated after it was cached and the read interval has passed WHEN a delivery signed with the new value arrives THEN it is re-read once and the push builds', async () => {
    const webhook = loadWebhookHandler({ SECRET_READ_INTERVAL_SECONDS: '0' });
    await webhook.handler(gitlabDelivery(GITLAB_PUSH, { uuid: 'before-rotation' }), LAMBDA_CONTEXT);
    const rotated = { ...SECRET, github: 'rotated-github-secret' };
    webhook.secrets
      .on(webhook.SecretsManager.GetSecretValueCommand)
      .resolves({ SecretString: JSON.stringify(rotated) });

    const result = await webhook.handler(
      githubDelivery(GITHUB_PUSH, { secret: rotated.github }),
      LAMBDA_CONTEXT,
    );
    expect(result.statusCode).toBe(202);
    expect(webhook.secrets).toHaveReceivedCommandTimes(webhook.SecretsManager.GetSecretValueCommand, 2);
  });
});

describe('webhook function: nothing twice, nothing lost', () => {
  let aws: LocalAwsEndpoints;
  beforeAll(async () => {
    aws = await startLocalAwsEndpoints();
  });
  afterAll(() => aws.close());
  const withDedupe = (table: string) => ({
    IDEMPOTENCY_TABLE_NAME: table,
    AWS_ENDPOINT_URL_DYNAMODB: aws.env.AWS_ENDPOINT_URL_DYNAMODB ?? '',
  });

  test('GIVEN a GitHub delivery already handled WHEN GitHub redelivers it THEN the same answer and no second build', async () => {
    const webhook = loadWebhookHandler(withDedupe('github-redelivery'));
    const first = await webhook.handler(
      githubDelivery(GITHUB_PUSH, { deliveryId: 'redelivered-1' }),
      LAMBDA_CONTEXT,
    );
    const again = await webhook.handler(
      githubDelivery(GITHUB_PUSH, { deliveryId: 'redelivered-1' }),
      LAMBDA_CONTEXT,
    );
    expect(first.statusCode).toBe(202);
    expect(again.statusCode).toBe(202);
    expect(bodyOf(again)).toEqual(bodyOf(first));
    expect(webhook.codebuild).toHaveReceivedCommandTimes(webhook.CodeBuild.StartBuildCommand, 1);
  });

  test('GIVEN a redelivery hours later from a fresh function instance WHEN it arrives THEN still no second build', async () => {
    const first = loadWebhookHandler(withDedupe('later-redelivery'));
    await first.handler(backlogDelivery(BACKLOG_PUSH), LAMBDA_CONTEXT);
    const later = loadWebhookHandler(withDedupe('later-redelivery'));
    const sixHoursLater = Date.now() + 6 * 60 * 60 * 1000;
    const clock = jest.spyOn(Date, 'now').mockReturnValue(sixHoursLater);
    const result = await later
      .handler(backlogDelivery(BACKLOG_PUSH), LAMBDA_CONTEXT)
      .finally(() => clock.mockRestore());
    expect(result.statusCode).toBe(202);
    expect(first.codebuild).toHaveReceivedCommandTimes(first.CodeBuild.StartBuildCommand, 1);
    expect(later.codebuild).not.toHaveReceivedCommand(later.CodeBuild.StartBuildCommand);
  });

  test('GIVEN two different GitHub deliveries of the same push WHEN both arrive THEN each is its own delivery', async () => {
    const webhook = loadWebhookHandler(withDedupe('distinct-deliveries'));
    await webhook.handler(githubDelivery(GITHUB_PUSH, { deliveryId: 'one' }), LAMBDA_CONTEXT);
    await webhook.handler(githubDelivery(GITHUB_PUSH, { deliveryId: 'two' }), LAMBDA_CONTEXT);
    const tokens = webhook.codebuild
      .commandCalls(webhook.CodeBuild.StartBuildCommand)
      .map((call) => call.args[0].input.idempotencyToken);
    expect(new Set(tokens).size).toBe(2);
  });

  test('GIVEN CodeBuild throttles WHEN a push arrives THEN 202 queued and the exact build request is on the retry queue', async () => {
    const webhook = loadWebhookHandler(withDedupe('throttled'));
    webhook.codebuild.on(webhook.CodeBuild.StartBuildCommand).rejects(
      Object.assign(new Error('Rate exceeded'), {
        name: 'ThrottlingException',
        $metadata: { httpStatusCode: 400 },
      }),
    );
    const result = await webhook.handler(
      gitlabDelivery(GITLAB_PUSH, { uuid: 'throttled-1' }),
      LAMBDA_CONTEXT,
    );

    expect(result.statusCode).toBe(202);
    expect(bodyOf(result)).toEqual({ queued: [{ repository: 'diaspora' }] });
    expect(webhook.sqs).toHaveReceivedCommandTimes(webhook.Sqs.SendMessageCommand, 1);
    const message = JSON.parse(
      webhook.sqs.commandCalls(webhook.Sqs.SendMessageCommand)[0]?.args[0].input.MessageBody ?? '{}',
    ) as { request: { projectName: string; environment: Record<string, string> } };
    expect(message.request.projectName).toBe('pushline-diaspora');
    expect(message.request.environment.COMMIT_SHA).toBe('da1560886d4f094c3e6c9ef40349f7d38b5d27d7');
  });

  test('GIVEN CodeBuild throttles and SQS is down WHEN a push arrives THEN 503, and a redelivery (by hand or the reconciler) builds', async () => {
    const webhook = loadWebhookHandler(withDedupe('sqs-down'));
    webhook.codebuild
      .on(webhook.CodeBuild.StartBuildCommand)
      .rejectsOnce(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }))
      .resolves({ build: { id: 'pushline-diaspora:after-retry' } });
    webhook.sqs.on(webhook.Sqs.SendMessageCommand).rejectsOnce(new Error('SQS unavailable'));

    const first = await webhook.handler(gitlabDelivery(GITLAB_PUSH, { uuid: 'sqs-down-1' }), LAMBDA_CONTEXT);
    const retried = await webhook.handler(
      gitlabDelivery(GITLAB_PUSH, { uuid: 'sqs-down-1' }),
      LAMBDA_CONTEXT,
    );
    expect(first.statusCode).toBe(503);
    expect(retried.statusCode).toBe(202);
    expect(bodyOf(retried)).toEqual({
      builds: [{ repository: 'diaspora', buildId: 'pushline-diaspora:after-retry' }],
    });
  });

  test('GIVEN a flood of deliveries with a wrong signature WHEN each asks for a fresh read THEN Secrets Manager is read once in the interval and each is refused', async () => {
    const webhook = loadWebhookHandler();
    const forged = Array.from({ length: 20 }, (_, i) =>
      githubDelivery(GITHUB_PUSH, { deliveryId: `forged-${i}`, secret: 'not-the-secret' }),
    );
    const results = await Promise.all(forged.map((event) => webhook.handler(event, LAMBDA_CONTEXT)));
    expect(results.map((r) => r.statusCode)).toEqual(forged.map(() => 401));
    expect(webhook.secrets).toHaveReceivedCommandTimes(webhook.SecretsManager.GetSecretValueCommand, 1);
  });

  test('GIVEN the secret was read once WHEN Secrets Manager then fails THEN deliveries are still authenticated with the last value', async () => {
    const webhook = loadWebhookHandler({ SECRET_CACHE_SECONDS: '0', SECRET_READ_INTERVAL_SECONDS: '0' });
    await webhook.handler(gitlabDelivery(GITLAB_PUSH, { uuid: 'while-healthy' }), LAMBDA_CONTEXT);
    webhook.secrets
      .on(webhook.SecretsManager.GetSecretValueCommand)
      .rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));

    const accepted = await webhook.handler(
      githubDelivery(GITHUB_PUSH, { deliveryId: 'stale' }),
      LAMBDA_CONTEXT,
    );
    const forged = await webhook.handler(
      githubDelivery(GITHUB_PUSH, { deliveryId: 'stale-forged', secret: 'not-the-secret' }),
      LAMBDA_CONTEXT,
    );
    expect([accepted.statusCode, forged.statusCode]).toEqual([202, 401]);
  });

  test('GIVEN a cold function WHEN Secrets Manager fails THEN 503 and no build', async () => {
    const webhook = loadWebhookHandler();
    webhook.secrets
      .on(webhook.SecretsManager.GetSecretValueCommand)
      .rejects(Object.assign(new Error('Internal'), { name: 'InternalServiceError' }));
    const result = await webhook.handler(githubDelivery(GITHUB_PUSH, { deliveryId: 'cold' }), LAMBDA_CONTEXT);
    expect(result.statusCode).toBe(503);
    expect(webhook.codebuild).not.toHaveReceivedCommand(webhook.CodeBuild.StartBuildCommand);
  });
});
