import { readFileSync, statSync } from 'node:fs';
import { AwsServiceError, type LocalAwsEndpoints } from '../../local/aws-endpoints';
import { BUNDLED_TEST_CONFIG, type BundledWebhook, invokeBundle, startBundledWebhook } from './bundle';
import {
  backlogDelivery,
  bitbucketDelivery,
  fixture,
  giteaDelivery,
  githubDelivery,
  gitlabDelivery,
  SECRET,
} from './support';

/**
 * The bundled function from `cdk synth`, unchanged, in its own `node` process, against local
 * CodeBuild, Secrets Manager, SQS and DynamoDB reached only through `AWS_ENDPOINT_URL_*`.
 */

const GITHUB_HEAD = '6113728f27ae82c7b1a177c8d03f9e96e0adf246';

let webhook: BundledWebhook;
let bundle: string;
let aws: LocalAwsEndpoints;
let functionEnv: Record<string, string>;

beforeAll(async () => {
  webhook = await startBundledWebhook(BUNDLED_TEST_CONFIG);
  ({ bundle, aws, env: functionEnv } = webhook);
}, 300_000);

afterAll(() => webhook?.close());

function environmentOf(call: { environmentVariablesOverride?: readonly { name: string; value: string }[] }) {
  return Object.fromEntries((call.environmentVariablesOverride ?? []).map((v) => [v.name, v.value]));
}

describe('the bundled webhook function against local AWS endpoints', () => {
  test('GIVEN the asset cdk synth bundled THEN it is one minified file under 500 KB with the routing table inside', () => {
    expect(statSync(bundle).size).toBeLessThan(500 * 1024);
    expect(readFileSync(bundle, 'utf8')).toContain('"projectName":"pushline-shop-api"');
    expect(functionEnv.PUSHLINE_ROUTES).toBeUndefined();
  });

  test('GIVEN the asset cdk synth bundled THEN it reads credentials from the environment only, without the default chain of SSO, INI files, web identity and container credentials', () => {
    const code = readFileSync(bundle, 'utf8');
    expect(code).toContain('Unable to find environment variable credentials.');
    for (const unused of [
      'sso_start_url',
      'AWS_WEB_IDENTITY_TOKEN_FILE',
      'AWS_CONTAINER_CREDENTIALS',
      'credential_process',
    ])
      expect(code).not.toContain(unused);
  });

  test('GIVEN a signed GitHub push, a GitLab push and a Backlog post WHEN each is delivered THEN 202 and exactly one StartBuild each, carrying the full pushed SHA', async () => {
    const { results, logLines } = await invokeBundle(bundle, functionEnv, [
      githubDelivery(fixture('github', 'push-branch-created.json'), { deliveryId: 'bundled-github-1' }),
      gitlabDelivery(fixture('gitlab', 'push.json'), { uuid: 'bundled-gitlab-1' }),
      backlogDelivery(fixture('backlog', 'push.json')),
    ]);

    expect(results.map((r) => r.statusCode)).toEqual([202, 202, 202]);
    expect(aws.startBuildCalls.map((c) => [c.projectName, environmentOf(c).COMMIT_SHA])).toEqual([
      ['pushline-hello-world', GITHUB_HEAD],
      ['pushline-diaspora', 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7'],
      ['pushline-shop-api', '7c3e1b5a9d2f4c6e8a0b1d3f5e7a9c2b4d6f8e01'],
    ]);
    const answered = JSON.parse(results[0]?.body ?? '{}') as { builds: { buildId: string }[] };
    expect(aws.builds.get(answered.builds[0]?.buildId ?? '')?.projectName).toBe('pushline-hello-world');

    const answers = logLines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.message === 'webhook answered');
    expect(answers.map((l) => [l.deliveryId, l.commit])).toEqual([
      ['bundled-github-1', GITHUB_HEAD],
      ['bundled-gitlab-1', 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7'],
      [expect.stringContaining('SHOP/api:refs/heads/main:'), '7c3e1b5a9d2f4c6e8a0b1d3f5e7a9c2b4d6f8e01'],
    ]);
    for (const line of logLines) {
      for (const value of Object.values(SECRET)) expect(line).not.toContain(value);
      expect(line).not.toContain('noreply.github.com');
    }
  });

  test('GIVEN a signed Bitbucket repo:push and a signed Forgejo push WHEN delivered to /webhooks/bitbucket and /webhooks/gitea THEN one StartBuild each, of the pushed commit', async () => {
    const before = aws.startBuildCalls.length;
    const { results } = await invokeBundle(bundle, functionEnv, [
      bitbucketDelivery(fixture('bitbucket', 'repo-push.json'), { uuid: 'bundled-bitbucket-1' }),
      giteaDelivery(fixture('gitea', 'push.json'), { delivery: 'bundled-gitea-1', forgejo: true }),
    ]);
    expect(results.map((r) => r.statusCode)).toEqual([202, 202]);
    expect(
      aws.startBuildCalls.slice(before).map((c) => [c.projectName, environmentOf(c).COMMIT_SHA]),
    ).toEqual([
      ['pushline-bitbucket-app', '709d658dc5b6d6afcd46049c2f332ee3f515a67d'],
      ['pushline-gitea-app', '67b56589a45103f891bdee7c0546e5d40bc02001'],
    ]);
  });

  test('GIVEN the same GitHub delivery again from a new process WHEN redelivered THEN no second build', async () => {
    const before = aws.startBuildCalls.length;
    const { results } = await invokeBundle(bundle, functionEnv, [
      githubDelivery(fixture('github', 'push-branch-created.json'), { deliveryId: 'bundled-github-1' }),
    ]);
    expect(results[0]?.statusCode).toBe(202);
    expect(aws.startBuildCalls.length).toBe(before);
  });

  test('GIVEN a body altered after signing WHEN delivered THEN 401 and no build', async () => {
    const before = aws.startBuildCalls.length;
    const signed = githubDelivery(fixture('github', 'push-branch-created.json'), {
      deliveryId: 'bundled-github-2',
    });
    const { results } = await invokeBundle(bundle, functionEnv, [
      { ...signed, body: (signed.body ?? '').replace('master', 'mister') },
    ]);
    expect(results[0]?.statusCode).toBe(401);
    expect(aws.startBuildCalls.length).toBe(before);
  });

  test('GIVEN CodeBuild throttles WHEN a push arrives THEN 202 queued and the request is on the retry queue', async () => {
    aws.onStartBuild(() => {
      throw new AwsServiceError('ThrottlingException', 'Rate exceeded');
    });
    try {
      const { results } = await invokeBundle(bundle, functionEnv, [
        gitlabDelivery(fixture('gitlab', 'push.json'), { uuid: 'bundled-gitlab-throttled' }),
      ]);
      expect(results[0]?.statusCode).toBe(202);
      expect(JSON.parse(results[0]?.body ?? '{}')).toEqual({ queued: [{ repository: 'diaspora' }] });
      expect(aws.sentMessages).toHaveLength(1);
      expect(aws.sentMessages[0]?.queueUrl).toBe(aws.queueUrl);
    } finally {
      aws.onStartBuild(undefined);
    }
  });
});
