import * as z from 'zod/mini';
import {
  changedPathsOf,
  commitFiles,
  commitSha,
  gitRef,
  hostOf,
  isObject,
  mediaType,
  nonEmpty,
  type ParseResult,
  parsedPush,
  parseJson,
  parsePayload,
  splitRef,
  type WebhookRequest,
  webUrl,
  ZERO_SHA,
} from '../push-event';

const PUSH_HOOKS: Record<string, string> = { 'Push Hook': 'push', 'Tag Push Hook': 'tag_push' };

/**
 * The fields of a GitLab push or tag push payload pushline reads ("Webhook events", push and tag
 * events: https://docs.gitlab.com/user/project/integrations/webhook_events/). `project.web_url`
 * names the server, so a self-managed instance's `group/project` never builds a gitlab.com one.
 */
const GitlabPush = z.object({
  object_kind: z.string(),
  ref: gitRef,
  before: commitSha,
  after: commitSha,
  checkout_sha: z.nullish(commitSha),
  commits: z.optional(z.array(commitFiles)),
  total_commits_count: z.optional(z.number()),
  user_username: z.optional(z.string()),
  project: z.object({ path_with_namespace: nonEmpty, web_url: webUrl }),
});

/**
 * GitLab (gitlab.com and self-managed) `Push Hook` and `Tag Push Hook` deliveries (JSON). Called
 * only after the token was checked.
 */
export function parseGitlabPush(request: WebhookRequest): ParseResult {
  const hook = request.headers['x-gitlab-event'];
  if (!hook) return { kind: 'invalid', reason: 'missing X-Gitlab-Event header' };
  if (mediaType(request.headers) !== 'application/json')
    return { kind: 'invalid', reason: 'content type must be application/json' };
  const body = parseJson(request.body.toString('utf8'));
  if (!isObject(body)) return { kind: 'invalid', reason: 'body is not a JSON object' };
  const objectKind = PUSH_HOOKS[hook];
  if (!objectKind) return { kind: 'ignored', reason: `event ${hook} does not build` };
  if (body.object_kind !== objectKind)
    return { kind: 'invalid', reason: `object_kind must be ${objectKind} for ${hook}` };

  const parsed = parsePayload(GitlabPush, body);
  if ('reason' in parsed) return { kind: 'invalid', reason: parsed.reason };
  const push = parsed.data;
  const repository = push.project.path_with_namespace;
  const deleted = push.after === ZERO_SHA;
  // For an annotated tag `after` is the tag object; checkout_sha is the commit it points to.
  const commit = deleted ? push.after : (push.checkout_sha ?? push.after);
  const commits = push.commits ?? [];
  const total = push.total_commits_count ?? commits.length;
  // GitLab lists at most 20 commits; when it left some out, the changed paths are not known.
  const changedPaths = commits.length > 0 && total <= commits.length ? changedPathsOf(commits) : undefined;
  return parsedPush({
    provider: 'gitlab',
    host: hostOf(push.project.web_url),
    repository,
    ref: push.ref,
    ...splitRef(push.ref),
    before: push.before,
    after: push.after,
    commit,
    deleted,
    changedPaths,
    deliveryId: request.headers['idempotency-key'] ?? request.headers['x-gitlab-event-uuid'],
    pusher: push.user_username,
  });
}
