import * as z from 'zod/mini';
import {
  changedPathsOf,
  commitFiles,
  commitSha,
  gitRef,
  hostOf,
  isObject,
  mediaType,
  type ParseResult,
  parsedPush,
  parseJson,
  parsePayload,
  splitRef,
  type WebhookRequest,
  webUrl,
  ZERO_SHA,
} from '../push-event';

/**
 * A Backlog Git repository's web URL: `https://<space>.backlog.jp/git/<PROJECT>/<repo>`, or on
 * Backlog Enterprise the same below the path the server is installed under, such as
 * `http://backlog.example.jp:8969/backlog/git/<PROJECT>/<repo>` (Backlog Enterprise user guide,
 * "Git": https://backlog.com/ja/enterprise-help/userguide/userguide1278).
 */
const BACKLOG_GIT_PATH = /^(?:\/[^/]+)*?\/git\/([^/]+)\/([^/]+?)(?:\.git)?\/?$/;

const backlogRepositoryUrl = webUrl.check(
  // zod runs this check even when the URL format check failed, so the URL may not parse.
  z.refine(
    (url) => URL.canParse(url) && BACKLOG_GIT_PATH.test(new URL(url).pathname),
    'must be a Backlog Git repository URL',
  ),
);

/**
 * The fields of a Backlog Git webhook payload pushline reads ("Git Webhook":
 * https://backlog.com/help/usersguide/git/userguide1710/).
 */
const BacklogPush = z.object({
  ref: gitRef,
  before: commitSha,
  after: commitSha,
  repository: z.object({ url: backlogRepositoryUrl }),
  revisions: z.optional(
    z.array(z.extend(commitFiles, { author: z.optional(z.object({ name: z.optional(z.string()) })) })),
  ),
});

/**
 * Backlog Git webhook deliveries (backlog.jp, backlog.com and Backlog Enterprise): a form with one
 * field, `payload`, holding JSON `{before, after, ref, repository{name, url}, revisions[...]}`.
 * Backlog names the repository only by `name`; its project key is in the URL. Called only after
 * the token was checked.
 */
export function parseBacklogPush(request: WebhookRequest): ParseResult {
  if (mediaType(request.headers) !== 'application/x-www-form-urlencoded')
    return { kind: 'invalid', reason: 'content type must be application/x-www-form-urlencoded' };
  const field = new URLSearchParams(request.body.toString('utf8')).get('payload');
  if (field === null) return { kind: 'invalid', reason: 'form body has no payload field' };
  const body = parseJson(field);
  if (!isObject(body)) return { kind: 'invalid', reason: 'payload is not a JSON object' };

  const parsed = parsePayload(BacklogPush, body);
  if ('reason' in parsed) return { kind: 'invalid', reason: parsed.reason };
  const push = parsed.data;
  const [, project, name] = BACKLOG_GIT_PATH.exec(new URL(push.repository.url).pathname) ?? [];
  const repository = `${project}/${name}`;
  const host = hostOf(push.repository.url);
  const revisions = push.revisions ?? [];
  return parsedPush({
    provider: 'backlog',
    host,
    repository,
    ref: push.ref,
    ...splitRef(push.ref),
    before: push.before,
    after: push.after,
    commit: push.after,
    deleted: push.after === ZERO_SHA,
    changedPaths: revisions.length > 0 ? changedPathsOf(revisions) : undefined,
    // Backlog sends no delivery id; the push itself (on its server) is the identity of a delivery.
    deliveryId: `${host}/${repository}:${push.ref}:${push.before}:${push.after}`,
    pusher: revisions.at(-1)?.author?.name,
  });
}
