import {
  type BuildResult,
  type BuildState,
  refName,
  statusContext,
  statusDescription,
} from '../build-result';
import type { BuildStatus } from '../events';
import { callApi } from '../provider-api';

/**
 * Bitbucket Cloud: a build status on the pushed commit, keyed by the status context so that a later
 * state of the same build replaces the earlier one. "Create a build status for a commit",
 * https://developer.atlassian.com/cloud/bitbucket/rest/api-group-commit-statuses/
 * (`POST /2.0/repositories/{workspace}/{repo_slug}/commit/{commit}/statuses/build`, `key`, `state`
 * INPROGRESS | SUCCESSFUL | FAILED | STOPPED, `name`, `url`, `description`, `refname`). Only the
 * account that created a status may overwrite it ("Change notice - Updating commit status
 * permissions"): one token for every report.
 */
export async function reportToBitbucket(result: BuildResult, token: string): Promise<void> {
  const { route } = result;
  const context = statusContext(result);
  await callApi('bitbucket', {
    method: 'POST',
    url: `${route.apiUrl}/repositories/${route.repository.split('/').map(encodeURIComponent).join('/')}/commit/${result.commit}/statuses/build`,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({
      key: context,
      name: context,
      state: bitbucketState(result.state, result.buildStatus),
      url: result.logUrl,
      description: statusDescription(result),
      ...(result.ref.startsWith('refs/heads/') ? { refname: refName(result.ref) } : {}),
    }),
  });
}

export function bitbucketState(state: BuildState, status: BuildStatus): string {
  switch (state) {
    case 'pending':
      return 'INPROGRESS';
    case 'success':
      return 'SUCCESSFUL';
    case 'failure':
      return 'FAILED';
    case 'error':
      return status === 'STOPPED' ? 'STOPPED' : 'FAILED';
  }
}
