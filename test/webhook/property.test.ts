import 'aws-sdk-client-mock-jest';
import { fc, test } from '@fast-check/jest';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { type LoadedWebhook, loadWebhookHandler } from './load-handler';
import {
  apiEvent,
  backlogDelivery,
  bitbucketDelivery,
  fixture,
  giteaDelivery,
  githubDelivery,
  gitlabDelivery,
  LAMBDA_CONTEXT,
} from './support';

/**
 * Whatever arrives, the function never answers 5xx, and it starts a build only for an
 * authenticated, valid push: random bytes, random headers, and real payloads with random fields
 * replaced or removed.
 */

const REAL_PAYLOADS = [
  { provider: 'github', payload: fixture('github', 'push-branch-created.json') },
  { provider: 'github', payload: fixture('github', 'push-tag-created.json') },
  { provider: 'gitlab', payload: fixture('gitlab', 'push.json') },
  { provider: 'gitlab', payload: fixture('gitlab', 'tag-push.json') },
  { provider: 'backlog', payload: fixture('backlog', 'push.json') },
  { provider: 'bitbucket', payload: fixture('bitbucket', 'repo-push.json') },
  { provider: 'gitea', payload: fixture('gitea', 'push.json') },
] as const;

let webhook: LoadedWebhook;
beforeAll(() => {
  webhook = loadWebhookHandler();
});

/** Every path to a value inside a JSON document. */
function pathsOf(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(value)) return [prefix, ...value.flatMap((v, i) => pathsOf(v, [...prefix, i]))];
  if (typeof value === 'object' && value !== null)
    return [prefix, ...Object.entries(value).flatMap(([k, v]) => pathsOf(v, [...prefix, k]))];
  return [prefix];
}

/** A copy of `doc` with the value at `path` replaced (or removed when `replacement` is undefined). */
function mutate(doc: unknown, path: (string | number)[], replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const copy: unknown = structuredClone(doc);
  let parent = copy as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const last = path.at(-1) as string | number;
  if (replacement === undefined) delete parent[last];
  else parent[last] = replacement;
  return copy;
}

const SHA = /^[0-9a-f]{40}$/;

/** The delivery with one byte of its body changed after signing, handed over base64-encoded. */
function withByteFlipped(event: APIGatewayProxyEvent, position: number, flip: number): APIGatewayProxyEvent {
  const body = Buffer.from(event.body ?? '', 'utf8');
  const at = position % body.length;
  body[at] = (body[at] ?? 0) ^ flip;
  return { ...event, body: body.toString('base64'), isBase64Encoded: true };
}

async function deliver(event: APIGatewayProxyEvent) {
  webhook.codebuild.resetHistory();
  const result = await webhook.handler(event, LAMBDA_CONTEXT);
  const calls = webhook.codebuild.commandCalls(webhook.CodeBuild.StartBuildCommand);
  return { result, calls };
}

describe('webhook function under random input', () => {
  test.prop(
    [
      fc.constantFrom('github', 'gitlab', 'backlog', 'bitbucket', 'gitea', 'sourcehut', ''),
      fc.uint8Array({ maxLength: 2048 }),
      fc.dictionary(
        fc.constantFrom(
          'Content-Type',
          'X-GitHub-Event',
          'X-Gitlab-Event',
          'X-Hub-Signature-256',
          'X-Gitlab-Token',
          'X-Hub-Signature',
          'X-Event-Key',
          'X-Gitea-Signature',
          'X-Forgejo-Signature',
          'X-Gitea-Event',
        ),
        fc.string({ maxLength: 80 }),
      ),
      fc.dictionary(fc.constantFrom('token', 'payload'), fc.string({ maxLength: 40 })),
      fc.boolean(),
    ],
    { numRuns: 300 },
  )(
    'GIVEN random bytes and headers WHEN delivered THEN never a 5xx and never a build',
    async (provider, bytes, headers, query, base64) => {
      const { result, calls } = await deliver(
        apiEvent({ provider, headers, query, body: Buffer.from(bytes), base64 }),
      );
      expect(result.statusCode).toBeLessThan(500);
      expect(calls).toHaveLength(0);
    },
  );

  test.prop(
    [
      fc.constantFrom(...REAL_PAYLOADS),
      fc.array(fc.tuple(fc.nat(), fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: undefined })), {
        minLength: 1,
        maxLength: 3,
      }),
    ],
    { numRuns: 300 },
  )(
    'GIVEN a real payload with random fields replaced, correctly authenticated WHEN delivered THEN never a 5xx, and a build only for a valid push',
    async (real, mutations) => {
      let doc: unknown = real.payload;
      for (const [index, replacement] of mutations) {
        const paths = pathsOf(doc);
        doc = mutate(doc, paths[index % paths.length] ?? [], replacement);
      }
      const event =
        real.provider === 'github'
          ? githubDelivery(doc)
          : real.provider === 'gitlab'
            ? gitlabDelivery(doc, {
                hook: real.payload.object_kind === 'tag_push' ? 'Tag Push Hook' : 'Push Hook',
              })
            : real.provider === 'bitbucket'
              ? bitbucketDelivery(doc)
              : real.provider === 'gitea'
                ? giteaDelivery(doc)
                : backlogDelivery(doc);
      const { result, calls } = await deliver(event);

      expect(result.statusCode).toBeLessThan(500);
      if (calls.length > 0) expect(result.statusCode).toBe(202);
      for (const call of calls) {
        const environment = Object.fromEntries(
          (call.args[0].input.environmentVariablesOverride ?? []).map((v) => [v.name, v.value]),
        );
        expect(environment.COMMIT_SHA).toMatch(SHA);
        expect(environment.GIT_REF).toMatch(/^refs\/(heads|tags)\/./);
      }
    },
  );

  test.prop(
    [
      fc.constantFrom(...REAL_PAYLOADS.filter((p) => p.provider === 'github')),
      fc.boolean(),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
    ],
    { numRuns: 300 },
  )(
    'GIVEN a signed GitHub delivery with one byte changed after signing WHEN delivered THEN 401 and no build',
    async (real, form, position, flip) => {
      const { result, calls } = await deliver(
        withByteFlipped(githubDelivery(real.payload, { form }), position, flip),
      );

      expect(result.statusCode).toBe(401);
      expect(calls).toHaveLength(0);
    },
  );

  test.prop([fc.constantFrom('bitbucket', 'gitea', 'forgejo'), fc.nat(), fc.integer({ min: 1, max: 255 })], {
    numRuns: 200,
  })(
    'GIVEN a signed Bitbucket, Gitea or Forgejo delivery with one byte changed after signing WHEN delivered THEN 401 and no build',
    async (host, position, flip) => {
      const event =
        host === 'bitbucket'
          ? bitbucketDelivery(fixture('bitbucket', 'repo-push.json'))
          : giteaDelivery(fixture('gitea', 'push.json'), { forgejo: host === 'forgejo' });
      const { result, calls } = await deliver(withByteFlipped(event, position, flip));

      expect(result.statusCode).toBe(401);
      expect(calls).toHaveLength(0);
    },
  );
});
