import { NodeHttpHandler } from '@smithy/node-http-handler';

/**
 * How long one AWS call of the webhook path may take, so that the answer leaves well inside the
 * 10 seconds GitHub and GitLab wait ("Handling failed webhook deliveries", GitHub Docs,
 * https://docs.github.com/en/webhooks/using-webhooks/handling-failed-webhook-deliveries) even when
 * a service accepts the connection and never answers.
 *
 * `requestTimeout` in `@smithy/node-http-handler` 4.x only logs a warning and keeps waiting unless
 * `throwOnRequestTimeout` is set (see its `setRequestTimeout`), so both are set. One call costs at
 * most `maxAttempts × (connectionTimeout + requestTimeout)` plus the SDK's backoff between tries.
 */
export interface ClientBounds {
  /** Time to open the TCP connection. */
  readonly connectionTimeoutMs: number;
  /** Time from sending a request to its complete answer, per attempt. */
  readonly requestTimeoutMs: number;
  /** Tries per call, the first included. */
  readonly maxAttempts: number;
}

/** Production defaults: a healthy StartBuild, GetSecretValue, PutItem or SendMessage answers in well under a second. */
export const DEFAULT_CLIENT_BOUNDS: ClientBounds = {
  connectionTimeoutMs: 1000,
  requestTimeoutMs: 1500,
  maxAttempts: 2,
};

/**
 * The bounds from `PUSHLINE_AWS_CONNECT_TIMEOUT_MS`, `PUSHLINE_AWS_REQUEST_TIMEOUT_MS` and
 * `PUSHLINE_AWS_MAX_ATTEMPTS` (tests shorten them), else the defaults.
 */
export function clientBounds(env: NodeJS.ProcessEnv = process.env): ClientBounds {
  return {
    connectionTimeoutMs: positive(
      env.PUSHLINE_AWS_CONNECT_TIMEOUT_MS,
      DEFAULT_CLIENT_BOUNDS.connectionTimeoutMs,
    ),
    requestTimeoutMs: positive(env.PUSHLINE_AWS_REQUEST_TIMEOUT_MS, DEFAULT_CLIENT_BOUNDS.requestTimeoutMs),
    maxAttempts: positive(env.PUSHLINE_AWS_MAX_ATTEMPTS, DEFAULT_CLIENT_BOUNDS.maxAttempts),
  };
}

/** The SDK v3 client configuration for those bounds (endpoints still come from `AWS_ENDPOINT_URL_*`). */
export function boundedClientConfig(bounds: ClientBounds = clientBounds()) {
  return {
    maxAttempts: bounds.maxAttempts,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: bounds.connectionTimeoutMs,
      requestTimeout: bounds.requestTimeoutMs,
      throwOnRequestTimeout: true,
    }),
  };
}

function positive(value: string | undefined, fallback: number): number {
  const parsed = Number(value);
  return value !== undefined && Number.isInteger(parsed) && parsed > 0 ? parsed : fallback;
}
