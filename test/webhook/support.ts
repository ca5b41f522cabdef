import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { giteaSignature, githubSignature } from '../../lambda/webhook/auth';
import { compileRoutes } from '../../lambda/webhook/compile-routes';
import type { WebhookProvider } from '../../lambda/webhook/push-event';
import { parseConfig } from '../../lib/config/load';
import { webhookRoutes } from '../../lib/shared-stack';
import { ROOT } from '../support/app';

/** The webhook secret the tests' Secrets Manager holds. */
export const SECRET = {
  backlog: 'backlog-url-token-4f1c9a',
  github: 'github-hmac-secret-8e2d7b',
  gitlab: 'gitlab-secret-token-3a6f0c',
  bitbucket: 'bitbucket-hmac-secret-5c7e1d',
  gitea: 'gitea-hmac-secret-9b4a2f',
} as const;

export const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:pushline-webhook-AbCdEf';

/** Repositories matching the fixtures' repositories, routed through the real config → routes path. */
export const TEST_CONFIG = parseConfig(`
name: pushline
webhook:
  allowedCidrs: [github-hooks]
repositories:
  - name: hello-world
    source: { provider: github, repository: Codertocat/Hello-World, cloneUrl: "git@github.com:Codertocat/Hello-World.git" }
    branches: [master]
    tags: ["simple-*"]
  - name: diaspora
    source: { provider: gitlab, repository: mike/diaspora, cloneUrl: "git@example.com:mike/diaspora.git", host: example.com, knownHosts: ["example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf"] }
    branches: [master, "feature/**"]
  - name: example
    source: { provider: gitlab, repository: jsmith/example, cloneUrl: "git@example.com:jsmith/example.git", host: example.com, knownHosts: ["example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf"] }
    tags: ["v*"]
  - name: shop-api
    source: { provider: backlog, repository: SHOP/api, cloneUrl: "example@example.git.backlog.jp:/SHOP/api.git" }
    branches: [main, "release/*"]
    tags: ["v*"]
    paths: ["docker/**", "src/**"]
  - name: hello-world-ghes
    source:
      provider: github
      host: ghes.example.co.jp
      repository: Codertocat/Hello-World
      cloneUrl: "git@ghes.example.co.jp:Codertocat/Hello-World.git"
      knownHosts: ["ghes.example.co.jp ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"]
    branches: [master]
  - name: shop-api-onprem
    source:
      provider: backlog
      repository: SHOP/api
      cloneUrl: "ssh://git@backlog.example.jp:8972/SHOP/api.git"
      knownHosts: ["[backlog.example.jp]:8972 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf"]
      apiUrl: http://backlog.example.jp:8969/backlog
    branches: [main]
  - name: bitbucket-app
    source: { provider: bitbucket, repository: team_name/repo_name, cloneUrl: "git@bitbucket.org:team_name/repo_name.git" }
    branches: [name-of-branch, main]
    tags: ["v*"]
  - name: gitea-app
    source:
      provider: gitea
      repository: example/example
      cloneUrl: "ssh://git@localhost:2222/example/example.git"
      knownHosts: ["[localhost]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf"]
    branches: [master]
`);

export const TEST_ROUTES_JSON = JSON.stringify(compileRoutes(webhookRoutes(TEST_CONFIG)));

export function fixtureText(provider: WebhookProvider, name: string): string {
  return readFileSync(join(ROOT, 'test', 'fixtures', provider, name), 'utf8');
}

export function fixture(provider: WebhookProvider, name: string): Record<string, unknown> {
  return JSON.parse(fixtureText(provider, name)) as Record<string, unknown>;
}

interface RawDelivery {
  readonly provider: string;
  readonly headers?: Record<string, string>;
  readonly query?: Record<string, string>;
  readonly body: string | Buffer;
  readonly base64?: boolean;
}

/** An API Gateway proxy event for a delivery, as API Gateway builds it. */
export function apiEvent(delivery: RawDelivery): APIGatewayProxyEvent {
  const body = Buffer.isBuffer(delivery.body) ? delivery.body : Buffer.from(delivery.body, 'utf8');
  return {
    resource: '/webhooks/{provider}',
    path: `/webhooks/${delivery.provider}`,
    httpMethod: 'POST',
    headers: delivery.headers ?? {},
    multiValueHeaders: {},
    queryStringParameters: delivery.query ?? null,
    multiValueQueryStringParameters: null,
    pathParameters: { provider: delivery.provider },
    stageVariables: null,
    requestContext: {} as APIGatewayProxyEvent['requestContext'],
    body: delivery.base64 ? body.toString('base64') : body.toString('utf8'),
    isBase64Encoded: delivery.base64 ?? false,
  };
}

export interface GithubOptions {
  readonly event?: string;
  readonly deliveryId?: string;
  readonly secret?: string;
  /** Overrides the computed signature. */
  readonly signature?: string | null;
  readonly form?: boolean;
  readonly base64?: boolean;
}

