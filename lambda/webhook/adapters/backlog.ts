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

/**
 * Backlog Git webhook deliveries: a form with one field, `payload`, holding JSON
 * `{before, after, ref, repository{name, url}, revisions[...]}`. Backlog names the repository
 * only by `name`; its project key is in the URL (`https://<space>/git/<PROJECT>/<repo>`).
 * Called only after the token was checked.
 */
export function parseBacklogPush(request: WebhookRequest): ParseResult {
  if (mediaType(request.headers) !== 'application/x-www-form-urlencoded')
    return { kind: 'invalid', reason: 'content type must be application/x-www-form-urlencoded' };
  const field = new URLSearchParams(request.body.toString('utf8')).get('payload');
  if (field === null) return { kind: 'invalid', reason: 'form body has no payload field' };
  const body = parseJson(field);
  if (!isObject(body)) return { kind: 'invalid', reason: 'payload is not a JSON object' };

  const repository = isObject(body.repository) ? backlogRepository(body.repository) : undefined;
  if (!repository) return { kind: 'invalid', reason: 'repository.url must be a Backlog Git repository URL' };
  const ref = splitRef(body.ref);
  if (!ref) return { kind: 'invalid', reason: 'ref must be refs/heads/<branch> or refs/tags/<tag>' };
  if (!isSha(body.before) || !isSha(body.after))
    return { kind: 'invalid', reason: 'before and after must be 40-hex commit SHAs' };
  const revisions = Array.isArray(body.revisions) ? body.revisions : [];
  const changedPaths = revisions.length > 0 ? changedPathsOf(revisions) : undefined;
  const last = revisions.at(-1);
  const pusher =
    isObject(last) && isObject(last.author) && typeof last.author.name === 'string'
      ? last.author.name
      : undefined;
  return parsedPush({
    provider: 'backlog',
    repository,
    ref: body.ref as string,
    ...ref,
    before: body.before,
    after: body.after,
    commit: body.after,
    deleted: body.after === ZERO_SHA,
    changedPaths,
    // Backlog sends no delivery id; the push itself is the identity of a delivery.
    deliveryId: `${repository}:${body.ref}:${body.before}:${body.after}`,
    pusher,
  });
}

/** `PROJECT/repo` from `https://space.backlog.jp/git/PROJECT/repo`, falling back on nothing. */
function backlogRepository(repository: Record<string, unknown>): string | undefined {
  if (typeof repository.url !== 'string') return undefined;
  let path: string;
  try {
    path = new URL(repository.url).pathname;
  } catch {
    return undefined;
  }
  const match = /^\/git\/([^/]+)\/([^/]+?)(?:\.git)?\/?$/.exec(path);
  return match ? `${match[1]}/${match[2]}` : undefined;
}
