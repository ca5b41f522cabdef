import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Local stand-ins for the AWS APIs the webhook function calls — CodeBuild, Secrets Manager, SQS
 * and DynamoDB — speaking their JSON protocols on one 127.0.0.1 port. Point the SDK at it with the
 * standard `AWS_ENDPOINT_URL_*` variables (`env` below) and the function runs unchanged: the
 * webhook tests use it, and so can a local run that really builds (plug in `onStartBuild`).
 */

/** The StartBuild input the server sees (the SDK's JSON, not its types, so callers need no SDK). */
export interface StartBuildCall {
  readonly projectName: string;
  readonly idempotencyToken?: string;
  readonly environmentVariablesOverride?: readonly { name: string; value: string; type?: string }[];
  readonly [field: string]: unknown;
}

/** A build as BatchGetBuilds reports it. */
export interface LocalBuild {
  id: string;
  arn: string;
  projectName: string;
  buildStatus: 'IN_PROGRESS' | 'SUCCEEDED' | 'FAILED' | 'STOPPED' | 'FAULT' | 'TIMED_OUT';
  startTime: number;
  endTime?: number;
  environment: { environmentVariables: { name: string; value: string; type: string }[] };
  [field: string]: unknown;
}

/** Throw this from `onStartBuild` to answer with an AWS error (e.g. `ThrottlingException`, 400). */
export class AwsServiceError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = type;
  }
}

/** Decides what a StartBuild does: return the build to report (the default just records it). */
export type StartBuildBehaviour = (call: StartBuildCall, build: LocalBuild) => void | Promise<void>;

export interface LocalAwsEndpointsOptions {
  /** Secret id (name or ARN) → SecretString. */
  readonly secrets?: Readonly<Record<string, string>>;
  readonly onStartBuild?: StartBuildBehaviour;
  /** @default 'us-east-1' */
  readonly region?: string;
}

export interface LocalAwsEndpoints {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** The variables that point the AWS SDK (v3) at this server, with dummy credentials. */
  readonly env: Readonly<Record<string, string>>;
  /** A queue URL on this server, for `RETRY_QUEUE_URL`. */
  readonly queueUrl: string;
  readonly secrets: Map<string, string>;
  /** Every StartBuild call, in order, including ones answered with an error. */
  readonly startBuildCalls: StartBuildCall[];
  readonly builds: Map<string, LocalBuild>;
  /** Every SQS SendMessage. */
  readonly sentMessages: { queueUrl: string; body: string }[];
  /** Every SQS ChangeMessageVisibility: how long the consumer asked SQS to hide a message it failed. */
  readonly visibilityChanges: { receiptHandle: string; visibilityTimeout: number }[];
  /** Replaces what StartBuild does from now on. */
  onStartBuild(behaviour: StartBuildBehaviour | undefined): void;
  close(): Promise<void>;
}

type AttributeMap = Record<string, Record<string, unknown>>;
type JsonBody = Record<string, unknown>;

