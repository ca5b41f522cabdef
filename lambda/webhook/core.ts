import { createHash } from 'node:crypto';
import { parseBacklogPush } from './adapters/backlog';
import { parseBitbucketPush } from './adapters/bitbucket';
import { parseGiteaPush } from './adapters/gitea';
import { parseGithubPush } from './adapters/github';
import { parseGitlabPush } from './adapters/gitlab';
import { isAuthentic, type WebhookSecret } from './auth';
import {
  isWebhookProvider,
  type ParseResult,
  type PushEvent,
  type WebhookProvider,
  type WebhookRequest,
} from './push-event';
import type { RouteDecision, WebhookRoute } from './routes';

/** Larger bodies are refused before anything is done with them (Lambda's own limit is 6 MB). */
export const MAX_BODY_BYTES = 5 * 1024 * 1024;

const ADAPTERS: Record<WebhookProvider, (request: WebhookRequest) => ParseResult> = {
  backlog: parseBacklogPush,
  github: parseGithubPush,
  gitlab: parseGitlabPush,
  bitbucket: parseBitbucketPush,
  gitea: parseGiteaPush,
};

/** The environment a build receives; the buildspec relies on these exact names. */
export interface BuildEnvironment {
  readonly COMMIT_SHA: string;
  readonly GIT_REF: string;
  readonly CLONE_URL: string;
  readonly SOURCE_PROVIDER: string;
  readonly SOURCE_REPOSITORY: string;
  readonly DELIVERY_ID: string;
  /**
   * When the webhook received the push, epoch milliseconds. Builds of one repository may finish in
   * any order; the build writes the deploy artifact only when its push is newer than the one the
   * current artifact came from (README, "Which commit deploys"). Only a queued build carries it
   * (it starts later than its push); one started at once uses CodeBuild's own start time, so that
   * a redelivery repeats StartBuild exactly and CodeBuild's idempotency token still collapses it.
   */
  readonly PUSH_RECEIVED_AT?: string;
}

/** One StartBuild call, as plain data so that it can be queued and retried unchanged. */
export interface BuildRequest {
  /** The configured repository name, for the answer and the logs. */
  readonly repository: string;
  readonly projectName: string;
  readonly idempotencyToken: string;
  readonly environment: BuildEnvironment;
}

/** All builds one delivery asks for, with the key that makes a redelivery a no-op. */
export interface BuildJob {
  readonly deliveryKey: string;
  readonly requests: readonly BuildRequest[];
}

export interface BuildOutcome {
  readonly builds: readonly { readonly repository: string; readonly buildId: string }[];
  readonly queued: readonly { readonly repository: string }[];
}

/** What a delivery gets back. */
export interface WebhookResponse {
  readonly statusCode: number;
  readonly body: Record<string, unknown>;
}

export interface WebhookDependencies {
  /** The secret, from a short cache unless `fresh` (then re-read, for a rotated secret). */
  readSecret(fresh: boolean): Promise<WebhookSecret>;
  decide(event: PushEvent): RouteDecision;
  /** Starts (or queues) the builds once per delivery key. */
  startBuilds(job: BuildJob): Promise<BuildOutcome>;
  /** Called once the delivery is known, so that logs carry its id and commit. */
  onPush?(event: PushEvent): void;
}

/** The SDK-free part of StartBuild: start each build now, or queue it when CodeBuild cannot. */
export interface BuildStarter {
  startBuild(request: BuildRequest): Promise<string>;
  enqueue(request: BuildRequest, cause: unknown): Promise<void>;
}

/**
 * The webhook, end to end but without AWS: provider → authenticate → parse → route → act.
 * Bad input is answered with a 4xx and never reaches `startBuilds`.
 */
