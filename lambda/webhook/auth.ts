import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { WebhookProvider, WebhookRequest } from './push-event';

/** The webhook secret: one value per provider, `{"backlog": …, "github": …, "gitlab": …, "bitbucket": …, "gitea": …}`. */
export type WebhookSecret = Partial<Record<WebhookProvider, string>>;

/**
 * Compares two strings in time that depends on neither their content nor their lengths: both
 * sides are hashed first, so `timingSafeEqual` always sees equal-length inputs.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const digestA = createHash('sha256').update(a, 'utf8').digest();
  const digestB = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(digestA, digestB);
}

/**
 * Checks a delivery's credential against the provider's secret value, before anything of the body
 * is parsed: Backlog's `?token=`, GitHub's `X-Hub-Signature-256` over the raw bytes, GitLab's
 * `X-Gitlab-Token`, Bitbucket's `X-Hub-Signature`, Gitea's and Forgejo's signature headers.
 */
export function isAuthentic(provider: WebhookProvider, request: WebhookRequest, secret: string): boolean {
  if (secret.length === 0) return false;
  switch (provider) {
    case 'backlog':
      return constantTimeEqual(request.query.token ?? '', secret);
    case 'gitlab':
      return constantTimeEqual(request.headers['x-gitlab-token'] ?? '', secret);
    case 'github':
      return constantTimeEqual(
        (request.headers['x-hub-signature-256'] ?? '').toLowerCase(),
        githubSignature(request.body, secret),
      );
    // Bitbucket Cloud signs like GitHub, in X-Hub-Signature ("Manage webhooks", Secure webhooks:
    // https://support.atlassian.com/bitbucket-cloud/docs/manage-webhooks/).
    case 'bitbucket':
      return constantTimeEqual(
        (request.headers['x-hub-signature'] ?? '').toLowerCase(),
        githubSignature(request.body, secret),
      );
    // Gitea sends the bare hex HMAC-SHA256 of the body in X-Gitea-Signature ("Webhooks":
    // https://docs.gitea.com/features/webhooks); Forgejo in X-Forgejo-Signature, and the same value
    // in X-Gitea-Signature for compatibility. When Forgejo's header is there, it is the one checked.
    case 'gitea': {
      const signature = request.headers['x-forgejo-signature'] ?? request.headers['x-gitea-signature'] ?? '';
      return constantTimeEqual(signature.toLowerCase(), giteaSignature(request.body, secret));
    }
  }
}

/** Signs a body the way Gitea and Forgejo do: hex HMAC-SHA256, no prefix. */
export function giteaSignature(body: Buffer | string, secret: string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/** Signs a body the way GitHub (and Bitbucket Cloud) does: `sha256=` and the hex HMAC-SHA256. */
export function githubSignature(body: Buffer | string, secret: string): string {
  return `sha256=${giteaSignature(body, secret)}`;
}
