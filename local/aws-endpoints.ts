import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import dynalite from 'dynalite';

/**
 * Local stand-ins for the AWS APIs the webhook function calls — CodeBuild, Secrets Manager, SQS
 * and DynamoDB — speaking their JSON protocols, each service on its own 127.0.0.1 port. Point the
 * SDK at them with the standard `AWS_ENDPOINT_URL_*` variables (`env` below) and the function runs
 * unchanged: the webhook tests use them, and so can a local run that really builds (plug in
 * `onStartBuild`). DynamoDB is dynalite (a DynamoDB implementation on LevelDB, in memory), so
 * conditional writes are evaluated as DynamoDB evaluates them; a table is created on first use.
 * `fault` makes one service fail in the ways a real one can, for the fault-injection tests.
 */

/** The services served, as they appear in `AWS_ENDPOINT_URL_<SERVICE>`. */
export const LOCAL_AWS_SERVICES = ['codebuild', 'secretsmanager', 'sqs', 'dynamodb'] as const;
export type LocalAwsService = (typeof LOCAL_AWS_SERVICES)[number];

/**
 * How a faulty service answers every request: an HTTP 500, a throttling error, no listener at all
 * (connection refused), a connection accepted and never answered, a request carried out whose
 * answer never arrives (the write happened, the caller cannot know), or a 200 whose body is not
 * the service's JSON.
 */
