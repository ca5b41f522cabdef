import * as z from 'zod/mini';
import {
  changedPathsOf,
  commitFiles,
  commitSha,
  gitRef,
  hostOf,
  jsonOrFormPayload,
  nonEmpty,
  type ParseResult,
  parsedPush,
  parsePayload,
  splitRef,
  type WebhookRequest,
  webUrl,
  ZERO_SHA,
} from '../push-event';

/** GitHub lists at most this many commits in a push; a longer push may have changed other paths too. */
const GITHUB_COMMIT_LIMIT = 2048;

/**
 * The fields of a GitHub `push` payload pushline reads ("Webhook events and payloads", push:
 * https://docs.github.com/en/webhooks/webhook-events-and-payloads#push). `repository.html_url`
 * names the server, so a GitHub Enterprise Server repository never builds a github.com one.
 */
const GithubPush = z.object({
  ref: gitRef,
  before: commitSha,
  after: commitSha,
  deleted: z.optional(z.boolean()),
  head_commit: z.nullish(z.object({ id: commitSha })),
  commits: z.optional(z.array(commitFiles)),
  pusher: z.optional(z.object({ name: z.optional(z.string()) })),
  repository: z.object({ full_name: nonEmpty, html_url: webUrl }),
});

/**
 * GitHub (and GitHub Enterprise Server) `push` and `ping` deliveries, posted as JSON or as a form
 * with one `payload` field. Called only after the signature was checked.
 */
export function parseGithubPush(request: WebhookRequest): ParseResult {
  const event = request.headers['x-github-event'];
  if (!event) return { kind: 'invalid', reason: 'missing X-GitHub-Event header' };
  const body = jsonOrFormPayload(request);
  if (typeof body === 'string') return { kind: 'invalid', reason: body };
  if (event === 'ping') return { kind: 'ignored', reason: 'ping' };
  if (event !== 'push') return { kind: 'ignored', reason: `event ${event} does not build` };

  const parsed = parsePayload(GithubPush, body);
  if ('reason' in parsed) return { kind: 'invalid', reason: parsed.reason };
  const push = parsed.data;
  const repository = push.repository.full_name;
  // GitHub marks a deleted ref with `deleted`, and its `after` is then forty zeros.
  const deleted = push.deleted === true || push.after === ZERO_SHA;
  const commit = deleted ? push.after : (push.head_commit?.id ?? push.after);
  const commits = push.commits ?? [];
  const changedPaths =
    commits.length > 0 && commits.length < GITHUB_COMMIT_LIMIT ? changedPathsOf(commits) : undefined;
  return parsedPush({
    provider: 'github',
    host: hostOf(push.repository.html_url),
    repository,
    ref: push.ref,
    ...splitRef(push.ref),
    before: push.before,
    after: push.after,
    commit,
    deleted,
    changedPaths,
    deliveryId: request.headers['x-github-delivery'],
    pusher: push.pusher?.name,
  });
}
