import {
  changedPathsOf,
  isObject,
  isSha,
  mediaType,
  type ParseResult,
  parsedPush,
  parseJson,
  splitRef,
  type WebhookRequest,
  ZERO_SHA,
} from '../push-event';

const PUSH_HOOKS: Record<string, string> = { 'Push Hook': 'push', 'Tag Push Hook': 'tag_push' };

/** GitLab `Push Hook` and `Tag Push Hook` deliveries (JSON). Called only after the token was checked. */
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

  const repository = isObject(body.project) ? body.project.path_with_namespace : undefined;
  if (typeof repository !== 'string' || repository.length === 0)
    return { kind: 'invalid', reason: 'missing project.path_with_namespace' };
  const ref = splitRef(body.ref);
  if (!ref) return { kind: 'invalid', reason: 'ref must be refs/heads/<branch> or refs/tags/<tag>' };
  if (!isSha(body.before) || !isSha(body.after))
    return { kind: 'invalid', reason: 'before and after must be 40-hex commit SHAs' };
  const deleted = body.after === ZERO_SHA;
  // For an annotated tag `after` is the tag object; checkout_sha is the commit it points to.
  const commit = deleted ? body.after : (body.checkout_sha ?? body.after);
  if (!isSha(commit)) return { kind: 'invalid', reason: 'checkout_sha must be a 40-hex commit SHA' };
  const commits = Array.isArray(body.commits) ? body.commits : [];
  const total = typeof body.total_commits_count === 'number' ? body.total_commits_count : commits.length;
  // GitLab lists at most 20 commits; when it left some out, the changed paths are not known.
  const changedPaths = commits.length > 0 && total <= commits.length ? changedPathsOf(commits) : undefined;
  const pusher = typeof body.user_username === 'string' ? body.user_username : undefined;
  const deliveryId =
    request.headers['idempotency-key'] ??
    request.headers['x-gitlab-event-uuid'] ??
    `${repository}:${body.ref}:${body.before}:${body.after}`;
  return parsedPush({
    provider: 'gitlab',
    repository,
    ref: body.ref as string,
    ...ref,
    before: body.before,
    after: body.after,
    commit,
    deleted,
    changedPaths,
    deliveryId,
    pusher,
  });
}
