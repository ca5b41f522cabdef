import {
  type BuildRecord,
  type ReporterDeps,
  reportBuildEvent,
  reportDeploymentEvent,
} from '../../lambda/reporter/core';
import type { BuildStatus } from '../../lambda/reporter/events';
import { ProviderApiError } from '../../lambda/reporter/provider-api';
import type { ReportProvider } from '../../lambda/reporter/routes';
import { type LocalGitHostApi, startLocalGitHostApi } from '../../local/git-host-api';
import {
  BACKLOG_ENV,
  BACKLOG_SHA,
  buildEvent,
  deploymentEvent,
  GITHUB_ENV,
  GITHUB_SHA,
  GITLAB_ENV,
  GITLAB_SHA,
  pushEnvironment,
  reporterRoutes,
  sampleBuildEvent,
  TOKENS,
} from './support';

/**
 * The reporter's core with the real provider adapters and `fetch`, against a local stand-in for
 * the GitHub, GitLab and Backlog APIs that records what each received. Only BatchGetBuilds is
 * given as a function (the bundled test runs it against a local CodeBuild).
 */

const BUILD_PAGE =
  'https://us-west-2.console.aws.amazon.com/codesuite/codebuild/projects/pushline-hello-world/build/pushline-hello-world%3A8745a7a9-c340-456a-9166-edf953571bEX/?region=us-west-2';

let api: LocalGitHostApi;

beforeAll(async () => {
  api = await startLocalGitHostApi();
  api.backlogPullRequests.set('SHOP/api', [
    { number: 11, branch: 'main' },
    { number: 12, branch: 'feature/other' },
    { number: 13, branch: 'main', statusId: 3 },
    { number: 14, branch: 'main' },
  ]);
});
afterAll(() => api.close());
beforeEach(() => {
  api.reports.length = 0;
});

function deps(
  options: { builds?: (BuildRecord | undefined)[]; tokens?: Partial<Record<ReportProvider, string>> } = {},
): ReporterDeps & { lookups: string[] } {
  const lookups: string[] = [];
  const builds = [...(options.builds ?? [])];
  return {
    routes: new Map(reporterRoutes(api.apiUrls).map((r) => [r.projectName, r])),
    lookups,
    lookupBuild: async (id) => {
      lookups.push(id);
      return builds.length > 1 ? builds.shift() : builds[0];
    },
    tokenFor: async (provider) => (options.tokens ?? TOKENS)[provider],
  };
}

const running = (environment: Record<string, string>): BuildRecord => ({
  buildStatus: 'IN_PROGRESS',
  environment,
});
const ended = (buildStatus: BuildStatus, environment: Record<string, string>): BuildRecord => ({
  buildStatus,
  environment,
});

describe('GitHub commit statuses', () => {
  test('GIVEN a build of a GitHub repository that succeeded WHEN its state change arrives THEN the commit gets success with the image and the build page', async () => {
    await reportBuildEvent(buildEvent('pushline-hello-world', 'SUCCEEDED', GITHUB_ENV), deps());

    expect(api.reports).toEqual([
      {
        provider: 'github',
        repository: 'Codertocat/Hello-World',
        sha: GITHUB_SHA,
        state: 'success',
        context: 'pushline/hello-world',
        description: '123456789012.dkr.ecr.us-west-2.amazonaws.com/hello-world:6113728f27ae',
        targetUrl: BUILD_PAGE,
        credential: TOKENS.github,
      },
    ]);
  });

  test.each([
    ['FAILED', 'failure', '6113728f27ae failed'],
    ['FAULT', 'failure', '6113728f27ae failed (CodeBuild fault)'],
    ['TIMED_OUT', 'error', '6113728f27ae timed out'],
    ['STOPPED', 'error', '6113728f27ae was stopped'],
  ] as const)(
    'GIVEN a build that ended %s WHEN reported THEN GitHub gets %s saying so',
    async (status, state, description) => {
      await reportBuildEvent(buildEvent('pushline-hello-world', status, GITHUB_ENV), deps());

      expect(api.reports.map((r) => [r.state, r.description, r.context])).toEqual([
        [state, description, 'pushline/hello-world'],
      ]);
    },
  );

  test('GIVEN a build that has just started WHEN its IN_PROGRESS arrives THEN the commit gets pending', async () => {
    const d = deps({ builds: [running(GITHUB_ENV)] });
    await reportBuildEvent(buildEvent('pushline-hello-world', 'IN_PROGRESS', GITHUB_ENV), d);

    expect(api.reports.map((r) => [r.state, r.description])).toEqual([
      ['pending', '6113728f27ae is building'],
    ]);
    expect(d.lookups).toEqual([
      'pushline-hello-world:8745a7a9-c340-456a-9166-edf953571bEX',
      expect.any(String),
    ]);
  });

  test('GIVEN an image reference longer than GitHub allows WHEN reported THEN the description keeps its end within 140 characters', async () => {
    const long = {
      ...GITHUB_ENV,
      IMAGE_REPOSITORY_URI: `123456789012.dkr.ecr.us-west-2.amazonaws.com/${'a'.repeat(150)}`,
    };
    await reportBuildEvent(buildEvent('pushline-hello-world', 'SUCCEEDED', long), deps());

    const description = api.reports[0]?.description ?? '';
    expect(description).toHaveLength(140);
    expect(description.endsWith(':6113728f27ae')).toBe(true);
  });
});

