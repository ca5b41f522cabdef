import 'aws-sdk-client-mock-jest';
import { type LocalAwsEndpoints, startLocalAwsEndpoints } from '../../local/aws-endpoints';
import { loadWebhookHandler } from './load-handler';
import { bitbucketDelivery, bodyOf, fixture, giteaDelivery, LAMBDA_CONTEXT, SECRET } from './support';

/** Bitbucket Cloud, Gitea and Forgejo deliveries through the whole function (AWS mocked). */

const BITBUCKET_PUSH = fixture('bitbucket', 'repo-push.json');
const BITBUCKET_HEAD = '709d658dc5b6d6afcd46049c2f332ee3f515a67d';
const GITEA_PUSH = fixture('gitea', 'push.json');
const GITEA_HEAD = '67b56589a45103f891bdee7c0546e5d40bc02001';

type Change = Record<string, unknown>;
const [UPDATED] = (BITBUCKET_PUSH.push as { changes: Change[] }).changes as [Change];

/** The fixture's push with other ref changes, built from its own `new`/`old` shapes. */
function bitbucketPush(...changes: Change[]): Record<string, unknown> {
  return { ...BITBUCKET_PUSH, push: { changes } };
}
function refState(type: 'branch' | 'tag', name: string, hash: string): Change {
  return {
    ...(UPDATED.new as Change),
    type,
    name,
    target: { ...((UPDATED.new as Change).target as Change), hash },
  };
}

function environmentsOf(webhook: ReturnType<typeof loadWebhookHandler>) {
  return webhook.codebuild.commandCalls(webhook.CodeBuild.StartBuildCommand).map((call) => ({
    token: call.args[0].input.idempotencyToken,
    ...Object.fromEntries(
      (call.args[0].input.environmentVariablesOverride ?? []).map((v) => [v.name, v.value]),
    ),
  }));
}

