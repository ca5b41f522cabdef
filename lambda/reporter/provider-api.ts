import type { ReportProvider } from './routes';

/**
 * Calls to a Git host's API with the global `fetch` (Node 20+) and a timeout. Errors name the
 * provider, the method, the path and the status, never the URL's query (Backlog's `apiKey`) or a
 * header (the tokens).
 */

/** How long one API call may take before it counts as failed (and is retried). */
export const API_TIMEOUT_MS = 10_000;

/** A provider API call that failed; `retryable` when trying again later may help. */
export class ProviderApiError extends Error {
  constructor(
    readonly provider: ReportProvider,
    readonly status: number | undefined,
    readonly retryable: boolean,
    message: string,
  ) {
    super(message);
    this.name = 'ProviderApiError';
  }
}

export interface ApiRequest {
  readonly method: 'GET' | 'POST';
  /** The full URL, query included. */
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

/** What a failure status means for a retry: throttling, timeouts and server errors may pass. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Sends one request; answers the response for 2xx, throws `ProviderApiError` otherwise. */
export async function callApi(
  provider: ReportProvider,
  request: ApiRequest,
  timeoutMs = API_TIMEOUT_MS,
): Promise<{ status: number; body: string }> {
  const where = `${request.method} ${new URL(request.url).pathname}`;
  let response: Response;
  try {
    response = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const reason =
      (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : 'unreachable';
    throw new ProviderApiError(provider, undefined, true, `${provider} API ${where}: ${reason}`);
  }
  const body = await response.text();
  if (response.ok) return { status: response.status, body };
  throw new ProviderApiError(
    provider,
    response.status,
    isRetryableStatus(response.status),
    `${provider} API ${where}: HTTP ${response.status} ${summary(body)}`,
  );
}

/** The first line of an error body, short: enough to diagnose, too little to leak much. */
function summary(body: string): string {
  return body.split('\n')[0]?.slice(0, 200) ?? '';
}
