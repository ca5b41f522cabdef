import type { BuildStatus } from './events';
import type { ReporterRoute } from './routes';

/** The result of a build in the words of GitHub's commit statuses; the adapters map them further. */
export type BuildState = 'pending' | 'success' | 'failure' | 'error';

/** Everything a provider adapter needs to report one build of one commit. */
export interface BuildResult {
  readonly route: ReporterRoute;
  /** `project:uuid` */
  readonly buildId: string;
  readonly buildStatus: BuildStatus;
  readonly state: BuildState;
  /** The full 40-hex SHA the webhook started the build with. */
  readonly commit: string;
  /** The pushed ref, `refs/heads/main` or `refs/tags/v1`. */
  readonly ref: string;
  /** `<repository uri>:<short sha>`: the image people pull (also tagged with the full SHA). */
  readonly image: string;
  /** The build's page in the CodeBuild console (the deployment's in the CodeDeploy console). */
  readonly logUrl: string;
  /**
   * `deploy` for the rollout of the built image (status `pushline/<name>/deploy`); `buildStatus`
   * then stands for the deployment's state (IN_PROGRESS running, SUCCEEDED live, FAILED rolled
   * back, STOPPED stopped).
   * @default 'build'
   */
  readonly stage?: 'build' | 'deploy';
}

/** The image tag for people: the first 12 characters, as the buildspec tags it (`short_sha`). */
export function shortSha(commit: string): string {
  return commit.slice(0, 12);
}

/** The branch or tag name of a ref (`refs/heads/feature/x` → `feature/x`). */
export function refName(ref: string): string {
  return ref.replace(/^refs\/(heads|tags)\//, '');
}

const STATE_OF: Record<BuildStatus, BuildState> = {
  IN_PROGRESS: 'pending',
  SUCCEEDED: 'success',
  FAILED: 'failure',
  FAULT: 'failure',
  TIMED_OUT: 'error',
  STOPPED: 'error',
};

export function stateOf(status: BuildStatus): BuildState {
  return STATE_OF[status];
}

const OUTCOME_OF: Record<BuildStatus, string> = {
  IN_PROGRESS: 'is building',
  SUCCEEDED: 'built',
  FAILED: 'failed',
  FAULT: 'failed (CodeBuild fault)',
  TIMED_OUT: 'timed out',
  STOPPED: 'was stopped',
};

const DEPLOY_OUTCOME_OF: Record<BuildStatus, string> = {
  IN_PROGRESS: 'is being deployed',
  SUCCEEDED: 'is live',
  FAILED: 'failed to deploy and was rolled back',
  FAULT: 'failed to deploy and was rolled back',
  TIMED_OUT: 'failed to deploy and was rolled back',
  STOPPED: 'deployment was stopped',
};

function outcome(result: BuildResult): string {
  return (result.stage === 'deploy' ? DEPLOY_OUTCOME_OF : OUTCOME_OF)[result.buildStatus];
}

/** GitHub limits a status description to 140 characters. */
export const DESCRIPTION_LIMIT = 140;

/** One line for a commit status: the image on success, what happened otherwise. */
export function statusDescription(result: BuildResult): string {
  const text =
    result.buildStatus === 'SUCCEEDED' && result.stage !== 'deploy'
      ? result.image
      : `${result.stage === 'deploy' ? result.image : shortSha(result.commit)} ${outcome(result)}`;
  return text.length <= DESCRIPTION_LIMIT ? text : `…${text.slice(text.length - DESCRIPTION_LIMIT + 1)}`;
}

/** A comment for people reading a pull request (Backlog). */
export function resultComment(result: BuildResult): string {
  const head = `${result.buildStatus === 'SUCCEEDED' ? '✅' : '❌'} ${statusContext(result)}: ${shortSha(result.commit)} ${outcome(result)}`;
  return [
    head,
    `Commit: ${result.commit} (${refName(result.ref)})`,
    ...(result.buildStatus === 'SUCCEEDED' ? [`Image: ${result.image}`] : []),
    `Build log: ${result.logUrl}`,
  ].join('\n');
}

/** The commit status context (GitHub) or name (GitLab): `pushline/<name>`, `pushline/<name>/deploy`. */
export function statusContext(result: Pick<BuildResult, 'route' | 'stage'>): string {
  return `pushline/${result.route.name}${result.stage === 'deploy' ? '/deploy' : ''}`;
}