describe('ordering: a late pending never overwrites the result', () => {
  test('GIVEN an IN_PROGRESS event delivered after the build succeeded WHEN it arrives THEN only success is sent', async () => {
    await reportBuildEvent(
      buildEvent('pushline-hello-world', 'IN_PROGRESS', GITHUB_ENV),
      deps({ builds: [ended('SUCCEEDED', GITHUB_ENV)] }),
    );

    expect(api.reports.map((r) => r.state)).toEqual(['success']);
  });

  test('GIVEN a build that ends while its pending is being sent WHEN the IN_PROGRESS is handled THEN the final state is sent again after the pending', async () => {
    await reportBuildEvent(
      buildEvent('pushline-hello-world', 'IN_PROGRESS', GITHUB_ENV),
      deps({ builds: [running(GITHUB_ENV), ended('FAILED', GITHUB_ENV)] }),
    );

    expect(api.reports.map((r) => r.state)).toEqual(['pending', 'failure']);
  });
});

describe('GitLab commit statuses', () => {
  test('GIVEN a GitLab repository WHEN its build starts and then succeeds THEN the commit gets running, then success, named pushline/<name> on the branch', async () => {
    const d = deps({ builds: [running(GITLAB_ENV)] });
    await reportBuildEvent(buildEvent('pushline-diaspora', 'IN_PROGRESS', GITLAB_ENV), d);
    await reportBuildEvent(buildEvent('pushline-diaspora', 'SUCCEEDED', GITLAB_ENV), d);

    expect(api.reports).toEqual([
      expect.objectContaining({
        provider: 'gitlab',
        repository: 'mike/diaspora',
        sha: GITLAB_SHA,
        state: 'running',
        ref: 'master',
        context: 'pushline/diaspora',
      }),
      expect.objectContaining({
        state: 'success',
        description: '123456789012.dkr.ecr.us-west-2.amazonaws.com/diaspora:da1560886d4f',
        targetUrl: expect.stringContaining('/projects/pushline-diaspora/build/pushline-diaspora%3A'),
        credential: TOKENS.gitlab,
      }),
    ]);
  });

  test.each([
    ['FAILED', 'failed'],
    ['TIMED_OUT', 'failed'],
    ['STOPPED', 'canceled'],
  ] as const)(
    'GIVEN a GitLab build that ended %s WHEN reported THEN the status is %s',
    async (status, state) => {
      await reportBuildEvent(buildEvent('pushline-diaspora', status, GITLAB_ENV), deps());

      expect(api.reports.map((r) => r.state)).toEqual([state]);
    },
  );
});