describe('Bitbucket Cloud', () => {
  test('GIVEN a signed repo:push updating a configured branch WHEN delivered THEN 202 and one build of changes[].new.target.hash', async () => {
    const webhook = loadWebhookHandler();
    const result = await webhook.handler(bitbucketDelivery(BITBUCKET_PUSH), LAMBDA_CONTEXT);

    expect(result.statusCode).toBe(202);
    expect(bodyOf(result)).toEqual({
      builds: [{ repository: 'bitbucket-app', buildId: 'pushline-bitbucket-app:build-1' }],
    });
    expect(environmentsOf(webhook)).toEqual([
      expect.objectContaining({
        COMMIT_SHA: BITBUCKET_HEAD,
        GIT_REF: 'refs/heads/name-of-branch',
        CLONE_URL: 'git@bitbucket.org:team_name/repo_name.git',
        SOURCE_PROVIDER: 'bitbucket',
        SOURCE_REPOSITORY: 'team_name/repo_name',
        DELIVERY_ID: 'afe2ff0b-29a6-4b52-9a1d-1d9e0c2b4c11',
      }),
    ]);
  });

  test('GIVEN one delivery that updates a branch, creates a tag, closes a branch and pushes an unconfigured branch WHEN delivered THEN exactly the branch and the tag build, each its own commit and token', async () => {
    const webhook = loadWebhookHandler();
    const tagHash = 'a'.repeat(40);
    const delivery = bitbucketDelivery(
      bitbucketPush(
        UPDATED,
        { new: refState('tag', 'v1.0.0', tagHash), old: null, created: true, closed: false },
        { new: null, old: refState('branch', 'main', 'b'.repeat(40)), created: false, closed: true },
        { new: refState('branch', 'experiment', 'c'.repeat(40)), old: null, created: true, closed: false },
      ),
    );
    const result = await webhook.handler(delivery, LAMBDA_CONTEXT);

    expect(result.statusCode).toBe(202);
    const builds = environmentsOf(webhook);
    expect(builds.map((b) => [b.GIT_REF, b.COMMIT_SHA])).toEqual([
      ['refs/heads/name-of-branch', BITBUCKET_HEAD],
      ['refs/tags/v1.0.0', tagHash],
    ]);
    expect(new Set(builds.map((b) => b.token)).size).toBe(2);
  });

  test('GIVEN a delivery that only closes a branch WHEN delivered THEN 200 with the reason and no build', async () => {
    const webhook = loadWebhookHandler();
    const closed = { new: null, old: UPDATED.old, created: false, closed: true };
    const result = await webhook.handler(bitbucketDelivery(bitbucketPush(closed)), LAMBDA_CONTEXT);
    expect(result.statusCode).toBe(200);
    expect(bodyOf(result)).toEqual({ ignored: 'branch name-of-branch was deleted' });
    expect(webhook.codebuild).not.toHaveReceivedCommand(webhook.CodeBuild.StartBuildCommand);
  });

  test.each([
    ['without a signature', () => bitbucketDelivery(BITBUCKET_PUSH, { signature: null })],
    ['signed with another secret', () => bitbucketDelivery(BITBUCKET_PUSH, { secret: 'not-the-secret' })],
    ['signed with the GitHub secret', () => bitbucketDelivery(BITBUCKET_PUSH, { secret: SECRET.github })],
  ])('GIVEN a repo:push %s WHEN delivered THEN 401 and no build', async (_name, delivery) => {
    const webhook = loadWebhookHandler();
    const result = await webhook.handler(delivery(), LAMBDA_CONTEXT);
    expect(result.statusCode).toBe(401);
    expect(bodyOf(result)).toEqual({ error: 'unauthorized' });
    expect(webhook.codebuild).not.toHaveReceivedCommand(webhook.CodeBuild.StartBuildCommand);
  });

  test.each([
    [
      'a change whose target hash is short',
      () =>
        bitbucketDelivery(
          bitbucketPush({ ...UPDATED, new: refState('branch', 'name-of-branch', '709d658') }),
        ),
      'push.changes[0].new.target.hash: must be a 40-hex commit SHA',
    ],
    [
      'changes that are not a list',
      () => bitbucketDelivery({ ...BITBUCKET_PUSH, push: { changes: UPDATED } }),
      'push.changes: must be a list',
    ],
    [
      'a change of a ref type Bitbucket does not send for Git',
      () =>
        bitbucketDelivery(
          bitbucketPush({ ...UPDATED, new: { ...(UPDATED.new as Change), type: 'bookmark' } }),
        ),
      'push.changes[0].new.type: must be branch or tag',
    ],
  ])(
    'GIVEN a signed repo:push with %s WHEN delivered THEN 400 with the reason and no build',
    async (_name, delivery, reason) => {
      const webhook = loadWebhookHandler();
      const result = await webhook.handler(delivery(), LAMBDA_CONTEXT);
      expect(result.statusCode).toBe(400);
      expect(bodyOf(result)).toEqual({ error: reason });
      expect(webhook.codebuild).not.toHaveReceivedCommand(webhook.CodeBuild.StartBuildCommand);
    },
  );

  test('GIVEN a signed pull request event WHEN delivered THEN 200 and no build', async () => {
    const webhook = loadWebhookHandler();
    const result = await webhook.handler(
      bitbucketDelivery({ pullrequest: {} }, { eventKey: 'pullrequest:created' }),
      LAMBDA_CONTEXT,
    );
    expect(bodyOf(result)).toEqual({ ignored: 'event pullrequest:created does not build' });
  });
});

