import { reportToBacklog } from './adapters/backlog';
import { reportToBitbucket } from './adapters/bitbucket';
import { reportToGitea } from './adapters/gitea';
import { reportToGithub } from './adapters/github';
import { reportToGitlab } from './adapters/gitlab';
import { type BuildResult, refName, shortSha, stateOf } from './build-result';
import {
  BuildStateChangeSchema,
  type BuildStatus,
  buildIdOf,
  DeploymentStateChangeSchema,
  environmentMap,
} from './events';
import type { ReporterRoute, ReportProvider } from './routes';

/**
 * The reporter's logic, with no AWS in it: a CodeBuild state change in, one report per build state
 * out to the repository's Git host.
 *
 * Ordering: EventBridge does not promise order and Lambda retries may deliver an `IN_PROGRESS`
 * after the build has ended, so a `pending` is never sent on the event's word alone. The build's
 * own record (BatchGetBuilds) is read first — a build that has already ended is reported with its
 * final state instead — and read again after the `pending` went out: when the build ended in
 * between, its final state is sent once more, after the `pending`. Final states come only from the
 * end of a build and are never overwritten by anything but a repeat of themselves. Nothing is stored.
 */

/** What BatchGetBuilds says about a build. */
export interface BuildRecord {
  readonly buildStatus: BuildStatus;
  readonly environment: Readonly<Record<string, string>>;
}

/** What GetDeployment (and the task definition it deploys) says about a deployment. */
export interface DeploymentRecord {
  /** GetDeployment `status`: Created, Queued, InProgress, Baking, Ready, Succeeded, Failed, Stopped. */
  readonly status: string;
  /** The image the new task set runs, `<repository uri>:<full sha>` as the build wrote it. */
  readonly image?: string;
}

export interface ReporterDeps {
  readonly routes: ReadonlyMap<string, ReporterRoute>;
  /** BatchGetBuilds for one build ID; undefined when CodeBuild does not know it. */
  readonly lookupBuild: (buildId: string) => Promise<BuildRecord | undefined>;
  /** The provider's token, or undefined when the operator has not filled it in. */
  readonly tokenFor: (provider: ReportProvider) => Promise<string | undefined>;
  /** GetDeployment plus the image of the task definition it deploys; absent: deployments are not reported. */
  readonly lookupDeployment?: (deploymentId: string) => Promise<DeploymentRecord | undefined>;
  /**
   * The ref a commit was pushed on, from the newest build of the project that built it (its
   * `GIT_REF`); undefined when no such build is found. A deployment knows only its image, and
   * Backlog comments on the pull requests of a branch.
   */
  readonly findPushedRef?: (projectName: string, commit: string) => Promise<string | undefined>;
  /** Tells the platform team about a failed build (the notification topic); absent: nobody is told. */
  readonly notify?: (notice: FailedBuildNotice) => Promise<void>;
}

/** A failed build for the platform team, in AWS Chatbot's custom notification format. */
export interface FailedBuildNotice {
  /** The email subject. */
  readonly subject: string;
  /** The message: https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html */
  readonly message: string;
}

export type ReportOutcome =
  | { readonly kind: 'ignored'; readonly reason: string }
  | { readonly kind: 'reported'; readonly reports: readonly SentReport[] };

export interface SentReport {
  readonly provider: ReportProvider;
  readonly repository: string;
  readonly commit: string;
  readonly state: BuildResult['state'];
  /** `skipped` when the provider has no token. */
  readonly delivery: 'sent' | 'skipped';
}

/** Handles one event from the reporter's rule. Throws only when a retry may help (provider API down). */
export async function reportBuildEvent(event: unknown, deps: ReporterDeps): Promise<ReportOutcome> {
  const parsed = BuildStateChangeSchema.safeParse(event);
  if (!parsed.success)
    return ignored(`not a CodeBuild Build State Change: ${parsed.error.issues[0]?.message}`);
  const { detail, account, region } = parsed.data;
  const route = deps.routes.get(detail['project-name']);
  if (!route) return ignored(`project ${detail['project-name']} is not reported`);
  const buildId = buildIdOf(detail['build-id']);
  const place = { account, region, buildId };

  let status = detail['build-status'];
  let environment = environmentMap(detail['additional-information']?.environment?.['environment-variables']);
  if (status === 'IN_PROGRESS' || !environment.COMMIT_SHA) {
    const record = await deps.lookupBuild(buildId);
    if (record) {
      status = status === 'IN_PROGRESS' ? record.buildStatus : status;
      environment = { ...record.environment, ...environment };
    }
  }
  const first = buildResult(route, status, environment, place);
  if (typeof first === 'string') return ignored(first);
  // Before the Git host: a host that is down delays its status, never the platform team's notice.
  if (deps.notify && NOTIFIED_STATUSES.has(first.buildStatus)) await deps.notify(failedBuildNotice(first));
  const reports = first.route.report ? [await send(first, deps)] : [];
  if (first.state === 'pending' && first.route.report) {
    const now = await deps.lookupBuild(buildId);
    if (now && now.buildStatus !== 'IN_PROGRESS') {
      const final = buildResult(route, now.buildStatus, environment, place);
      if (typeof final !== 'string') reports.push(await send(final, deps));
    }
  }
  return { kind: 'reported', reports };
}

const DEPLOYMENT_STATUS: Record<string, BuildStatus> = {
  SUCCESS: 'SUCCEEDED',
  Succeeded: 'SUCCEEDED',
  FAILURE: 'FAILED',
  Failed: 'FAILED',
  STOP: 'STOPPED',
  Stopped: 'STOPPED',
};