export const AWS_FAULTS = [
  'http-500',
  'throttling',
  'connection-refused',
  'never-answers',
  'answer-lost',
  'malformed',
] as const;
export type AwsFault = (typeof AWS_FAULTS)[number];

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
  /** Every request each service was sent, by operation (`x-amz-target`), faulty answers included. */
  readonly requests: { service: LocalAwsService; operation: string }[];
  /** Replaces what StartBuild does from now on. */
  onStartBuild(behaviour: StartBuildBehaviour | undefined): void;
  /** Makes a service fail from now on (`undefined` heals it). */
  fault(service: LocalAwsService, fault: AwsFault | undefined): Promise<void>;
  close(): Promise<void>;
}

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
  const requests: { service: LocalAwsService; operation: string }[] = [];
  const faults = new Map<LocalAwsService, AwsFault>();
  const hanging = new Set<ServerResponse>();
  let behaviour = options.onStartBuild;
  const dynamo = await startDynamo();

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
  };

  async function handle(service: LocalAwsService, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const target = String(req.headers['x-amz-target'] ?? '');
    requests.push({ service, operation: target });
    const contentType =
      service === 'codebuild' || service === 'secretsmanager'
        ? 'application/x-amz-json-1.1'
        : 'application/x-amz-json-1.0';
    const text = Buffer.concat(chunks).toString('utf8');
    const fault = faults.get(service);
    const hang = () => {
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
    };
    if (fault === 'never-answers') return hang();
    if (fault === 'malformed') {
      res.writeHead(200, { 'content-type': contentType }).end('<html><body>502 Bad Gateway</body></html>');
      return;
    }
    let answer: { status: number; headers: Record<string, string>; body: string | Buffer };
    try {
      if (fault === 'http-500') throw new AwsServiceError('InternalFailure', 'injected fault', 500);
      if (fault === 'throttling')
        throw new AwsServiceError('ThrottlingException', 'Rate exceeded (injected)');
      if (service === 'dynamodb') {
        answer = await dynamo.forward(target, text, req);
      } else {
        const operation = operations[target];
        if (!operation)
          throw new AwsServiceError('UnknownOperationException', `not served locally: ${target}`);
        const output = await operation(text ? (JSON.parse(text) as JsonBody) : {});
        answer = { status: 200, headers: { 'content-type': contentType }, body: JSON.stringify(output) };
      }
    } catch (err) {
      const error =
        err instanceof AwsServiceError ? err : new AwsServiceError('InternalFailure', String(err), 500);
      answer = {
        status: error.status,
        headers: { 'content-type': contentType, 'x-amzn-errortype': error.type },
        body: JSON.stringify({ __type: error.type, message: error.message }),
      };
    }
    if (fault === 'answer-lost') return hang();
    res.writeHead(answer.status, answer.headers).end(answer.body);
  }

  const listeners = new Map<LocalAwsService, { server: Server; port: number }>();
  async function listen(service: LocalAwsService, port = 0): Promise<void> {
    const server = createServer((req, res) => {
      void handle(service, req, res);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    listeners.set(service, { server, port: (server.address() as AddressInfo).port });
  }
  async function unlisten(service: LocalAwsService): Promise<void> {
    const listener = listeners.get(service);
    if (!listener?.server.listening) return;
    listener.server.closeAllConnections();
    await new Promise<void>((resolve) => listener.server.close(() => resolve()));
  }
  for (const service of LOCAL_AWS_SERVICES) await listen(service);
  const urlOf = (service: LocalAwsService) => `http://127.0.0.1:${listeners.get(service)?.port}`;

  return {
    env: {
      AWS_REGION: region,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_ENDPOINT_URL_CODEBUILD: urlOf('codebuild'),
      AWS_ENDPOINT_URL_SECRETS_MANAGER: urlOf('secretsmanager'),
      AWS_ENDPOINT_URL_SQS: urlOf('sqs'),
      AWS_ENDPOINT_URL_DYNAMODB: urlOf('dynamodb'),
    },
    queueUrl: `${urlOf('sqs')}/000000000000/pushline-build-retry`,
    secrets,
    startBuildCalls,
    builds,
    sentMessages,
    visibilityChanges,
    requests,
    onStartBuild(next) {
      behaviour = next;
    },
    async fault(service, fault) {
      const before = faults.get(service);
      if (fault) faults.set(service, fault);
      else faults.delete(service);
      if ((before === 'never-answers' || before === 'answer-lost') && fault !== before) {
        for (const res of hanging) res.destroy();
      }
      if (fault === 'connection-refused' && before !== fault) await unlisten(service);
      if (before === 'connection-refused' && fault !== before)
        await listen(service, listeners.get(service)?.port);
    },
    async close() {
      for (const res of hanging) res.destroy();
      for (const service of LOCAL_AWS_SERVICES) await unlisten(service);
      await dynamo.close();
    },
  };
}

/** dynalite on its own port; requests are forwarded to it, each table created the first time it is named. */
async function startDynamo() {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const tables = new Map<string, Promise<unknown>>();
  // dynalite insists on a signed-looking request; it checks the header's shape, not the signature.
  const signedHeaders = (req?: IncomingMessage): Record<string, string> => ({
    authorization: String(
      req?.headers.authorization ??
        'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=0',
    ),
    'x-amz-date': String(req?.headers['x-amz-date'] ?? '20260101T000000Z'),
  });
  const call = (target: string, body: string, req?: IncomingMessage) =>
    fetch(url, {
      method: 'POST',
      headers: {
        'x-amz-target': target,
        'content-type': 'application/x-amz-json-1.0',
        ...signedHeaders(req),
      },
      body,
    });
  /** The table the deliveries are recorded in: one string key `id`, as Powertools Idempotency uses it. */
  const createTable = (name: string) =>
    call(
      'DynamoDB_20120810.CreateTable',
      JSON.stringify({
        TableName: name,
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    ).then((r) => r.text());
  return {
    async forward(
      target: string,
      body: string,
      req: IncomingMessage,
    ): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
      const tableName = body ? (JSON.parse(body) as { TableName?: unknown }).TableName : undefined;
      if (typeof tableName === 'string') {
        if (!tables.has(tableName)) tables.set(tableName, createTable(tableName));
        await tables.get(tableName);
      }
      const answer = await call(target, body, req);
      const headers: Record<string, string> = {};
      for (const name of ['content-type', 'x-amzn-requestid', 'x-amz-crc32']) {
        const value = answer.headers.get(name);
        if (value) headers[name] = value;
      }
      return { status: answer.status, headers, body: Buffer.from(await answer.arrayBuffer()) };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