export async function receiveWebhook(
  request: WebhookRequest,
  deps: WebhookDependencies,
): Promise<WebhookResponse> {
  const provider = request.provider;
  if (!isWebhookProvider(provider)) return { statusCode: 404, body: { error: 'unknown provider' } };
  if (request.body.length > MAX_BODY_BYTES)
    return { statusCode: 400, body: { error: `body larger than ${MAX_BODY_BYTES} bytes` } };

  if (!(await authenticate(provider, request, deps)))
    return { statusCode: 401, body: { error: 'unauthorized' } };

  const parsed = ADAPTERS[provider](request);
  if (parsed.kind === 'invalid') return { statusCode: 400, body: { error: parsed.reason } };
  if (parsed.kind === 'ignored') return { statusCode: 200, body: { ignored: parsed.reason } };
  const events = parsed.kind === 'push' ? [parsed.event] : parsed.events;
  for (const event of events) deps.onPush?.(event);

  const decisions = events.map((event) => ({ event, decision: deps.decide(event) }));
  const matched = decisions.flatMap(({ event, decision }) =>
    decision.kind === 'build' ? [buildJob(event, decision.routes, { perRef: events.length > 1 })] : [],
  );
  const [first] = matched;
  if (!first) {
    const reasons = decisions.map(({ decision }) => (decision.kind === 'ignored' ? decision.reason : ''));
    return { statusCode: 200, body: { ignored: reasons.join('; ') } };
  }
  // One delivery, one key: a redelivery of a multi-ref push builds none of its refs again.
  const job = { deliveryKey: first.deliveryKey, requests: matched.flatMap((j) => j.requests) };
  const outcome = await deps.startBuilds(job);
  return { statusCode: 202, body: outcomeBody(outcome) };
}

async function authenticate(
  provider: WebhookProvider,
  request: WebhookRequest,
  deps: WebhookDependencies,
): Promise<boolean> {
  const cached = (await deps.readSecret(false))[provider] ?? '';
  if (isAuthentic(provider, request, cached)) return true;
  // A rotated secret must work without a redeploy: one fresh read before saying no.
  const fresh = (await deps.readSecret(true))[provider] ?? '';
  return fresh !== cached && isAuthentic(provider, request, fresh);
}

/**
 * The StartBuild requests for a push and the routes it matched. `receivedAt` (epoch ms) orders the
 * artifact writes of one branch; `perRef` when the delivery changed several refs: each ref's build
 * then gets its own idempotency token.
 */
export function buildJob(
  event: PushEvent,
  routes: readonly WebhookRoute[],
  { receivedAt = Date.now(), perRef = false }: { receivedAt?: number; perRef?: boolean } = {},
): BuildJob {
  const deliveryKey = `${event.provider}:${event.deliveryId}`;
  const tokenKey = perRef ? `${deliveryKey}|${event.ref}` : deliveryKey;
  return {
    deliveryKey,
    requests: routes.map((route) => ({
      repository: route.name,
      projectName: route.projectName,
      idempotencyToken: createHash('sha256').update(`${tokenKey}|${route.projectName}`).digest('hex'),
      environment: {
        COMMIT_SHA: event.commit,
        GIT_REF: event.ref,
        CLONE_URL: route.cloneUrl,
        SOURCE_PROVIDER: event.provider,
        SOURCE_REPOSITORY: route.repository,
        DELIVERY_ID: event.deliveryId,
        PUSH_RECEIVED_AT: String(receivedAt),
      },
    })),
  };
}

/**
 * Starts every build of a job; one CodeBuild cannot start now (throttled, 5xx, project not yet
 * deployed) goes to the retry queue instead, so no push is lost. Only a failure to queue throws.
 */
export async function startOrQueue(job: BuildJob, starter: BuildStarter): Promise<BuildOutcome> {
  const builds: { repository: string; buildId: string }[] = [];
  const queued: { repository: string }[] = [];
  for (const request of job.requests) {
    const { PUSH_RECEIVED_AT: _receivedAt, ...startedAtOnce } = request.environment;
    try {
      builds.push({
        repository: request.repository,
        buildId: await starter.startBuild({ ...request, environment: startedAtOnce }),
      });
    } catch (err) {
      await starter.enqueue(request, err);
      queued.push({ repository: request.repository });
    }
  }
  return { builds, queued };
}

function outcomeBody(outcome: BuildOutcome): Record<string, unknown> {
  if (outcome.queued.length === 0) return { builds: outcome.builds };
  if (outcome.builds.length === 0) return { queued: outcome.queued };
  return { builds: outcome.builds, queued: outcome.queued };
}
