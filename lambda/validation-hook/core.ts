/**
 * The check a CodeDeploy `AfterAllowTestTraffic` hook runs: one request to the new task set through
 * the test listener, compared with the status the config expects. Pure apart from the injected
 * `fetch`, so it is tested against local servers with no AWS.
 */

export interface CheckSettings {
  /** The test listener URL of the path to request, e.g. `http://<load balancer>:8080/health`. */
  readonly url: string;
  /** The HTTP status that means the new version is good. */
  readonly expectStatus: number;
  /** How long to wait for the answer before calling the check failed. */
  readonly timeoutMs: number;
}

export type HookStatus = 'Succeeded' | 'Failed';

export interface CheckResult {
  readonly status: HookStatus;
  /** What was called and what came back, for the function's log. */
  readonly summary: string;
}

/** Reads the settings from the function's environment; a missing or bad value is a deploy mistake. */
export function settingsFromEnvironment(env: Readonly<Record<string, string | undefined>>): CheckSettings {
  const url = env.TEST_URL ?? '';
  const expectStatus = Number(env.EXPECT_STATUS);
  const timeoutMs = Number(env.TIMEOUT_MS);
  if (!/^https?:\/\//.test(url)) throw new Error(`TEST_URL must be an http(s) URL, got "${url}"`);
  if (!Number.isInteger(expectStatus) || expectStatus < 100 || expectStatus > 599)
    throw new Error(`EXPECT_STATUS must be an HTTP status, got "${env.EXPECT_STATUS ?? ''}"`);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1)
    throw new Error(`TIMEOUT_MS must be a positive number of milliseconds, got "${env.TIMEOUT_MS ?? ''}"`);
  return { url, expectStatus, timeoutMs };
}

/** Requests the URL once and decides. Never throws: every outcome is a hook status. */
export async function checkNewVersion(
  settings: CheckSettings,
  fetchFn: typeof fetch = fetch,
): Promise<CheckResult> {
  const started = Date.now();
  const called = `GET ${settings.url} (expecting ${settings.expectStatus})`;
  try {
    const response = await fetchFn(settings.url, {
      method: 'GET',
      redirect: 'manual',
      signal: AbortSignal.timeout(settings.timeoutMs),
    });
    // Drain the body so the connection closes; its content is not logged (it may hold anything).
    await response.arrayBuffer().catch(() => undefined);
    const elapsed = Date.now() - started;
    const status: HookStatus = response.status === settings.expectStatus ? 'Succeeded' : 'Failed';
    return { status, summary: `${called}: answered ${response.status} after ${elapsed} ms` };
  } catch (err) {
    const elapsed = Date.now() - started;
    // Not `instanceof`: fetch's abort errors are DOMExceptions, which need not share this realm's Error.
    const { name, message, cause } = (err ?? {}) as {
      name?: string;
      message?: string;
      cause?: { message?: string };
    };
    const reason =
      name === 'TimeoutError' || name === 'AbortError'
        ? `no answer within ${settings.timeoutMs} ms`
        : `request failed (${cause?.message ?? message ?? String(err)})`;
    return { status: 'Failed', summary: `${called}: ${reason} after ${elapsed} ms` };
  }
}