/**
 * A CodeDeploy deployment state change: the status `pushline/<name>/deploy` on the deployed
 * commit. The event names only the application, group and deployment; the commit is the tag of
 * the image in the task definition the deployment rolls out (the build wrote `<uri>:<full sha>` to
 * imageDetail.json), and the repository is the image's repository. As for builds, a `pending` is
 * only sent while GetDeployment still says the deployment runs.
 */
export async function reportDeploymentEvent(event: unknown, deps: ReporterDeps): Promise<ReportOutcome> {
  const parsed = DeploymentStateChangeSchema.safeParse(event);
  if (!parsed.success) return ignored(`not a CodeDeploy Deployment State-change Notification`);
  const { detail, region } = parsed.data;
  if (detail.state === 'READY') return ignored('READY: traffic not yet rerouted');
  const record = await deps.lookupDeployment?.(detail.deploymentId);
  const match = record?.image ? /^[^/]+\/(.+):([0-9a-f]{40})$/.exec(record.image) : null;
  const route = match ? [...deps.routes.values()].find((r) => r.name === match[1]) : undefined;
  if (!record || !match || !route?.report)
    return ignored(`deployment ${detail.deploymentId} is not of a reported pushline image`);
  const status = DEPLOYMENT_STATUS[record.status] ?? DEPLOYMENT_STATUS[detail.state] ?? 'IN_PROGRESS';
  const commit = match[2] ?? '';
  // Only Backlog needs the branch (its pull requests); GitHub and GitLab put the status on the commit.
  const ref =
    route.provider === 'backlog' ? ((await deps.findPushedRef?.(route.projectName, commit)) ?? '') : '';
  const result: BuildResult = {
    route,
    buildId: detail.deploymentId,
    buildStatus: status,
    state: stateOf(status),
    commit,
    ref,
    image: `${record.image?.slice(0, record.image.length - 40)}${shortSha(commit)}`,
    logUrl: `https://${region}.console.aws.amazon.com/codesuite/codedeploy/deployments/${encodeURIComponent(detail.deploymentId)}?region=${region}`,
    stage: 'deploy',
  };
  return { kind: 'reported', reports: [await send(result, deps)] };
}

/** The result to report, or why there is none (a build pushline did not start). */
export function buildResult(
  route: ReporterRoute,
  status: BuildStatus,
  environment: Readonly<Record<string, string>>,
  place: { readonly account: string; readonly region: string; readonly buildId: string },
): BuildResult | string {
  const commit = environment.COMMIT_SHA;
  const ref = environment.GIT_REF;
  if (!commit || !/^[0-9a-f]{40}$/.test(commit) || !ref)
    return `build ${place.buildId} has no COMMIT_SHA/GIT_REF: not started by the webhook`;
  const repositoryUri =
    environment.IMAGE_REPOSITORY_URI ??
    `${place.account}.dkr.ecr.${place.region}.amazonaws.com/${route.name}`;
  return {
    route,
    buildId: place.buildId,
    buildStatus: status,
    state: stateOf(status),
    commit,
    ref,
    image: `${repositoryUri}:${shortSha(commit)}`,
    logUrl: consoleBuildUrl(place.region, place.buildId),
  };
}

/** Builds that need a person: failed, faulted or timed out (a stopped build was stopped by one). */
const NOTIFIED_STATUSES: ReadonlySet<BuildStatus> = new Set(['FAILED', 'FAULT', 'TIMED_OUT']);

export function failedBuildNotice(result: BuildResult): FailedBuildNotice {
  const { route } = result;
  const outcome = result.buildStatus === 'TIMED_OUT' ? 'timed out' : 'failed';
  return {
    subject: `pushline: build of ${route.name} ${outcome}`.slice(0, 99),
    message: JSON.stringify({
      version: '1.0',
      source: 'custom',
      id: result.buildId,
      content: {
        textType: 'client-markdown',
        title: `:x: pushline: build of ${route.name} ${outcome}`,
        description: [
          `Repository: ${route.repository} (${route.provider})`,
          `Commit: ${result.commit} (${refName(result.ref)})`,
          `Build: ${result.buildId} ${result.buildStatus}`,
          `Log: ${result.logUrl}`,
        ].join('\n'),
      },
      metadata: { eventType: 'BuildFailed', summary: `${route.name} ${shortSha(result.commit)} ${outcome}` },
    }),
  };
}

/** The build's page in the CodeBuild console, where its log is. */
export function consoleBuildUrl(region: string, buildId: string): string {
  const project = buildId.split(':')[0] ?? buildId;
  return `https://${region}.console.aws.amazon.com/codesuite/codebuild/projects/${encodeURIComponent(project)}/build/${encodeURIComponent(buildId)}/?region=${region}`;
}

const REPORTERS: Record<ReportProvider, (result: BuildResult, token: string) => Promise<unknown>> = {
  github: reportToGithub,
  gitlab: reportToGitlab,
  backlog: reportToBacklog,
  bitbucket: reportToBitbucket,
  gitea: reportToGitea,
};

async function send(result: BuildResult, deps: ReporterDeps): Promise<SentReport> {
  const { provider, repository } = result.route;
  const sent = { provider, repository, commit: result.commit, state: result.state } as const;
  const token = await deps.tokenFor(provider);
  if (!token) return { ...sent, delivery: 'skipped' };
  await REPORTERS[provider](result, token);
  return { ...sent, delivery: 'sent' };
}

function ignored(reason: string): ReportOutcome {
  return { kind: 'ignored', reason };
}
