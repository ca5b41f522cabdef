import { join } from 'node:path';
import type { ProxyHandler } from './api-gateway';
import type { CfnTemplate } from './cloud-assembly';

/**
 * Finds a function in a synthesized cloud assembly (`cdk.out`) and loads its bundled code exactly as
 * Lambda would: the asset directory's `index.js`, the template's handler name, and the template's
 * environment with each CloudFormation reference replaced by its local stand-in.
 */

/** The local value that stands in for a resource of a CloudFormation type the function refers to. */
export type LocalReferences = Readonly<Partial<Record<string, string>>>;

export interface BundledFunction {
  /** The asset directory in the assembly. */
  readonly assetDir: string;
  /** `index.handler`, as in the template. */
  readonly handlerName: string;
  /** The function's environment with references resolved to local values. */
  readonly environment: Readonly<Record<string, string>>;
}

/** Tells a function apart from the stack's others by the environment variables it has and lacks. */
export interface FunctionMarker {
  readonly name: string;
  readonly has: string;
  readonly lacks?: string;
}

/** The webhook function: the only one with the webhook secret. */
export const WEBHOOK_FUNCTION: FunctionMarker = { name: 'webhook function', has: 'WEBHOOK_SECRET_ARN' };
/** The retry consumer: reads the retry queue, but has no webhook secret. */
export const RETRY_FUNCTION: FunctionMarker = {
  name: 'build retry function',
  has: 'RETRY_QUEUE_URL',
  lacks: 'WEBHOOK_SECRET_ARN',
};

/** The build reporter: the only one with the provider token secret. */
export const REPORTER_FUNCTION: FunctionMarker = {
  name: 'reporter function',
  has: 'PROVIDER_TOKENS_SECRET_ARN',
};

export function findBundledFunction(
  assemblyDir: string,
  stack: { readonly name: string; readonly template: CfnTemplate },
  marker: FunctionMarker,
  refs: LocalReferences,
): BundledFunction {
  const { template } = stack;
  const templatePath = `${stack.name}.template.json`;
  const found = Object.entries(template.Resources).find(([, r]) => {
    if (r.Type !== 'AWS::Lambda::Function') return false;
    const environment = environmentOf(r);
    return (
      environment[marker.has] !== undefined && (!marker.lacks || environment[marker.lacks] === undefined)
    );
  });
  if (!found) throw new Error(`no ${marker.name} (with ${marker.has}) in ${templatePath}`);
  const [logicalId, resource] = found;
  const assetPath = resource.Metadata?.['aws:asset:path'];
  if (typeof assetPath !== 'string') throw new Error(`${logicalId} has no bundled asset in ${templatePath}`);

  const environment: Record<string, string> = {};
  for (const [name, value] of Object.entries(environmentOf(resource))) {
    environment[name] = resolveValue(name, value, template, refs);
  }
  return {
    assetDir: join(assemblyDir, assetPath),
    handlerName:
      typeof resource.Properties?.Handler === 'string' ? resource.Properties.Handler : 'index.handler',
    environment,
  };
}

function environmentOf(resource: CfnTemplate['Resources'][string]): Record<string, unknown> {
  const environment = resource.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined;
  return environment?.Variables ?? {};
}

function resolveValue(name: string, value: unknown, template: CfnTemplate, refs: LocalReferences): string {
  if (typeof value === 'string') return value;
  const ref = (value as { Ref?: unknown }).Ref;
  const target = typeof ref === 'string' ? template.Resources[ref] : undefined;
  const local = target ? refs[target.Type] : undefined;
  if (local === undefined) {
    throw new Error(
      `cannot run the function locally: ${name} refers to ${JSON.stringify(value)}, which has no local stand-in`,
    );
  }
  return local;
}

/**
 * Sets the function's environment on this process (as Lambda does before loading the code, which
 * reads it at module scope) and loads the handler from the bundle.
 */
export function loadBundledHandler<Handler = ProxyHandler>(
  fn: BundledFunction,
  extraEnv: Readonly<Record<string, string>>,
): Handler {
  Object.assign(process.env, extraEnv, fn.environment);
  const [file = 'index', exportName = 'handler'] = fn.handlerName.split('.');
  const modulePath = join(fn.assetDir, `${file}.js`);
  // The bundle is CommonJS built by esbuild; require is how Lambda's Node.js runtime loads it too.
  const loaded = require(modulePath) as Record<string, unknown>;
  const handler = loaded[exportName];
  if (typeof handler !== 'function') throw new Error(`${modulePath} does not export ${exportName}`);
  return handler as Handler;
}
