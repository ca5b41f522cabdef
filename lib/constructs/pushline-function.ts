import { join } from 'node:path';
import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

const ENVIRONMENT_CREDENTIALS = join(__dirname, '..', '..', 'lambda', 'environment-credentials.ts');

/** What a pushline function sets itself; the rest of `NodejsFunctionProps` passes through. */
export interface PushlineFunctionProps
  extends Omit<
    nodejs.NodejsFunctionProps,
    'handler' | 'runtime' | 'architecture' | 'memorySize' | 'logGroup' | 'loggingFormat' | 'bundling'
  > {
  /** The handler module; its export `handler` is the handler. */
  readonly entry: string;
  readonly description: string;
  /** Retention of the function's own log group. */
  readonly logRetention: logs.RetentionDays;
  /** The id of that log group, a sibling of the function in `scope`. */
  readonly logGroupId: string;
  /**
   * Values esbuild writes into the bundle (`process.env.X` → a literal).
   * @default none
   */
  readonly define?: Record<string, string>;
}

/**
 * Every pushline Lambda function: Node.js 22 on arm64, 256 MB, JSON logs into a log group of its
 * own that goes with the stack, bundled by `functionBundling`.
 */
export function createPushlineFunction(
  scope: Construct,
  id: string,
  { logRetention, logGroupId, define, ...props }: PushlineFunctionProps,
): nodejs.NodejsFunction {
  const logGroup = new logs.LogGroup(scope, logGroupId, {
    retention: logRetention,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  return new nodejs.NodejsFunction(scope, id, {
    ...props,
    handler: 'handler',
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    memorySize: 256,
    logGroup,
    loggingFormat: lambda.LoggingFormat.JSON,
    bundling: functionBundling(define),
  });
}

/**
 * Bundled and minified by the local esbuild, AWS SDK v3 included (not taken from the runtime). The
 * SDK's default credential chain is replaced by the environment provider alone, which is where
 * Lambda puts the execution role's credentials (`lambda/environment-credentials.ts`): over a
 * quarter of the webhook bundle went to providers a function never uses.
 *
 * Measured and not taken (cold load of the webhook bundle against a bare `node`, Node 22): ESM
 * output loads no faster than CommonJS (3.0x either way). Deferring the retry queue and the
 * delivery table with `import()` grows a CommonJS bundle by 63 KB (esbuild wraps every module the
 * deferred ones reach) and gains nothing; in separate chunks (ESM with esbuild's `splitting`, 389 KB
 * in all) it gains 0.4x, but `NodejsFunction` bundles to one `--outfile`, which splitting cannot
 * use. A V8 compile cache shipped with the asset gains 0.5x where it hits, but Node 22 keys it by
 * the file's absolute path, Node's exact version and the CPU architecture, so one made at synth
 * time misses on Lambda (`/var/task`, arm64, a runtime version Lambda updates by itself); the cache
 * (469 KB for the 356 KB webhook bundle) would also more than double the asset.
 */
export function functionBundling(define?: Record<string, string>): nodejs.BundlingOptions {
  return {
    minify: true,
    // No source map: loading one at cold start costs more than readable stack traces are worth here.
    sourceMap: false,
    target: 'node22',
    // CommonJS, measured against ESM (`bench/webhook.ts`): a Node 22 ESM bundle loaded no faster.
    format: nodejs.OutputFormat.CJS,
    mainFields: ['module', 'main'],
    externalModules: [],
    esbuildArgs: { '--alias:@aws-sdk/credential-provider-node': ENVIRONMENT_CREDENTIALS },
    ...(define ? { define } : {}),
  };
}

export function acknowledgeFunction(scope: Construct): void {
  Validations.of(scope).acknowledge(
    {
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason: 'The basic execution role only lets the function write its own logs.',
    },
    {
      id: 'AwsSolutions-L1',
      reason: 'Node.js 22 is the runtime pushline pins and tests; CDK Provider framework picks its own.',
    },
  );
}
