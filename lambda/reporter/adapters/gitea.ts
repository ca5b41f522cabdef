import type { BuildResult } from '../build-result';
import { callApi } from '../provider-api';
import { commitStatus } from './github';

/**
 * Gitea and Forgejo: a commit status on the pushed SHA. Gitea API, "Create a commit status"
 * (`POST /api/v1/repos/{owner}/{repo}/statuses/{sha}`, CreateStatusOption `state` pending |
 * success | error | failure | warning, `target_url`, `description`, `context`; Forgejo serves the
 * same API). The token goes in `Authorization: token <token>`.
 */
export async function reportToGitea(result: BuildResult, token: string): Promise<void> {
  const { route } = result;
  await callApi('gitea', {
    method: 'POST',
    url: `${route.apiUrl}/repos/${route.repository.split('/').map(encodeURIComponent).join('/')}/statuses/${result.commit}`,
    headers: { Authorization: `token ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(commitStatus(result)),
  });
}