/** A GitHub delivery: JSON (or form) body signed with HMAC-SHA256 over the exact bytes sent. */
export function githubDelivery(payload: unknown, options: GithubOptions = {}): APIGatewayProxyEvent {
  const json = typeof payload === 'string' ? payload : (JSON.stringify(payload) ?? '');
  const body = options.form ? `payload=${encodeURIComponent(json)}` : json;
  const signature =
    options.signature === undefined
      ? githubSignature(body, options.secret ?? SECRET.github)
      : options.signature;
  return apiEvent({
    provider: 'github',
    headers: {
      'Content-Type': options.form ? 'application/x-www-form-urlencoded' : 'application/json',
      'User-Agent': 'GitHub-Hookshot/044aadd',
      'X-GitHub-Event': options.event ?? 'push',
      'X-GitHub-Delivery': options.deliveryId ?? '72d3162e-cc78-11e3-81ab-4c9367dc0958',
      ...(signature === null ? {} : { 'X-Hub-Signature-256': signature }),
    },
    body,
    base64: options.base64,
  });
}

export function gitlabDelivery(
  payload: unknown,
  options: { hook?: string; token?: string | null; uuid?: string } = {},
): APIGatewayProxyEvent {
  const token = options.token === undefined ? SECRET.gitlab : options.token;
  return apiEvent({
    provider: 'gitlab',
    headers: {
      'Content-Type': 'application/json',
      'X-Gitlab-Event': options.hook ?? 'Push Hook',
      'X-Gitlab-Event-UUID': options.uuid ?? '13792a34-cac6-4fda-95a8-c58e00a3954e',
      ...(token === null ? {} : { 'X-Gitlab-Token': token }),
    },
    body: typeof payload === 'string' ? payload : (JSON.stringify(payload) ?? ''),
  });
}

/** A Backlog delivery: `payload=<JSON>` form-encoded, the token in the URL. */
export function backlogDelivery(
  payload: unknown,
  options: { token?: string | null; base64?: boolean } = {},
): APIGatewayProxyEvent {
  const token = options.token === undefined ? SECRET.backlog : options.token;
  const json = typeof payload === 'string' ? payload : (JSON.stringify(payload) ?? '');
  return apiEvent({
    provider: 'backlog',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    query: token === null ? {} : { token },
    body: new URLSearchParams({ payload: json }).toString(),
    base64: options.base64,
  });
}

function jsonBody(payload: unknown): string {
  return typeof payload === 'string' ? payload : (JSON.stringify(payload) ?? '');
}

/** A Bitbucket Cloud delivery: JSON signed like GitHub's, in X-Hub-Signature. */
export function bitbucketDelivery(
  payload: unknown,
  options: { eventKey?: string; uuid?: string; secret?: string; signature?: string | null } = {},
): APIGatewayProxyEvent {
  const body = jsonBody(payload);
  const signature =
    options.signature === undefined
      ? githubSignature(body, options.secret ?? SECRET.bitbucket)
      : options.signature;
  return apiEvent({
    provider: 'bitbucket',
    headers: {
      'Content-Type': 'application/json',
      'User-Agent': 'Bitbucket-Webhooks/2.0',
      'X-Event-Key': options.eventKey ?? 'repo:push',
      'X-Request-UUID': options.uuid ?? 'afe2ff0b-29a6-4b52-9a1d-1d9e0c2b4c11',
      'X-Hook-UUID': '{1a2b3c4d-0000-4000-8000-000000000001}',
      ...(signature === null ? {} : { 'X-Hub-Signature': signature }),
    },
    body,
  });
}

/** A Gitea delivery, or a Forgejo one (`forgejo`: its own headers next to Gitea's). */
export function giteaDelivery(
  payload: unknown,
  options: {
    event?: string;
    delivery?: string;
    secret?: string;
    signature?: string | null;
    forgejo?: boolean;
  } = {},
): APIGatewayProxyEvent {
  const body = jsonBody(payload);
  const signature =
    options.signature === undefined
      ? giteaSignature(body, options.secret ?? SECRET.gitea)
      : options.signature;
  const event = options.event ?? 'push';
  const delivery = options.delivery ?? '5a4b2d8e-1f3c-4e6a-9b7d-0c2e4f6a8b1d';
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    'X-Gitea-Event': event,
    'X-Gitea-Delivery': delivery,
  };
  if (signature !== null) headers['X-Gitea-Signature'] = signature;
  if (options.forgejo) {
    headers['X-Forgejo-Event'] = event;
    headers['X-Forgejo-Delivery'] = delivery;
    if (signature !== null) headers['X-Forgejo-Signature'] = signature;
  }
  return apiEvent({
    provider: 'gitea',
    headers,
    body,
  });
}

export const LAMBDA_CONTEXT = {
  functionName: 'pushline-webhook',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:pushline-webhook',
  memoryLimitInMB: '256',
  awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e8deadbeef',
  logGroupName: '/aws/lambda/pushline-webhook',
  logStreamName: '2026/11/25/[$LATEST]abcdef',
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 29_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
} as Context;

export type WebhookHandler = (
  event: APIGatewayProxyEvent,
  context: Context,
) => Promise<APIGatewayProxyResult>;

export function bodyOf(result: APIGatewayProxyResult): Record<string, unknown> {
  return JSON.parse(result.body) as Record<string, unknown>;
}