describe('Bitbucket Cloud build statuses and Gitea/Forgejo commit statuses', () => {
  const BITBUCKET_SHA = '709d658dc5b6d6afcd46049c2f332ee3f515a67d';
  const GITEA_SHA = '67b56589a45103f891bdee7c0546e5d40bc02001';
  const BITBUCKET_ENV = pushEnvironment(
    'bitbucket-app',
    BITBUCKET_SHA,
    'refs/heads/name-of-branch',
    'bitbucket',
    'team_name/repo_name',
  );
  const GITEA_ENV = pushEnvironment('gitea-app', GITEA_SHA, 'refs/heads/master', 'gitea', 'example/example');

  test('GIVEN a Bitbucket build that starts and then succeeds WHEN its state changes arrive THEN the commit gets INPROGRESS, then SUCCESSFUL with the image, under one key', async () => {
    await reportBuildEvent(
      buildEvent('pushline-bitbucket-app', 'IN_PROGRESS', BITBUCKET_ENV),
      deps({ builds: [running(BITBUCKET_ENV)] }),
    );
    await reportBuildEvent(buildEvent('pushline-bitbucket-app', 'SUCCEEDED', BITBUCKET_ENV), deps());

    expect(
      api.reports.map((r) => [r.provider, r.repository, r.sha, r.state, r.context, r.ref, r.credential]),
    ).toEqual([
      [
        'bitbucket',
        'team_name/repo_name',
        BITBUCKET_SHA,
        'INPROGRESS',
        'pushline/bitbucket-app',
        'name-of-branch',
        TOKENS.bitbucket,
      ],
      [
        'bitbucket',
        'team_name/repo_name',
        BITBUCKET_SHA,
        'SUCCESSFUL',
        'pushline/bitbucket-app',
        'name-of-branch',
        TOKENS.bitbucket,
      ],
    ]);
    expect(api.reports[1]?.description).toBe(
      `123456789012.dkr.ecr.us-west-2.amazonaws.com/bitbucket-app:${BITBUCKET_SHA.slice(0, 12)}`,
    );
  });

  test('GIVEN a stopped Bitbucket build WHEN it ends THEN the status is STOPPED', async () => {
    await reportBuildEvent(buildEvent('pushline-bitbucket-app', 'STOPPED', BITBUCKET_ENV), deps());
    expect(api.reports.map((r) => r.state)).toEqual(['STOPPED']);
  });

  test('GIVEN a Gitea (or Forgejo) build that fails WHEN it ends THEN the commit gets failure on pushline/<name>, with the build page, authenticated with the token', async () => {
    await reportBuildEvent(buildEvent('pushline-gitea-app', 'FAILED', GITEA_ENV), deps());

    expect(
      api.reports.map((r) => [r.provider, r.repository, r.sha, r.state, r.context, r.credential]),
    ).toEqual([['gitea', 'example/example', GITEA_SHA, 'failure', 'pushline/gitea-app', TOKENS.gitea]]);
    expect(api.reports[0]?.targetUrl).toContain('/codesuite/codebuild/projects/pushline-gitea-app/build/');
  });
});

describe('Backlog pull request comments', () => {
  test('GIVEN two open pull requests from the pushed branch WHEN the build succeeds THEN each gets one comment with the result, the image and the log link', async () => {
    await reportBuildEvent(buildEvent('pushline-shop-api', 'SUCCEEDED', BACKLOG_ENV), deps());

    expect(api.reports.map((r) => [r.provider, r.repository, r.pullRequest, r.credential])).toEqual([
      ['backlog', 'SHOP/api', 11, TOKENS.backlog],
      ['backlog', 'SHOP/api', 14, TOKENS.backlog],
    ]);
    const content = api.reports[0]?.content ?? '';
    expect(content).toContain('pushline/shop-api: 7c3e1b5a9d2f built');
    expect(content).toContain(`Commit: ${BACKLOG_SHA} (main)`);
    expect(content).toContain('Image: 123456789012.dkr.ecr.us-west-2.amazonaws.com/shop-api:7c3e1b5a9d2f');
    expect(content).toContain(
      'Build log: https://us-west-2.console.aws.amazon.com/codesuite/codebuild/projects/pushline-shop-api/',
    );
  });

  test('GIVEN an open pull request WHEN the build fails THEN its comment says failed and names no image', async () => {
    await reportBuildEvent(buildEvent('pushline-shop-api', 'FAILED', BACKLOG_ENV), deps());

    expect(api.reports).toHaveLength(2);
    expect(api.reports[0]?.content).toContain('pushline/shop-api: 7c3e1b5a9d2f failed');
    expect(api.reports[0]?.content).not.toContain('Image:');
  });

  test('GIVEN a Backlog build that starts WHEN IN_PROGRESS arrives THEN nothing is posted (one comment per build, at its end)', async () => {
    await reportBuildEvent(
      buildEvent('pushline-shop-api', 'IN_PROGRESS', BACKLOG_ENV),
      deps({ builds: [running(BACKLOG_ENV)] }),
    );

    expect(api.reports).toEqual([]);
  });
});

