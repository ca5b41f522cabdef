import * as z from 'zod/mini';
import {
  type GithubHooksApi,
  type HookDelivery,
  HookDeliverySchema,
  RepositoryHookSchema,
} from './reconcile';

/** Per GitHub call: the schedule runs again anyway. */
const GITHUB_TIMEOUT_MS = 10_000;

/** GitHub's REST API with `fetch`, at the configured `apiUrl` (GitHub Enterprise Server: `https://HOST/api/v3`). */
export function githubHooksApi(apiUrl: string, token: string): GithubHooksApi {
  const base = apiUrl.replace(/\/+$/, '');
  const call = async (method: 'GET' | 'POST', url: string) => {
    const res = await fetch(url, {
      method,
      headers: {
        accept: 'application/vnd.github+json',
        authorization: `Bearer ${token}`,
        'x-github-api-version': '2022-11-28',
        'user-agent': 'pushline-github-redelivery',
      },
      signal: AbortSignal.timeout(GITHUB_TIMEOUT_MS),
    });
    if (!res.ok) throw new Error(`${method} ${new URL(url).pathname} answered ${res.status}`);
    return res;
  };
  const repo = (repository: string) =>
    `${base}/repos/${repository.split('/').map(encodeURIComponent).join('/')}`;
  return {
    async listHooks(repository) {
      const res = await call('GET', `${repo(repository)}/hooks?per_page=100`);
      return z.array(RepositoryHookSchema).parse(await res.json());
    },
    async listDeliveries(repository, hookId, since) {
      const deliveries: HookDelivery[] = [];
      let url: string | undefined = `${repo(repository)}/hooks/${hookId}/deliveries?per_page=100`;
      while (url) {
        const res = await call('GET', url);
        const page = z.array(HookDeliverySchema).parse(await res.json());
        deliveries.push(...page);
        const oldest = page.at(-1);
        url =
          oldest && Date.parse(oldest.delivered_at) >= since ? nextPage(res.headers.get('link')) : undefined;
      }
      return deliveries;
    },
    async redeliver(repository, hookId, deliveryId) {
      await call('POST', `${repo(repository)}/hooks/${hookId}/deliveries/${deliveryId}/attempts`);
    },
  };
}

/** The `rel="next"` URL of a `Link` header (GitHub paginates deliveries with a cursor). */
function nextPage(link: string | null): string | undefined {
  return link?.match(/<([^>]+)>;\s*rel="next"/)?.[1];
}
