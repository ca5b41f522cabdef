import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BlockList, isIPv6 } from 'node:net';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';

/** A Lambda handler as API Gateway's proxy integration calls it. */
export type ProxyHandler = (event: APIGatewayProxyEvent, context: unknown) => Promise<APIGatewayProxyResult>;

export interface LocalApiGatewayOptions {
  /** The function behind `POST /{stage}/webhooks/{provider}`. */
  readonly handler: ProxyHandler;
  /** CIDRs (already expanded from presets) that the resource policy allows; others get 403. */
  readonly allowedCidrs: readonly string[];
  /** The stage name in the path, as the deployed API has it (WebhookReceiver's default). @default 'v1' */
  readonly stage?: string;
  /**
   * Treat requests as coming from this address instead of the socket's (tests use it to act as an
   * outside caller; the real API Gateway takes the caller's address from the connection).
   * @default the socket's remote address
   */
  readonly sourceIpHeader?: string;
  /** Called after each request with what the caller saw. */
  readonly onResponse?: (summary: { provider: string; status: number; body: string }) => void;
}

export interface LocalApiGateway {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** API Gateway rejects bodies over 10 MB before any integration runs. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;

/** Builds a Node `BlockList` that answers "is this address inside one of these CIDRs?". */
export function cidrMatcher(cidrs: readonly string[]): (address: string) => boolean {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [network = '', prefix] = cidr.split('/');
    const type = isIPv6(network) ? 'ipv6' : 'ipv4';
    list.addSubnet(network, Number(prefix ?? (type === 'ipv6' ? 128 : 32)), type);
  }
  return (address) => {
    const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
    return list.check(plain, isIPv6(plain) ? 'ipv6' : 'ipv4');
  };
}

/**
 * Turns an HTTP request into the REST API (v1) proxy event that API Gateway hands the webhook
 * function, with the body base64-encoded when it is not UTF-8 text, as API Gateway does for binary
 * media types.
 */
export function toProxyEvent(
  req: Pick<IncomingMessage, 'method' | 'url' | 'headers'>,
  body: Buffer,
  sourceIp: string,
  stage: string,
  provider: string,
): APIGatewayProxyEvent {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    const values = Array.isArray(value) ? value : [value];
    headers[name] = values.join(',');
    multiValueHeaders[name] = values;
  }
  const query: Record<string, string> = {};
  const multiQuery: Record<string, string[]> = {};
  for (const [name, value] of url.searchParams) {
    query[name] = value;
    multiQuery[name] = [...(multiQuery[name] ?? []), value];
  }
  const text = body.toString('utf8');
  const isText = Buffer.from(text, 'utf8').equals(body);
  const path = url.pathname.replace(new RegExp(`^/${stage}`), '');
  return {
    resource: '/webhooks/{provider}',
    path,
    httpMethod: req.method ?? 'GET',
    headers,
    multiValueHeaders,
    queryStringParameters: Object.keys(query).length > 0 ? query : null,
    multiValueQueryStringParameters: Object.keys(multiQuery).length > 0 ? multiQuery : null,
    pathParameters: { provider },
    stageVariables: null,
    body: body.length === 0 ? null : isText ? text : body.toString('base64'),
    isBase64Encoded: body.length > 0 && !isText,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      authorizer: null,
      protocol: 'HTTP/1.1',
      httpMethod: req.method ?? 'GET',
      identity: {
        accessKey: null,
        accountId: null,
        apiKey: null,
        apiKeyId: null,
        caller: null,
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp,
        user: null,
        userAgent: headers['user-agent'] ?? null,
        userArn: null,
      },
      path: url.pathname,
      stage,
      requestId: randomUUID(),
      requestTimeEpoch: Date.now(),
      resourceId: 'local',
      resourcePath: '/webhooks/{provider}',
    },
  };
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(body);
}

/**
 * A local stand-in for the REST API: only `POST /{stage}/webhooks/{provider}` reaches the function,
 * callers outside the allowlist get the 403 the resource policy's explicit deny produces, and
 * everything else gets API Gateway's own 403 "Missing Authentication Token".
 */
export async function startLocalApiGateway(options: LocalApiGatewayOptions): Promise<LocalApiGateway> {
  const stage = options.stage ?? 'v1';
  const allowed = cidrMatcher(options.allowedCidrs);
  const route = new RegExp(`^/${stage}/webhooks/([^/]+)$`);

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      void (async () => {
        const forwarded = options.sourceIpHeader ? req.headers[options.sourceIpHeader] : undefined;
        const sourceIp = (typeof forwarded === 'string' ? forwarded : req.socket.remoteAddress) ?? '';
        const match = route.exec(new URL(req.url ?? '/', 'http://localhost').pathname);
        const provider = match?.[1] ?? '';
        if (!match || req.method !== 'POST') {
          send(res, 403, JSON.stringify({ message: 'Missing Authentication Token' }));
          return;
        }
        if (!allowed(sourceIp)) {
          send(
            res,
            403,
            JSON.stringify({
              Message:
                'User: anonymous is not authorized to perform: execute-api:Invoke with an explicit deny',
            }),
          );
          return;
        }
        if (size > MAX_BODY_BYTES) {
          send(res, 413, JSON.stringify({ message: 'Request Too Long' }));
          return;
        }
        try {
          const event = toProxyEvent(req, Buffer.concat(chunks), sourceIp, stage, provider);
          const result = await options.handler(event, {});
          const headers = Object.fromEntries(
            Object.entries(result.headers ?? {}).map(([k, v]) => [k, String(v)] as const),
          );
          const body = result.isBase64Encoded
            ? Buffer.from(result.body, 'base64').toString('utf8')
            : result.body;
          send(res, result.statusCode, body, headers);
          options.onResponse?.({ provider, status: result.statusCode, body });
        } catch {
          // What API Gateway answers when the integration itself fails.
          send(res, 502, JSON.stringify({ message: 'Internal server error' }));
          options.onResponse?.({ provider, status: 502, body: '' });
        }
      })();
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/${stage}`,
    server,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