describe('what is not reported', () => {
  test('GIVEN no token for a provider WHEN a build ends THEN nothing is sent and the report says skipped', async () => {
    const outcome = await reportBuildEvent(
      buildEvent('pushline-hello-world', 'SUCCEEDED', GITHUB_ENV),
      deps({ tokens: { gitlab: 'x' } }),
    );

    expect(api.reports).toEqual([]);
    expect(outcome).toEqual({
      kind: 'reported',
      reports: [expect.objectContaining({ provider: 'github', delivery: 'skipped' })],
    });
  });

  test("GIVEN AWS's sample event verbatim (a project pushline does not report) WHEN it arrives THEN it is ignored", async () => {
    const outcome = await reportBuildEvent(sampleBuildEvent(), deps());

    expect(outcome).toEqual({ kind: 'ignored', reason: 'project my-sample-project is not reported' });
    expect(api.reports).toEqual([]);
  });

  test('GIVEN an event without the environment WHEN it arrives THEN the commit comes from BatchGetBuilds', async () => {
    const d = deps({ builds: [ended('SUCCEEDED', GITHUB_ENV)] });
    await reportBuildEvent(buildEvent('pushline-hello-world', 'SUCCEEDED', {}), d);

    expect(api.reports.map((r) => [r.sha, r.state])).toEqual([[GITHUB_SHA, 'success']]);
  });

  test('GIVEN a build started by hand (no COMMIT_SHA) WHEN it ends THEN nothing is reported', async () => {
    const outcome = await reportBuildEvent(
      buildEvent('pushline-hello-world', 'SUCCEEDED', {}),
      deps({ builds: [ended('SUCCEEDED', {})] }),
    );

    expect(outcome.kind).toBe('ignored');
    expect(api.reports).toEqual([]);
  });

  test('GIVEN something that is not a build state change WHEN it arrives THEN it is ignored, not retried', async () => {
    const outcome = await reportBuildEvent({ 'detail-type': 'Scheduled Event' }, deps());

    expect(outcome.kind).toBe('ignored');
  });
});

describe('provider API failures', () => {
  test('GIVEN the Backlog API answers 502 WHEN a build is reported THEN a retryable error is thrown that does not contain the API key', async () => {
    api.failNext(1, 502);
    const error = await reportBuildEvent(
      buildEvent('pushline-shop-api', 'SUCCEEDED', BACKLOG_ENV),
      deps(),
    ).catch((err: unknown) => err);

    expect(error).toBeInstanceOf(ProviderApiError);
    expect((error as ProviderApiError).retryable).toBe(true);
    expect((error as Error).message).toContain('HTTP 502');
    expect((error as Error).message).not.toContain(TOKENS.backlog);
  });

  test('GIVEN GitHub refuses the token (401) WHEN a build is reported THEN the error is not retryable', async () => {
    api.failNext(1, 401);
    const error = await reportBuildEvent(
      buildEvent('pushline-hello-world', 'SUCCEEDED', GITHUB_ENV),
      deps(),
    ).catch((err: unknown) => err);

    expect((error as ProviderApiError).retryable).toBe(false);
    expect((error as Error).message).not.toContain(TOKENS.github);
  });

  test('GIVEN a provider API that does not answer WHEN a build is reported THEN it fails as retryable, not hanging', async () => {
    const routes = reporterRoutes({ github: 'http://127.0.0.1:9', gitlab: '', backlog: '' });
    const d = { ...deps(), routes: new Map(routes.map((r) => [r.projectName, r])) };
    const error = await reportBuildEvent(
      buildEvent('pushline-hello-world', 'SUCCEEDED', GITHUB_ENV),
      d,
    ).catch((err: unknown) => err);

    expect((error as ProviderApiError).retryable).toBe(true);
  });
});

describe('failed builds reach the platform team', () => {
  function notices(): {
    notify: NonNullable<ReporterDeps['notify']>;
    sent: { subject: string; message: string }[];
  } {
    const sent: { subject: string; message: string }[] = [];
    return { sent, notify: async (notice) => void sent.push(notice) };
  }

  test('GIVEN a failed build WHEN reported THEN one notice names the repository, the commit and the log link, in the Chatbot custom format', async () => {
    const { notify, sent } = notices();
    await reportBuildEvent(buildEvent('pushline-hello-world', 'FAILED', GITHUB_ENV), { ...deps(), notify });

    expect(sent).toHaveLength(1);
    expect(sent[0]?.subject).toBe('pushline: build of hello-world failed');
    const message = JSON.parse(sent[0]?.message ?? '{}');
    expect(message).toMatchObject({
      version: '1.0',
      source: 'custom',
      content: { textType: 'client-markdown' },
    });
    expect(message.content.description).toContain('Repository: Codertocat/Hello-World (github)');
    expect(message.content.description).toContain(`Commit: ${GITHUB_SHA} (master)`);
    expect(message.content.description).toContain(`Log: ${BUILD_PAGE}`);
  });

  test.each(['SUCCEEDED', 'STOPPED'] as const)(
    'GIVEN a build that %s WHEN reported THEN nobody is notified',
    async (status) => {
      const { notify, sent } = notices();
      await reportBuildEvent(buildEvent('pushline-hello-world', status, GITHUB_ENV), { ...deps(), notify });

      expect(sent).toEqual([]);
    },
  );

  test('GIVEN a repository with report: false WHEN its build fails THEN the team is notified and the commit gets no status', async () => {
    const { notify, sent } = notices();
    const d = deps();
    const routes = new Map([...d.routes].map(([k, r]) => [k, { ...r, report: false }]));
    await reportBuildEvent(buildEvent('pushline-hello-world', 'TIMED_OUT', GITHUB_ENV), {
      ...d,
      routes,
      notify,
    });

    expect(sent.map((n) => n.subject)).toEqual(['pushline: build of hello-world timed out']);
    expect(api.reports).toEqual([]);
  });
});

