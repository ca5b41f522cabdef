import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildStatus } from '../../lambda/reporter/events';
import type { ReporterRoute } from '../../lambda/reporter/routes';

export const GITHUB_SHA = '6113728f27ae82c7b1a177c8d03f9e96e0adf246';
export const GITLAB_SHA = 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7';
export const BACKLOG_SHA = '7c3e1b5a9d2f4c6e8a0b1d3f5e7a9c2b4d6f8e01';
export const TOKENS = {
  github: 'ghp-test-token',
  gitlab: 'glpat-test-token',
  backlog: 'backlog-api-key',
  bitbucket: 'bitbucket-access-token',
  gitea: 'gitea-test-token',
};

/** The three sample repositories, with API base URLs on the local stand-in. */
export function reporterRoutes(apiUrls: {
  github: string;
  gitlab: string;
  backlog: string;
  bitbucket?: string;
  gitea?: string;
}): ReporterRoute[] {
  return [
    {
      name: 'hello-world',
      projectName: 'pushline-hello-world',
      provider: 'github',
      repository: 'Codertocat/Hello-World',
      apiUrl: apiUrls.github,
      report: true,
    },
    {
      name: 'diaspora',
      projectName: 'pushline-diaspora',
      provider: 'gitlab',
      repository: 'mike/diaspora',
      apiUrl: apiUrls.gitlab,
      report: true,
    },
    {
      name: 'shop-api',
      projectName: 'pushline-shop-api',
      provider: 'backlog',
      repository: 'SHOP/api',
      apiUrl: apiUrls.backlog,
      report: true,
    },
    ...(apiUrls.bitbucket && apiUrls.gitea
      ? [
          {
            name: 'bitbucket-app',
            projectName: 'pushline-bitbucket-app',
            provider: 'bitbucket' as const,
            repository: 'team_name/repo_name',
            apiUrl: apiUrls.bitbucket,
            report: true,
          },
          {
            name: 'gitea-app',
            projectName: 'pushline-gitea-app',
            provider: 'gitea' as const,
            repository: 'example/example',
            apiUrl: apiUrls.gitea,
            report: true,
          },
        ]
      : []),
  ];
}

/** AWS's published sample "CodeBuild Build State Change" event (see test/fixtures/SOURCES.md). */
export function sampleBuildEvent(): Record<string, unknown> & { detail: Record<string, unknown> } {
  return JSON.parse(
    readFileSync(join(__dirname, '..', 'fixtures', 'codebuild', 'build-state-change.json'), 'utf8'),
  );
}

/**
 * The sample event as CodeBuild sends it for a build pushline started: another project and build
 * ID, another status, and the environment the project and the webhook's StartBuild set.
 */
export function buildEvent(
  projectName: string,
  status: BuildStatus,
  environment: Record<string, string>,
  uuid = '8745a7a9-c340-456a-9166-edf953571bEX',
): Record<string, unknown> {
  const event = sampleBuildEvent();
  const arn = `arn:aws:codebuild:us-west-2:123456789012:build/${projectName}:${uuid}`;
  const info = event.detail['additional-information'] as { environment: Record<string, unknown> };
  info.environment['environment-variables'] = Object.entries(environment).map(([name, value]) => ({
    name,
    value,
    type: 'PLAINTEXT',
  }));
  return {
    ...event,
    resources: [arn],
    detail: { ...event.detail, 'build-status': status, 'project-name': projectName, 'build-id': arn },
  };
}

/** What the webhook's StartBuild and the project put into a build's environment. */
export function pushEnvironment(
  repositoryName: string,
  commit: string,
  ref: string,
  provider: string,
  repository: string,
): Record<string, string> {
  return {
    IMAGE_REPOSITORY_URI: `123456789012.dkr.ecr.us-west-2.amazonaws.com/${repositoryName}`,
    COMMIT_SHA: commit,
    GIT_REF: ref,
    SOURCE_PROVIDER: provider,
    SOURCE_REPOSITORY: repository,
    CLONE_URL: 'git@example.com:x.git',
    DELIVERY_ID: 'delivery-1',
  };
}

/** The environments of the three sample repositories' builds. */
export const GITHUB_ENV = pushEnvironment(
  'hello-world',
  GITHUB_SHA,
  'refs/heads/master',
  'github',
  'Codertocat/Hello-World',
);
export const GITLAB_ENV = pushEnvironment(
  'diaspora',
  GITLAB_SHA,
  'refs/heads/master',
  'gitlab',
  'mike/diaspora',
);
export const BACKLOG_ENV = pushEnvironment('shop-api', BACKLOG_SHA, 'refs/heads/main', 'backlog', 'SHOP/api');

/** AWS's sample "CodeDeploy Deployment State-change Notification", with another state. */
export function deploymentEvent(state: string): Record<string, unknown> {
  const event = JSON.parse(
    readFileSync(join(__dirname, '..', 'fixtures', 'codedeploy', 'deployment-state-change.json'), 'utf8'),
  ) as { detail: Record<string, unknown> };
  return { ...event, detail: { ...event.detail, state } };
}
