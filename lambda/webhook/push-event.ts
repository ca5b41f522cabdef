/** The providers a webhook URL can name; the last path segment of `/webhooks/{provider}`. */
export const WEBHOOK_PROVIDERS = ['backlog', 'github', 'gitlab'] as const;
export type WebhookProvider = (typeof WEBHOOK_PROVIDERS)[number];

export function isWebhookProvider(value: string): value is WebhookProvider {
  return (WEBHOOK_PROVIDERS as readonly string[]).includes(value);
}

/** One HTTP delivery as the function sees it, whatever API Gateway did to it (base64, header case). */
export interface WebhookRequest {
  readonly provider: string;
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  readonly query: Readonly<Record<string, string>>;
  /** The raw bytes the provider sent; GitHub signs exactly these. */
  readonly body: Buffer;
}

/** A push, normalized across providers: what routing and StartBuild need, nothing more. */
export interface PushEvent {
  readonly provider: WebhookProvider;
  /** Backlog `PROJECT/repo`, GitHub `owner/name`, GitLab `group/project`. */
  readonly repository: string;
  /** The full ref, `refs/heads/main` or `refs/tags/v1.0.0`. */
  readonly ref: string;
  readonly refType: 'branch' | 'tag';
  /** The ref without its `refs/heads/` or `refs/tags/` prefix. */
  readonly refName: string;
  readonly before: string;
  readonly after: string;
  /** The full 40-hex SHA of the commit to build (for an annotated tag, the commit it points to). */
  readonly commit: string;
  readonly deleted: boolean;
  /**
   * Paths the push changed, when the provider lists them all. Undefined when it does not (or caps
   * the list), so that a path filter builds rather than skips.
   */
  readonly changedPaths?: readonly string[];
  /** The provider's id of this delivery; a redelivery carries the same one. */
  readonly deliveryId: string;
  readonly pusher?: string;
}

/** What an adapter makes of an authenticated body. */
export type ParseResult =
  | { readonly kind: 'push'; readonly event: PushEvent }
  | { readonly kind: 'ignored'; readonly reason: string }
  | { readonly kind: 'invalid'; readonly reason: string };

export const ZERO_SHA = '0000000000000000000000000000000000000000';

/** An adapter's push, with the optional fields left out where the provider did not send them. */
export function parsedPush({
  changedPaths,
  pusher,
  ...event
}: Omit<PushEvent, 'changedPaths' | 'pusher'> & {
  readonly changedPaths: readonly string[] | undefined;
  readonly pusher: string | undefined;
}): ParseResult {
  return {
    kind: 'push',
    event: { ...event, ...(changedPaths ? { changedPaths } : {}), ...(pusher ? { pusher } : {}) },
  };
}
const SHA = /^[0-9a-f]{40}$/;

export function isSha(value: unknown): value is string {
  return typeof value === 'string' && SHA.test(value);
}

/** The media type of a Content-Type header, lower case, without parameters. */
export function mediaType(headers: Readonly<Record<string, string>>): string {
  return (headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses JSON text, answering undefined rather than throwing. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Splits a full ref into its kind and name; undefined for refs that are neither branch nor tag. */
export function splitRef(ref: unknown): { refType: 'branch' | 'tag'; refName: string } | undefined {
  if (typeof ref !== 'string') return undefined;
  if (ref.startsWith('refs/heads/') && ref.length > 11) return { refType: 'branch', refName: ref.slice(11) };
  if (ref.startsWith('refs/tags/') && ref.length > 10) return { refType: 'tag', refName: ref.slice(10) };
  return undefined;
}

/**
 * The union of the files the listed commits added, removed or modified, or undefined when a
 * commit lacks the lists (the caller then builds instead of filtering).
 */
export function changedPathsOf(commits: readonly unknown[]): string[] | undefined {
  const paths = new Set<string>();
  for (const commit of commits) {
    if (!isObject(commit)) return undefined;
    for (const field of ['added', 'removed', 'modified']) {
      const list = commit[field];
      if (list === undefined) continue;
      if (!Array.isArray(list)) return undefined;
      for (const path of list) if (typeof path === 'string') paths.add(path);
    }
  }
  return [...paths];
}
