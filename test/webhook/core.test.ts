import { compileRoutes } from '../../lambda/webhook/compile-routes';
import { buildJob, receiveWebhook, startOrQueue, type WebhookDependencies } from '../../lambda/webhook/core';
import type { PushEvent } from '../../lambda/webhook/push-event';
import { createRouter, parseRoutes, type WebhookRoute } from '../../lambda/webhook/routes';
import { gitlabDelivery, SECRET, TEST_ROUTES_JSON } from './support';

/** The pure core: routing and build requests, with no AWS at all. */

const ROUTE: WebhookRoute = {
  name: 'batch',
  projectName: 'pushline-batch',
  provider: 'gitlab',
  host: 'gitlab.com',
  repository: 'example-group/batch',
  cloneUrl: 'git@gitlab.com:example-group/batch.git',
  branches: ['main', 'release/*', 'hotfix/**'],
  tags: ['v*'],
};

function push(overrides: Partial<PushEvent> = {}): PushEvent {
  return {
    provider: 'gitlab',
    host: 'gitlab.com',
    repository: 'example-group/batch',
    ref: 'refs/heads/main',
    refType: 'branch',
    refName: 'main',
    before: 'a'.repeat(40),
    after: 'b'.repeat(40),
    commit: 'b'.repeat(40),
    deleted: false,
    deliveryId: 'delivery-1',
    ...overrides,
  };
}

describe('routing', () => {
  const decide = createRouter(compileRoutes([ROUTE]));

  test.each([
    ['main', true],
    ['release/1.2', true],
    ['release/1.2/rc', false],
    ['hotfix/a/b', true],
    ['feature/main', false],
  ])(
    'GIVEN branch patterns main, release/*, hotfix/** WHEN %s is pushed THEN builds: %s',
    (branch, builds) => {
      expect(decide(push({ ref: `refs/heads/${branch}`, refName: branch })).kind).toBe(
        builds ? 'build' : 'ignored',
      );
    },
  );

  test('GIVEN the repository identity in another case WHEN pushed THEN it is the same repository', () => {
    expect(decide(push({ repository: 'Example-Group/Batch' })).kind).toBe('build');
  });

  test('GIVEN the same identity on another provider WHEN pushed THEN it is not configured', () => {
    expect(decide(push({ provider: 'github' }))).toEqual({
      kind: 'ignored',
      reason: 'repository example-group/batch on gitlab.com is not configured',
    });
  });

  test('GIVEN two configured images from one repository WHEN pushed THEN both build, each with its own idempotency token', () => {
    const second = { ...ROUTE, name: 'batch-worker', projectName: 'pushline-batch-worker' };
    const decision = createRouter(compileRoutes([ROUTE, second]))(push());
    if (decision.kind !== 'build') throw new Error('expected a build');
    const job = buildJob(push(), decision.routes, { receivedAt: 1_764_000_000_000 });
    expect(job.requests.map((r) => r.projectName)).toEqual(['pushline-batch', 'pushline-batch-worker']);
    expect(new Set(job.requests.map((r) => r.idempotencyToken)).size).toBe(2);
    expect(buildJob(push(), decision.routes, { receivedAt: 1_764_000_000_000 })).toEqual(job);
  });

  test('GIVEN a push received at a time WHEN its builds are made THEN each carries that time, and a later redelivery keeps the same idempotency tokens', () => {
    const first = buildJob(push(), [ROUTE], { receivedAt: 1_764_000_000_000 });
    const redelivered = buildJob(push(), [ROUTE], { receivedAt: 1_764_000_060_000 });
    expect(first.requests[0]?.environment.PUSH_RECEIVED_AT).toBe('1764000000000');
    expect(redelivered.requests[0]?.environment.PUSH_RECEIVED_AT).toBe('1764000060000');
    expect(redelivered.requests[0]?.idempotencyToken).toBe(first.requests[0]?.idempotencyToken);
  });

  test('GIVEN a routing table that is not one WHEN the function starts THEN it fails at start-up, naming the entry', () => {
    expect(() => parseRoutes('[{"name":"x"}]')).toThrow(/PUSHLINE_ROUTES\[0\] is not a route/);
    expect(() => parseRoutes(undefined)).toThrow(/PUSHLINE_ROUTES is not set/);
    expect(parseRoutes(TEST_ROUTES_JSON)).toHaveLength(8);
  });
});

describe('acting', () => {
  test('GIVEN a push WHEN its build starts at once THEN StartBuild carries no receive time (a redelivery repeats it exactly), but a queued one keeps it', async () => {
    const job = buildJob(push(), [ROUTE, { ...ROUTE, name: 'other', projectName: 'pushline-other' }], {
      receivedAt: 1_764_000_000_000,
    });
    const started: Record<string, unknown>[] = [];
    const queued: Record<string, unknown>[] = [];
    await startOrQueue(job, {
      startBuild: async (r) => {
        started.push({ ...r.environment });
        if (r.projectName === 'pushline-other') throw new Error('ThrottlingException');
        return `${r.projectName}:1`;
      },
      enqueue: async (r) => {
        queued.push({ ...r.environment });
      },
    });
    for (const environment of started) expect(environment).not.toHaveProperty('PUSH_RECEIVED_AT');
    expect(queued).toEqual([expect.objectContaining({ PUSH_RECEIVED_AT: '1764000000000' })]);
  });

  test('GIVEN the second of two builds cannot start WHEN acting THEN one is started and one queued', async () => {
    const job = buildJob(push(), [ROUTE, { ...ROUTE, name: 'other', projectName: 'pushline-other' }]);
    const queued: string[] = [];
    const outcome = await startOrQueue(job, {
      startBuild: async (r) => {
        if (r.projectName === 'pushline-other') throw new Error('ThrottlingException');
        return `${r.projectName}:1`;
      },
      enqueue: async (r) => {
        queued.push(r.projectName);
      },
    });
    expect(outcome).toEqual({
      builds: [{ repository: 'batch', buildId: 'pushline-batch:1' }],
      queued: [{ repository: 'other' }],
    });
    expect(queued).toEqual(['pushline-other']);
  });

  test('GIVEN a failed credential check WHEN the delivery is refused THEN nothing after authentication ran', async () => {
    const calls: string[] = [];
    const deps: WebhookDependencies = {
      readSecret: async () => SECRET,
      decide: () => {
        calls.push('decide');
        return { kind: 'ignored', reason: '' };
      },
      startBuilds: async () => {
        calls.push('startBuilds');
        return { builds: [], queued: [] };
      },
      onPush: () => calls.push('onPush'),
    };
    const event = gitlabDelivery({ object_kind: 'push' }, { token: 'wrong' });
    const response = await receiveWebhook(
      {
        provider: 'gitlab',
        headers: { 'x-gitlab-token': 'wrong' },
        query: {},
        body: Buffer.from(event.body ?? ''),
      },
      deps,
    );
    expect(response).toEqual({ statusCode: 401, body: { error: 'unauthorized' } });
    expect(calls).toEqual([]);
  });
});
