import { type BuildResult, statusContext, statusDescription } from '../build-result';
import { callApi } from '../provider-api';

/**
 * GitHub (github.com or GitHub Enterprise Server): a commit status on the pushed SHA.
 * "Create a commit status", https://docs.github.com/en/rest/commits/statuses#create-a-commit-status
 * (`state` pending | success | failure | error, `target_url`, `description`, `context`).
 */
export async function reportToGithub(result: BuildResult, token: string): Promise<void> {
  const { route } = result;
  await callApi('github', {
    method: 'POST',
    url: `${route.apiUrl}/repos/${route.repository.split('/').map(encodeURIComponent).join('/')}/statuses/${result.commit}`,
    headers: {
      Accept: 'application/vnd.github+json',
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/json',
      'User-Agent': 'pushline',
      'X-GitHub-Api-Version': '2022-11-28',
    },
    body: JSON.stringify(commitStatus(result)),
  });
}

/** The body of a GitHub commit status, which Gitea and Forgejo take in the same shape. */
export function commitStatus(result: BuildResult): Record<string, string> {
  return {
    state: result.state,
    target_url: result.logUrl,
    description: statusDescription(result),
    context: statusContext(result),
  };
}
