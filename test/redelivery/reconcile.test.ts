import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { githubHooksApi } from '../../lambda/redelivery/github-hooks-api';
import { decideRedeliveries, type HookDelivery, reconcile } from '../../lambda/redelivery/reconcile';
import { ROOT } from '../support/app';

/** GitHub's own example: one delivery and its redelivery, both answered 200. */
const EXAMPLE = JSON.parse(
  readFileSync(join(ROOT, 'test', 'fixtures', 'github', 'hook-deliveries.json'), 'utf8'),
) as HookDelivery[];
const NOW = Date.parse('2019-06-04T02:00:00Z');
const POLICY = { lookbackMs: 6 * 60 * 60 * 1000, maxAttempts: 3 };
const WEBHOOK_URL = 'https://abc123.execute-api.us-east-1.amazonaws.com/v1/webhooks/github';

/** An attempt of a push delivery, from GitHub's example, with the fields a failure changes. */
function attempt(id: number, guid: string, statusCode: number, minutesAgo: number, redelivery = false) {
  const [example] = EXAMPLE as [HookDelivery];
  return {
    ...example,
    id,
    guid,
    event: 'push',
    status_code: statusCode,
    redelivery,
    delivered_at: new Date(NOW - minutesAgo * 60_000).toISOString(),
  };
}

describe('decideRedeliveries', () => {
  test('GIVEN GitHub’s example (a delivery and its redelivery, both OK) THEN nothing is redelivered', () => {
    const pushes = EXAMPLE.map((d) => ({ ...d, event: 'push' }));
    expect(decideRedeliveries(pushes, NOW, POLICY)).toEqual([]);
  });

  test('GIVEN a push answered 503 and one that timed out THEN both are redelivered from their latest attempt', () => {
    const decisions = decideRedeliveries(
      [
        attempt(1, 'push-503', 503, 30),
        attempt(2, 'push-timeout', 0, 20),
        attempt(3, 'push-503', 503, 10, true),
      ],
      NOW,
      POLICY,
    );
    expect(decisions).toEqual([
      { guid: 'push-503', deliveryId: 3, attempts: 2, action: 'redeliver' },
      { guid: 'push-timeout', deliveryId: 2, attempts: 1, action: 'redeliver' },
    ]);
  });

  test('GIVEN a push that failed and then got through on redelivery THEN it is left alone', () => {
    expect(
      decideRedeliveries([attempt(1, 'healed', 503, 30), attempt(2, 'healed', 202, 10, true)], NOW, POLICY),
    ).toEqual([]);
  });

  test('GIVEN a 401, a failure older than the lookback, and a failed non-push event THEN none is redelivered', () => {
    const ping = { ...attempt(3, 'ping', 503, 5), event: 'ping' };
    expect(
      decideRedeliveries([attempt(1, 'refused', 401, 5), attempt(2, 'old', 503, 7 * 60), ping], NOW, POLICY),
    ).toEqual([]);
  });

  test('GIVEN a push that failed maxAttempts times THEN it is given up on, not redelivered again', () => {
    const failures = [1, 2, 3].map((i) => attempt(i, 'hopeless', 503, 40 - i * 10, i > 1));
    expect(decideRedeliveries(failures, NOW, POLICY)).toEqual([
      { guid: 'hopeless', deliveryId: 3, attempts: 3, action: 'give-up' },
    ]);
  });
});

describe('reconcile against a GitHub API on this machine', () => {
  let server: Server;
  let apiUrl: string;
  const requests: { method: string; path: string; authorization?: string }[] = [];
  const recent = Date.now();
  const at = (minutesAgo: number) => new Date(recent - minutesAgo * 60_000).toISOString();

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      requests.push({
        method: req.method ?? '',
        path: url.pathname + url.search,
        authorization: req.headers.authorization,
      });
      const json = (body: unknown, headers: Record<string, string> = {}) =>
        res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
      if (url.pathname === '/repos/octo-org/shop-web/hooks')
        return json([
          { id: 7, config: { url: 'https://chat.example.com/hook' } },
          { id: 42, config: { url: WEBHOOK_URL } },
        ]);
      if (url.pathname === '/repos/octo-org/shop-web/hooks/42/deliveries' && !url.searchParams.has('cursor'))
        return json(
          [
            { ...attempt(11, 'fine', 202, 0), delivered_at: at(5) },
            { ...attempt(12, 'lost-push', 503, 0), delivered_at: at(10) },
          ],
          {
            link: `<${apiUrl}/repos/octo-org/shop-web/hooks/42/deliveries?per_page=100&cursor=v1_12>; rel="next"`,
          },
        );
      if (url.pathname === '/repos/octo-org/shop-web/hooks/42/deliveries')
        return json([{ ...attempt(13, 'slow-push', 0, 0), delivered_at: at(20) }]);
      if (req.method === 'POST' && url.pathname.endsWith('/attempts')) return res.writeHead(202).end('{}');
      if (url.pathname === '/repos/octo-org/private/hooks')
        return res.writeHead(404).end('{"message":"Not Found"}');
      res.writeHead(500).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('GIVEN two pages of deliveries of the hook to pushline, one push answered 503 and one timed out THEN exactly those two are redelivered, and a repository without access is reported without stopping the rest', async () => {
    const reports = await reconcile(
      githubHooksApi(apiUrl, 'ghp_example'),
      ['octo-org/private', 'octo-org/shop-web'],
      WEBHOOK_URL,
      recent,
      POLICY,
    );
    expect(reports).toEqual([
      {
        repository: 'octo-org/private',
        redelivered: [],
        gaveUp: [],
        error: 'GET /repos/octo-org/private/hooks answered 404',
      },
      { repository: 'octo-org/shop-web', hookId: 42, redelivered: ['lost-push', 'slow-push'], gaveUp: [] },
    ]);
    expect(requests.filter((r) => r.method === 'POST').map((r) => r.path)).toEqual([
      '/repos/octo-org/shop-web/hooks/42/deliveries/12/attempts',
      '/repos/octo-org/shop-web/hooks/42/deliveries/13/attempts',
    ]);
    expect(requests.every((r) => r.authorization === 'Bearer ghp_example')).toBe(true);
    expect(requests.some((r) => r.path.startsWith('/repos/octo-org/shop-web/hooks/7'))).toBe(false);
  });
});
