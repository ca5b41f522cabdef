import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { WebhookProvider, WebhookRequest } from './push-event';

/** The webhook secret: one value per provider, `{"backlog": …, "github": …, "gitlab": …}`. */
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
 * `X-Gitlab-Token`.
 */
export function isAuthentic(provider: WebhookProvider, request: WebhookRequest, secret: string): boolean {
  if (secret.length === 0) return false;
  switch (provider) {
    case 'backlog':
      return constantTimeEqual(request.query.token ?? '', secret);
    case 'gitlab':
      return constantTimeEqual(request.headers['x-gitlab-token'] ?? '', secret);
    case 'github': {
      const signature = request.headers['x-hub-signature-256'] ?? '';
      const expected = `sha256=${createHmac('sha256', secret).update(request.body).digest('hex')}`;
      return constantTimeEqual(signature.toLowerCase(), expected);
    }
  }
}

/** Signs a body the way GitHub does; for tests, the bench and local runs. */
export function githubSignature(body: Buffer | string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}
