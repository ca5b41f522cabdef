import * as z from 'zod/mini';
import {
  commitSha,
  isObject,
  mediaType,
  nonEmpty,
  type ParseResult,
  type PushEvent,
  parseJson,
  parsePayload,
  type WebhookRequest,
  ZERO_SHA,
} from '../push-event';

/** Bitbucket Cloud serves every repository from one host. */
const BITBUCKET_HOST = 'bitbucket.org';

const refState = z.nullish(
  z.object({
    type: z.enum(['branch', 'tag'], 'must be branch or tag'),
    name: nonEmpty,
    target: z.object({ hash: commitSha }),
  }),
);

/**
 * The fields of a Bitbucket Cloud `repo:push` payload pushline reads ("Event payloads", Push:
 * https://support.atlassian.com/bitbucket-cloud/docs/event-payloads/). One delivery lists every
 * ref the push changed in `push.changes[]`; `new` is null (and `closed` true) for a deleted ref.
 */
const BitbucketPush = z.object({
  repository: z.object({ full_name: nonEmpty }),
  actor: z.nullish(z.object({ display_name: z.optional(z.string()) })),
  push: z.object({
    changes: z.array(z.object({ new: refState, old: refState, closed: z.optional(z.boolean()) })),
  }),
});

/**
 * Bitbucket Cloud `repo:push` deliveries (JSON, `X-Event-Key: repo:push`). Each changed branch or
 * tag becomes its own push event, so that each one that matches builds its own commit. Called
 * only after the signature was checked.
 */
export function parseBitbucketPush(request: WebhookRequest): ParseResult {
  const eventKey = request.headers['x-event-key'];
  if (!eventKey) return { kind: 'invalid', reason: 'missing X-Event-Key header' };
  if (mediaType(request.headers) !== 'application/json')
    return { kind: 'invalid', reason: 'content type must be application/json' };
  const body = parseJson(request.body.toString('utf8'));
  if (!isObject(body)) return { kind: 'invalid', reason: 'body is not a JSON object' };
  if (eventKey !== 'repo:push') return { kind: 'ignored', reason: `event ${eventKey} does not build` };

  const parsed = parsePayload(BitbucketPush, body);
  if ('reason' in parsed) return { kind: 'invalid', reason: parsed.reason };
  const push = parsed.data;
  const repository = push.repository.full_name;
  const refs = push.push.changes.flatMap((change) => {
    const state = change.new ?? change.old;
    if (!state) return [];
    const prefix = state.type === 'branch' ? 'refs/heads/' : 'refs/tags/';
    const before = change.old?.target.hash ?? ZERO_SHA;
    const after = change.new?.target.hash ?? ZERO_SHA;
    return [
      {
        refType: state.type,
        refName: state.name,
        ref: `${prefix}${state.name}`,
        before,
        after,
        deleted: change.new === null || change.new === undefined || change.closed === true,
      },
    ];
  });
  if (refs.length === 0) return { kind: 'invalid', reason: 'push.changes: names no branch or tag' };
  // X-Request-UUID identifies the delivery (Atlassian, "Manage webhooks": request headers).
  const deliveryId =
    request.headers['x-request-uuid'] ??
    `${repository}:${refs.map((r) => `${r.ref}:${r.before}:${r.after}`).join(',')}`;
  const pusher = push.actor?.display_name;
  const events: PushEvent[] = refs.map((r) => ({
    provider: 'bitbucket',
    host: BITBUCKET_HOST,
    repository,
    ...r,
    commit: r.after,
    deliveryId,
    ...(pusher ? { pusher } : {}),
  }));
  return { kind: 'pushes', events };
}
