import type { StartBuildCommandInput } from '@aws-sdk/client-codebuild';
import type { BuildRequest } from './core';

/** The exact StartBuild input for a build request: no source override, the commit in the environment. */
export function startBuildInput(request: BuildRequest): StartBuildCommandInput {
  return {
    projectName: request.projectName,
    idempotencyToken: request.idempotencyToken,
    environmentVariablesOverride: Object.entries(request.environment).map(([name, value]) => ({
      name,
      value,
      type: 'PLAINTEXT',
    })),
  };
}

/** What the retry queue carries: the request, unchanged, so a retry starts exactly the same build. */
export interface QueuedBuild {
  readonly request: BuildRequest;
}

/** Reads a queued message, or says why it cannot be used. */
export function parseQueuedBuild(body: string): QueuedBuild | string {
  let message: unknown;
  try {
    message = JSON.parse(body);
  } catch {
    return 'message body is not JSON';
  }
  const request = (message as { request?: Partial<BuildRequest> } | null)?.request;
  if (
    !request ||
    typeof request.projectName !== 'string' ||
    typeof request.idempotencyToken !== 'string' ||
    typeof request.repository !== 'string' ||
    typeof request.environment !== 'object' ||
    request.environment === null
  ) {
    return 'message has no build request';
  }
  return { request: request as BuildRequest };
}

/** A short, log-safe description of an SDK error (name and HTTP status, never the request). */
export function describeError(err: unknown): { name: string; status?: number } {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  const status = e?.$metadata?.httpStatusCode;
  return { name: e?.name ?? 'Error', ...(status !== undefined ? { status } : {}) };
}

/**
 * The message of the ERROR line logged when a build could neither start nor be queued; the line's
 * `startBuild` field is the complete StartBuild input. A metric filter counts these lines
 * (`WebhookReceiver.buildNotKeptAlarm`); README "Webhooks" shows how to start the build from one.
 */
export const BUILD_NOT_KEPT = 'PUSHLINE_BUILD_NOT_KEPT: neither started nor queued; start it by hand';

/** The message of the WARN line logged when the delivery table failed and the builds started without it. */
export const DELIVERY_TABLE_FAILED =
  'PUSHLINE_DELIVERY_TABLE_FAILED: builds started without redelivery detection';