describe('deployments: pushline/<name>/deploy', () => {
  const image = `123456789012.dkr.ecr.us-east-1.amazonaws.com/hello-world:${GITHUB_SHA}`;
  const deploying = (status: string, imageUri: string | undefined = image) => ({
    ...deps(),
    lookupDeployment: async () => ({ status, ...(imageUri ? { image: imageUri } : {}) }),
  });

  test('GIVEN a deployment of a GitHub repository image WHEN it starts and then succeeds THEN the commit gets pending, then success on the deploy context', async () => {
    await reportDeploymentEvent(deploymentEvent('START'), deploying('InProgress'));
    await reportDeploymentEvent(deploymentEvent('SUCCESS'), deploying('Succeeded'));

    expect(api.reports.map((r) => [r.sha, r.state, r.context, r.description, r.targetUrl])).toEqual([
      [
        GITHUB_SHA,
        'pending',
        'pushline/hello-world/deploy',
        '123456789012.dkr.ecr.us-east-1.amazonaws.com/hello-world:6113728f27ae is being deployed',
        'https://us-east-1.console.aws.amazon.com/codesuite/codedeploy/deployments/d-123456789?region=us-east-1',
      ],
      [
        GITHUB_SHA,
        'success',
        'pushline/hello-world/deploy',
        '123456789012.dkr.ecr.us-east-1.amazonaws.com/hello-world:6113728f27ae is live',
        expect.any(String),
      ],
    ]);
  });

  test('GIVEN a late START of a deployment that already rolled back WHEN it arrives THEN the commit gets failure, never pending', async () => {
    await reportDeploymentEvent(deploymentEvent('START'), deploying('Failed'));

    expect(api.reports.map((r) => [r.state, r.description])).toEqual([
      [
        'failure',
        '123456789012.dkr.ecr.us-east-1.amazonaws.com/hello-world:6113728f27ae failed to deploy and was rolled back',
      ],
    ]);
  });

  test('GIVEN a deployment of a Backlog repository image WHEN it starts and then goes live THEN each open pull request of the branch it was pushed on gets one comment, when it is live', async () => {
    const backlogImage = `123456789012.dkr.ecr.us-east-1.amazonaws.com/shop-api:${BACKLOG_SHA}`;
    const asked: [string, string][] = [];
    const backlogDeploy = (status: string) => ({
      ...deps(),
      lookupDeployment: async () => ({ status, image: backlogImage }),
      findPushedRef: async (projectName: string, commit: string) => {
        asked.push([projectName, commit]);
        return 'refs/heads/main';
      },
    });

    await reportDeploymentEvent(deploymentEvent('START'), backlogDeploy('InProgress'));
    expect(api.reports).toEqual([]);
    await reportDeploymentEvent(deploymentEvent('SUCCESS'), backlogDeploy('Succeeded'));

    expect(asked).toContainEqual(['pushline-shop-api', BACKLOG_SHA]);
    expect(api.reports.map((r) => [r.pullRequest, r.content?.split('\n')[0]])).toEqual([
      [11, `✅ pushline/shop-api/deploy: ${BACKLOG_SHA.slice(0, 12)} is live`],
      [14, `✅ pushline/shop-api/deploy: ${BACKLOG_SHA.slice(0, 12)} is live`],
    ]);
  });

  test('GIVEN a deployment of an image pushline did not build WHEN it succeeds THEN nothing is reported', async () => {
    const outcome = await reportDeploymentEvent(
      deploymentEvent('SUCCESS'),
      deploying('Succeeded', 'public.ecr.aws/nginx/nginx:latest'),
    );

    expect(outcome.kind).toBe('ignored');
    expect(api.reports).toEqual([]);
  });
});