describe('Gitea and Forgejo', () => {
  test.each([
    ['Gitea', false],
    ['Forgejo', true],
  ])(
    'GIVEN a signed %s push to a configured branch WHEN delivered THEN 202 and one build of the pushed commit',
    async (_name, forgejo) => {
      const webhook = loadWebhookHandler();
      const result = await webhook.handler(giteaDelivery(GITEA_PUSH, { forgejo }), LAMBDA_CONTEXT);
      expect(result.statusCode).toBe(202);
      expect(bodyOf(result)).toEqual({
        builds: [{ repository: 'gitea-app', buildId: 'pushline-gitea-app:build-1' }],
      });
      expect(environmentsOf(webhook)).toEqual([
        expect.objectContaining({
          COMMIT_SHA: GITEA_HEAD,
          GIT_REF: 'refs/heads/master',
          CLONE_URL: 'ssh://git@localhost:2222/example/example.git',
          SOURCE_PROVIDER: 'gitea',
          DELIVERY_ID: '5a4b2d8e-1f3c-4e6a-9b7d-0c2e4f6a8b1d',
        }),
      ]);
    },
  );

  test.each([
    ['without a signature', () => giteaDelivery(GITEA_PUSH, { signature: null })],
    ['signed with another secret', () => giteaDelivery(GITEA_PUSH, { secret: 'not-the-secret' })],
    [
      'whose Forgejo signature carries a GitHub-style prefix',
      () => giteaDelivery(GITEA_PUSH, { forgejo: true, signature: `sha256=${'0'.repeat(64)}` }),
    ],
  ])('GIVEN a push %s WHEN delivered THEN 401 and no build', async (_name, delivery) => {
    const webhook = loadWebhookHandler();
    const result = await webhook.handler(delivery(), LAMBDA_CONTEXT);
    expect(result.statusCode).toBe(401);
    expect(webhook.codebuild).not.toHaveReceivedCommand(webhook.CodeBuild.StartBuildCommand);
  });

  test('GIVEN a signed push whose commits is a string WHEN delivered THEN 400 naming the field, no build', async () => {
    const webhook = loadWebhookHandler();
    const result = await webhook.handler(giteaDelivery({ ...GITEA_PUSH, commits: 'x' }), LAMBDA_CONTEXT);
    expect(result.statusCode).toBe(400);
    expect(bodyOf(result)).toEqual({ error: 'commits: must be a list' });
    expect(webhook.codebuild).not.toHaveReceivedCommand(webhook.CodeBuild.StartBuildCommand);
  });

  test('GIVEN a push whose after is forty zeros (branch deleted) WHEN delivered THEN 200 and no build', async () => {
    const webhook = loadWebhookHandler();
    const deleted = {
      ...GITEA_PUSH,
      before: GITEA_HEAD,
      after: '0'.repeat(40),
      commits: [],
      head_commit: null,
    };
    const result = await webhook.handler(giteaDelivery(deleted), LAMBDA_CONTEXT);
    expect(bodyOf(result)).toEqual({ ignored: 'branch master was deleted' });
    expect(webhook.codebuild).not.toHaveReceivedCommand(webhook.CodeBuild.StartBuildCommand);
  });
});

describe('redeliveries of the new hosts', () => {
  let aws: LocalAwsEndpoints;
  beforeAll(async () => {
    aws = await startLocalAwsEndpoints();
  });
  afterAll(() => aws.close());

  test.each([
    [
      'Bitbucket multi-ref',
      () =>
        bitbucketDelivery(bitbucketPush(UPDATED, { new: refState('tag', 'v2', 'd'.repeat(40)), old: null })),
      2,
    ],
    ['Gitea', () => giteaDelivery(GITEA_PUSH, { delivery: 'gitea-redelivered-1' }), 1],
  ])(
    'GIVEN a %s delivery already handled WHEN redelivered THEN no second build',
    async (_name, delivery, builds) => {
      const webhook = loadWebhookHandler({
        IDEMPOTENCY_TABLE_NAME: 'more-hosts',
        AWS_ENDPOINT_URL_DYNAMODB: aws.env.AWS_ENDPOINT_URL_DYNAMODB ?? '',
      });
      const first = await webhook.handler(delivery(), LAMBDA_CONTEXT);
      const again = await webhook.handler(delivery(), LAMBDA_CONTEXT);
      expect(first.statusCode).toBe(202);
      expect(bodyOf(again)).toEqual(bodyOf(first));
      expect(webhook.codebuild).toHaveReceivedCommandTimes(webhook.CodeBuild.StartBuildCommand, builds);
    },
  );
});
