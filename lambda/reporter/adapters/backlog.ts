import { z } from 'zod';
import { type BuildResult, refName, resultComment } from '../build-result';
import { callApi, ProviderApiError } from '../provider-api';

/**
 * Backlog has no commit status: a comment on every open pull request whose source branch is the
 * pushed branch, once the build has ended.
 * "Get Pull Request List", https://developer.nulab.com/docs/backlog/api/2/get-pull-request-list/
 * (`statusId[]=1` is Open; `branch` is the source branch) and "Add Pull Request Comment",
 * https://developer.nulab.com/docs/backlog/api/2/add-pull-request-comment/ (form field `content`).
 * Both authenticate with `apiKey` in the query.
 */

const OPEN = 1;

const PullRequestListSchema = z.array(z.object({ number: z.number(), branch: z.string() }));

/** Answers the pull request numbers commented on. */
export async function reportToBacklog(result: BuildResult, apiKey: string): Promise<number[]> {
  if (result.state === 'pending' || !result.ref.startsWith('refs/heads/')) return [];
  const [project, repo] = result.route.repository.split('/');
  const base = `${result.route.apiUrl}/api/v2/projects/${encodeURIComponent(project ?? '')}/git/repositories/${encodeURIComponent(repo ?? '')}/pullRequests`;
  const key = `apiKey=${encodeURIComponent(apiKey)}`;
  const list = await callApi('backlog', {
    method: 'GET',
    url: `${base}?${key}&statusId[]=${OPEN}&count=100`,
  });
  const parsed = PullRequestListSchema.safeParse(JSON.parse(list.body));
  if (!parsed.success)
    throw new ProviderApiError(
      'backlog',
      list.status,
      false,
      'backlog API: the pull request list is not a list',
    );
  const branch = refName(result.ref);
  const numbers = parsed.data.filter((pr) => pr.branch === branch).map((pr) => pr.number);
  for (const number of numbers) {
    await callApi('backlog', {
      method: 'POST',
      url: `${base}/${number}/comments?${key}`,
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ content: resultComment(result) }).toString(),
    });
  }
  return numbers;
}