export async function startLocalAwsEndpoints(
  options: LocalAwsEndpointsOptions = {},
): Promise<LocalAwsEndpoints> {
  const region = options.region ?? 'us-east-1';
  const secrets = new Map(Object.entries(options.secrets ?? {}));
  const startBuildCalls: StartBuildCall[] = [];
  const builds = new Map<string, LocalBuild>();
  const buildsByToken = new Map<string, LocalBuild>();
  const sentMessages: { queueUrl: string; body: string }[] = [];
  const visibilityChanges: { receiptHandle: string; visibilityTimeout: number }[] = [];
  const tables = new Map<string, Map<string, AttributeMap>>();
  let behaviour = options.onStartBuild;

  const operations: Record<string, (input: JsonBody) => Promise<JsonBody> | JsonBody> = {
    'CodeBuild_20161006.StartBuild': async (input) => {
      const call = input as unknown as StartBuildCall;
      startBuildCalls.push(call);
      const token = call.idempotencyToken;
      const known = token ? buildsByToken.get(token) : undefined;
      if (known) return { build: known };
      const id = `${call.projectName}:${randomUUID()}`;
      const build: LocalBuild = {
        id,
        arn: `arn:aws:codebuild:${region}:000000000000:build/${id}`,
        projectName: call.projectName,
        buildStatus: 'IN_PROGRESS',
        startTime: Date.now() / 1000,
        environment: {
          environmentVariables: (call.environmentVariablesOverride ?? []).map((v) => ({
            name: v.name,
            value: v.value,
            type: v.type ?? 'PLAINTEXT',
          })),
        },
      };
      await behaviour?.(call, build);
      builds.set(id, build);
      if (token) buildsByToken.set(token, build);
      return { build };
    },
    'CodeBuild_20161006.BatchGetBuilds': (input) => {
      const ids = (input.ids as string[] | undefined) ?? [];
      return {
        builds: ids.flatMap((id) => builds.get(id) ?? []),
        buildsNotFound: ids.filter((id) => !builds.has(id)),
      };
    },
    'secretsmanager.GetSecretValue': (input) => {
      const id = String(input.SecretId);
      const value = secrets.get(id);
      if (value === undefined)
        throw new AwsServiceError(
          'ResourceNotFoundException',
          `Secrets Manager can't find the secret ${id}.`,
        );
      return { ARN: id, Name: id, SecretString: value, VersionId: 'local', VersionStages: ['AWSCURRENT'] };
    },
    'secretsmanager.PutSecretValue': (input) => {
      secrets.set(String(input.SecretId), String(input.SecretString));
      return { ARN: input.SecretId, Name: input.SecretId, VersionId: randomUUID() };
    },
    'AmazonSQS.SendMessage': (input) => {
      const body = String(input.MessageBody);
      sentMessages.push({ queueUrl: String(input.QueueUrl), body });
      return { MessageId: randomUUID(), MD5OfMessageBody: createHash('md5').update(body).digest('hex') };
    },
    'AmazonSQS.ChangeMessageVisibility': (input) => {
      visibilityChanges.push({
        receiptHandle: String(input.ReceiptHandle),
        visibilityTimeout: Number(input.VisibilityTimeout),
      });
      return {};
    },
    'DynamoDB_20120810.GetItem': (input) => {
      const item = table(input).get(keyOf(input.Key as AttributeMap));
      return item ? { Item: item } : {};
    },
    'DynamoDB_20120810.PutItem': (input) => {
      const items = table(input);
      const item = input.Item as AttributeMap;
      const existing = items.get(keyOf(item, input.Key as AttributeMap | undefined));
      if (existing && input.ConditionExpression && !canOverwrite(existing, input)) {
        throw Object.assign(
          new AwsServiceError('ConditionalCheckFailedException', 'The conditional request failed'),
          {
            extra: input.ReturnValuesOnConditionCheckFailure === 'ALL_OLD' ? { Item: existing } : {},
          },
        );
      }
      items.set(keyOf(item), item);
      return {};
    },
    'DynamoDB_20120810.UpdateItem': (input) => {
      const items = table(input);
      const key = input.Key as AttributeMap;
      const item: AttributeMap = { ...(items.get(keyOf(key)) ?? key) };
      const names = (input.ExpressionAttributeNames ?? {}) as Record<string, string>;
      const values = (input.ExpressionAttributeValues ?? {}) as AttributeMap;
      const assignments = String(input.UpdateExpression ?? '').replace(/^\s*SET\s+/i, '');
      for (const assignment of assignments.split(',')) {
        const [name, value] = assignment.split('=').map((s) => s.trim());
        const attribute = name && (names[name] ?? name);
        const attributeValue = value ? values[value] : undefined;
        if (attribute && attributeValue) item[attribute] = attributeValue;
      }
      items.set(keyOf(key), item);
      return {};
    },
    'DynamoDB_20120810.DeleteItem': (input) => {
      table(input).delete(keyOf(input.Key as AttributeMap));
      return {};
    },
  };

  function table(input: JsonBody): Map<string, AttributeMap> {
    const name = String(input.TableName);
    let items = tables.get(name);
    if (!items) {
      items = new Map();
      tables.set(name, items);
    }
    return items;
  }

  const server: Server = createServer((req, res) => {
    void handle(req, res);
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const target = String(req.headers['x-amz-target'] ?? '');
    const contentType =
      target.startsWith('CodeBuild') || target.startsWith('secretsmanager')
        ? 'application/x-amz-json-1.1'
        : 'application/x-amz-json-1.0';
    const operation = operations[target];
    try {
      if (!operation) throw new AwsServiceError('UnknownOperationException', `not served locally: ${target}`);
      const text = Buffer.concat(chunks).toString('utf8');
      const output = await operation(text ? (JSON.parse(text) as JsonBody) : {});
      res.writeHead(200, { 'content-type': contentType }).end(JSON.stringify(output));
    } catch (err) {
      const error =
        err instanceof AwsServiceError ? err : new AwsServiceError('InternalFailure', String(err), 500);
      const extra = (err as { extra?: JsonBody }).extra ?? {};
      res
        .writeHead(error.status, { 'content-type': contentType, 'x-amzn-errortype': error.type })
        .end(JSON.stringify({ __type: error.type, message: error.message, ...extra }));
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    env: {
      AWS_REGION: region,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_ENDPOINT_URL_CODEBUILD: url,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: url,
      AWS_ENDPOINT_URL_SQS: url,
      AWS_ENDPOINT_URL_DYNAMODB: url,
    },
    queueUrl: `${url}/000000000000/pushline-build-retry`,
    secrets,
    startBuildCalls,
    builds,
    sentMessages,
    visibilityChanges,
    onStartBuild(next) {
      behaviour = next;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/** The table key: this stand-in only serves tables keyed by one attribute, as the dedupe table is. */
function keyOf(item: AttributeMap, key?: AttributeMap): string {
  const id = (key ?? item).id;
  return JSON.stringify(id);
}

/**
 * Powertools Idempotency's put condition: the record may be overwritten when it has expired, or
 * when it is still IN_PROGRESS past its in-progress expiry (the earlier invocation died).
 */
function canOverwrite(existing: AttributeMap, input: JsonBody): boolean {
  const values = (input.ExpressionAttributeValues ?? {}) as AttributeMap;
  const now = Number(values[':now']?.N ?? Date.now() / 1000);
  const nowMillis = Number(values[':now_in_millis']?.N ?? Date.now());
  const expiry = Number(existing.expiration?.N ?? Number.POSITIVE_INFINITY);
  if (expiry < now) return true;
  const inProgressExpiry = existing.in_progress_expiration?.N;
  return (
    existing.status?.S === 'INPROGRESS' &&
    inProgressExpiry !== undefined &&
    Number(inProgressExpiry) < nowMillis
  );
}
