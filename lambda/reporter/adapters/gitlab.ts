import {
  type BuildResult,
  type BuildState,
  refName,
  statusContext,
  statusDescription,
} from '../build-result';
import type { BuildStatus } from '../events';
import { callApi, ProviderApiError } from '../provider-api';

/**
 * GitLab (gitlab.com or self-managed): a commit status on the pushed SHA.
 * "Set the pipeline status of a commit", https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit
 * (`state` pending | running | success | failed | canceled, `ref`, `name`, `target_url`, `description`).
 */
export async function reportToGitlab(result: BuildResult, token: string): Promise<void> {
  const { route } = result;
  try {
    await callApi('gitlab', {
      method: 'POST',
      url: `${route.apiUrl}/projects/${encodeURIComponent(route.repository)}/statuses/${result.commit}`,
      headers: { 'PRIVATE-TOKEN': token, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        state: gitlabState(result.state, result.buildStatus),
        ...(result.ref ? { ref: refName(result.ref) } : {}),
        name: statusContext(result),
        target_url: result.logUrl,
        description: statusDescription(result),
      }),
    });
  } catch (err) {
    // GitLab refuses a status equal to the current one ("Cannot transition status via :run from
    // :running"): a repeated report, already shown, not a failure.
    if (
      err instanceof ProviderApiError &&
      err.status === 400 &&
      err.message.includes('Cannot transition status')
    )
      return;
    throw err;
  }
}

export function gitlabState(state: BuildState, status: BuildStatus): string {
  switch (state) {
    case 'pending':
      return 'running';
    case 'success':
      return 'success';
    case 'failure':
      return 'failed';
    case 'error':
      return status === 'STOPPED' ? 'canceled' : 'failed';
  }
}
