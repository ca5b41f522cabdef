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
} from '../push-event';

/** GitHub lists at most this many commits in a push; a longer push may have changed other paths too. */
const GITHUB_COMMIT_LIMIT = 2048;

/**
 * GitHub `push` (and `ping`) deliveries, posted as JSON or as a form with one `payload` field.
 * Called only after the signature was checked.
 */
export function parseGithubPush(request: WebhookRequest): ParseResult {
  const event = request.headers['x-github-event'];
  if (!event) return { kind: 'invalid', reason: 'missing X-GitHub-Event header' };
  const body = githubBody(request);
  if (typeof body === 'string') return { kind: 'invalid', reason: body };
  if (event === 'ping') return { kind: 'ignored', reason: 'ping' };
  if (event !== 'push') return { kind: 'ignored', reason: `event ${event} does not build` };

  const repository = isObject(body.repository) ? body.repository.full_name : undefined;
  if (typeof repository !== 'string' || repository.length === 0)
    return { kind: 'invalid', reason: 'missing repository.full_name' };
  const ref = splitRef(body.ref);
  if (!ref) return { kind: 'invalid', reason: 'ref must be refs/heads/<branch> or refs/tags/<tag>' };
  if (!isSha(body.before) || !isSha(body.after))
    return { kind: 'invalid', reason: 'before and after must be 40-hex commit SHAs' };
  const deleted = body.deleted === true;
  const headCommit = isObject(body.head_commit) ? body.head_commit.id : undefined;
  const commit = deleted ? body.after : (headCommit ?? body.after);
  if (!isSha(commit)) return { kind: 'invalid', reason: 'head_commit.id must be a 40-hex commit SHA' };
  const commits = Array.isArray(body.commits) ? body.commits : [];
  const changedPaths =
    commits.length > 0 && commits.length < GITHUB_COMMIT_LIMIT ? changedPathsOf(commits) : undefined;
  const pusher = isObject(body.pusher) && typeof body.pusher.name === 'string' ? body.pusher.name : undefined;
  const deliveryId =
    request.headers['x-github-delivery'] ?? `${repository}:${body.ref}:${body.before}:${body.after}`;
  return parsedPush({
    provider: 'github',
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

function githubBody(request: WebhookRequest): Record<string, unknown> | string {
  const type = mediaType(request.headers);
  let text: string;
  if (type === 'application/json') {
    text = request.body.toString('utf8');
  } else if (type === 'application/x-www-form-urlencoded') {
    const payload = new URLSearchParams(request.body.toString('utf8')).get('payload');
    if (payload === null) return 'form body has no payload field';
    text = payload;
  } else {
    return 'content type must be application/json or application/x-www-form-urlencoded';
  }
  const body = parseJson(text);
  return isObject(body) ? body : 'body is not a JSON object';
}
