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

/**
 * The fields of a Gitea or Forgejo `push` payload pushline reads (Gitea documents it as GitHub's
 * shape: https://docs.gitea.com/features/webhooks). `repository.html_url` names the server.
 * `total_commits` says whether `commits` lists them all (Gitea caps the list).
 */
const GiteaPush = z.object({
  ref: gitRef,
  before: commitSha,
  after: commitSha,
  head_commit: z.nullish(z.object({ id: commitSha })),
  commits: z.nullish(z.array(commitFiles)),
  total_commits: z.optional(z.number()),
  pusher: z.nullish(z.object({ login: z.optional(z.string()) })),
  repository: z.object({ full_name: nonEmpty, html_url: webUrl }),
});

/**
 * Gitea and Forgejo `push` deliveries (JSON or form-encoded), one adapter for both: Forgejo sends
 * its own `X-Forgejo-*` headers next to Gitea's. Called only after the signature was checked.
 */
export function parseGiteaPush(request: WebhookRequest): ParseResult {
  const event = request.headers['x-forgejo-event'] ?? request.headers['x-gitea-event'];
  if (!event) return { kind: 'invalid', reason: 'missing X-Gitea-Event header' };
  const body = jsonOrFormPayload(request);
  if (typeof body === 'string') return { kind: 'invalid', reason: body };
  if (event !== 'push') return { kind: 'ignored', reason: `event ${event} does not build` };

  const parsed = parsePayload(GiteaPush, body);
  if ('reason' in parsed) return { kind: 'invalid', reason: parsed.reason };
  const push = parsed.data;
  const repository = push.repository.full_name;
  const deleted = push.after === ZERO_SHA;
  const commits = push.commits ?? [];
  const complete = commits.length > 0 && push.total_commits === commits.length;
  return parsedPush({
    provider: 'gitea',
    host: hostOf(push.repository.html_url),
    repository,
    ref: push.ref,
    ...splitRef(push.ref),
    before: push.before,
    after: push.after,
    commit: deleted ? push.after : (push.head_commit?.id ?? push.after),
    deleted,
    // Without total_commits (older servers) the list may be capped: build rather than filter.
    changedPaths: complete ? changedPathsOf(commits) : undefined,
    deliveryId: request.headers['x-forgejo-delivery'] ?? request.headers['x-gitea-delivery'],
    pusher: push.pusher?.login,
  });
}
