import * as z from 'zod/mini';

/** The providers a webhook URL can name; the last path segment of `/webhooks/{provider}`. */
export const WEBHOOK_PROVIDERS = ['backlog', 'github', 'gitlab', 'bitbucket', 'gitea'] as const;
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
  /**
   * The Git server's host name, lower case, from the repository URLs in the payload
   * (`github.com`, `ghes.example.co.jp`, `space.backlog.jp`): the same path on two servers is two
   * repositories.
   */
  readonly host: string;
  /** Backlog `PROJECT/repo`, GitHub `owner/name`, GitLab `group/project`, Bitbucket `workspace/repo`, Gitea `owner/name`. */
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
  /** A delivery that changed several refs at once (Bitbucket `push.changes[]`): one event per ref. */
  | { readonly kind: 'pushes'; readonly events: readonly PushEvent[] }
  | { readonly kind: 'ignored'; readonly reason: string }
  | { readonly kind: 'invalid'; readonly reason: string };

export const ZERO_SHA = '0000000000000000000000000000000000000000';

/**
 * An adapter's push, with the optional fields left out where the provider did not send them. A
 * delivery without the provider's delivery id is identified by the push itself (repository, ref,
 * before and after), which a redelivery of it repeats.
 */
export function parsedPush({
  changedPaths,
  pusher,
  deliveryId,
  ...event
}: Omit<PushEvent, 'changedPaths' | 'pusher' | 'deliveryId'> & {
  readonly changedPaths: readonly string[] | undefined;
  readonly pusher: string | undefined;
  readonly deliveryId: string | undefined;
}): ParseResult {
  return {
    kind: 'push',
    event: {
      ...event,
      deliveryId: deliveryId ?? `${event.repository}:${event.ref}:${event.before}:${event.after}`,
      ...(changedPaths ? { changedPaths } : {}),
      ...(pusher ? { pusher } : {}),
    },
  };
}
const SHA = /^[0-9a-f]{40}$/;

/** A full 40-hex commit SHA. */
export const commitSha = z.string().check(z.regex(SHA, 'must be a 40-hex commit SHA'));

/** A branch or tag ref; notes, merge requests and other refs are refused as malformed. */
export const gitRef = z
  .string()
  .check(z.regex(/^refs\/(heads|tags)\/./, 'must be refs/heads/<branch> or refs/tags/<tag>'));

export const nonEmpty = z.string().check(z.minLength(1, 'must not be empty'));

/** An absolute http(s) URL; the host of a repository's web URL identifies its server. */
export const webUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

const pathList = z.optional(z.array(z.string()));

/** A listed commit's changed files, where the provider lists them. */
export const commitFiles = z.object({ added: pathList, removed: pathList, modified: pathList });

/**
 * Validates a decoded payload against its provider's schema. Every field pushline reads must have
 * its documented type, or the delivery is malformed: the reason names the first wrong field.
 */
export function parsePayload<T>(
  schema: z.ZodMiniType<T>,
  value: unknown,
): { readonly data: T } | { readonly reason: string } {
  const result = schema.safeParse(value);
  if (result.success) return { data: result.data };
  const issue = result.error.issues[0];
  if (!issue) return { reason: 'payload does not match the provider schema' };
  const where = issue.path.reduce<string>(
    (out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)),
    '',
  );
  return { reason: `${where || 'payload'}: ${describeIssue(issue)}` };
}

function describeIssue(issue: z.core.$ZodIssue): string {
  // Type errors are worded here; every other check carries its own message. zod/mini loads no locale,
  // so its default would be a bare "Invalid input" (and another wording wherever the full zod is loaded).
  if (issue.code !== 'invalid_type') return issue.message;
  if (issue.expected === 'array') return 'must be a list';
  return `must be ${/^[aeiou]/.test(issue.expected) ? 'an' : 'a'} ${issue.expected}`;
}

/** The host name of a web URL the schema already checked, lower case. */
export function hostOf(url: string): string {
  return new URL(url).hostname.toLowerCase();
}

/** The media type of a Content-Type header, lower case, without parameters. */
export function mediaType(headers: Readonly<Record<string, string>>): string {
  return (headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The JSON object of a body posted as JSON or as a form with one `payload` field (GitHub and Gitea
 * offer both), or the reason it is not one.
 */
export function jsonOrFormPayload(request: WebhookRequest): Record<string, unknown> | string {
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

/** Parses JSON text, answering undefined rather than throwing. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Splits a full ref (already checked by `gitRef`) into its kind and name. */
export function splitRef(ref: string): { refType: 'branch' | 'tag'; refName: string } {
  return ref.startsWith('refs/heads/')
    ? { refType: 'branch', refName: ref.slice(11) }
    : { refType: 'tag', refName: ref.slice(10) };
}

/** The union of the files the listed commits added, removed or modified. */
export function changedPathsOf(commits: readonly z.infer<typeof commitFiles>[]): string[] {
  const paths = new Set<string>();
  for (const commit of commits) {
    for (const list of [commit.added, commit.removed, commit.modified])
      for (const path of list ?? []) paths.add(path);
  }
  return [...paths];
}
