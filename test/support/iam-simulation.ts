import { anonymousPrincipal, runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';

/**
 * Evaluates resource policies taken from synthesized templates with `@cloud-copilot/iam-simulate`,
 * AWS's evaluation logic run offline: identity policy, resource policy, same- or cross-account.
 */

/** A policy document as IAM reads it. */
export interface PolicyDocument {
  readonly Version?: string;
  readonly Statement: readonly Record<string, unknown>[];
}

/** The account and region a template is imagined to be deployed to, for its pseudo parameters. */
export interface DeployTarget {
  readonly partition: string;
  readonly region: string;
  readonly account: string;
  /** Values for `Ref`s to the template's own resources (logical ID → value). */
  readonly refs?: Readonly<Record<string, string>>;
  /** Values for `Fn::GetAtt`s (`<logical ID>.<attribute>` → value). */
  readonly attributes?: Readonly<Record<string, string>>;
}

/** A CloudFormation template, as `Template.toJSON()` returns it. */
export interface TemplateJson {
  readonly Resources?: Readonly<Record<string, { Type: string; Properties?: Record<string, unknown> }>>;
}

export type Decision = 'Allowed' | 'ExplicitlyDenied' | 'ImplicitlyDenied';

/**
 * Resolves the intrinsic functions CDK writes into policies (`Ref` to pseudo parameters and given
 * resources, `Fn::Join`, `Fn::Select`, `Fn::Split`, `Fn::GetAtt`) the way CloudFormation would for
 * `target`. Anything else throws, so a test never evaluates a half-resolved policy.
 */
export function resolveIntrinsics(value: unknown, target: DeployTarget): unknown {
  if (Array.isArray(value)) return value.map((v) => resolveIntrinsics(v, target));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, unknown>);
  const [first] = entries;
  if (entries.length === 1 && first && (first[0] === 'Ref' || first[0].startsWith('Fn::'))) {
    return resolveFunction(first[0], first[1], target);
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, resolveIntrinsics(v, target)]));
}

function resolveFunction(name: string, argument: unknown, target: DeployTarget): unknown {
  const pseudo: Record<string, string> = {
    'AWS::Partition': target.partition,
    'AWS::Region': target.region,
    'AWS::AccountId': target.account,
    'AWS::URLSuffix': 'amazonaws.com',
  };
  switch (name) {
    case 'Ref': {
      const ref = String(argument);
      const resolved = pseudo[ref] ?? target.refs?.[ref];
      if (resolved === undefined) throw new Error(`resolveIntrinsics: no value for Ref ${ref}`);
      return resolved;
    }
    case 'Fn::GetAtt': {
      const [resource, attribute] = argument as [string, string];
      const resolved = target.attributes?.[`${resource}.${attribute}`];
      if (resolved === undefined)
        throw new Error(`resolveIntrinsics: no value for GetAtt ${resource}.${attribute}`);
      return resolved;
    }
    case 'Fn::Join': {
      const [separator, parts] = argument as [string, unknown[]];
      return parts.map((p) => String(resolveIntrinsics(p, target))).join(separator);
    }
    case 'Fn::Split': {
      const [separator, source] = argument as [string, unknown];
      return String(resolveIntrinsics(source, target)).split(separator);
    }
    case 'Fn::Select': {
      const [index, list] = argument as [number | string, unknown];
      const items = resolveIntrinsics(list, target) as unknown[];
      return items[Number(index)];
    }
    default:
      throw new Error(`resolveIntrinsics: ${name} is not supported`);
  }
}

/** The one resource of `type` in a template; throws when there are none or several. */
export function onlyResource(
  template: TemplateJson,
  type: string,
): { logicalId: string; properties: Record<string, unknown> } {
  const matches = Object.entries(template.Resources ?? {}).filter(([, r]) => r.Type === type);
  const [match, ...others] = matches;
  if (!match || others.length > 0) {
    throw new Error(`expected exactly one ${type}, found ${matches.map(([id]) => id).join(', ') || 'none'}`);
  }
  return { logicalId: match[0], properties: match[1].Properties ?? {} };
}

/**
 * API Gateway stores `execute-api:/<stage>/<method>/<path>` in a REST API's resource policy as the
 * API's full ARN; this does the same, so the simulator matches the ARN of a real request.
 */
export function expandExecuteApiResources(policy: PolicyDocument, apiArn: string): PolicyDocument {
  const expand = (resource: unknown): unknown =>
    typeof resource === 'string' && resource.startsWith('execute-api:/')
      ? `${apiArn}/${resource.slice('execute-api:/'.length)}`
      : resource;
  return {
    ...policy,
    Statement: policy.Statement.map((statement) => {
      const { Resource: resource, ...rest } = statement;
      if (resource === undefined) return statement;
      return { ...rest, Resource: Array.isArray(resource) ? resource.map(expand) : expand(resource) };
    }),
  };
}

/** One request to evaluate. */
export interface SimulatedRequest {
  /** The caller's ARN, or `'anonymous'` for an unsigned request (a webhook sender). */
  readonly principal: string;
  readonly action: string;
  /** The resource ARN and the account that owns it. */
  readonly resource: { readonly arn: string; readonly account: string };
  /** Request context: `aws:SourceIp`, `aws:PrincipalTag/<key>`, `aws:PrincipalOrgID` … */
  readonly context?: Readonly<Record<string, string | string[]>>;
  /**
   * The caller's own identity policy.
   * @default for a signed request, a policy allowing every action on every resource, so that the
   * decision is the resource policy's; ignored for anonymous requests
   */
  readonly identityPolicy?: PolicyDocument;
}

const ALLOW_EVERYTHING: PolicyDocument = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }],
};

/** The decision AWS would reach for `request` against `resourcePolicy`. */
export async function simulate(resourcePolicy: PolicyDocument, request: SimulatedRequest): Promise<Decision> {
  const anonymous = request.principal === 'anonymous';
  const simulation = {
    request: {
      principal: anonymous ? anonymousPrincipal : request.principal,
      action: request.action,
      resource: { resource: request.resource.arn, accountId: request.resource.account },
      contextVariables: { ...(request.context ?? {}) },
    },
    identityPolicies: anonymous
      ? []
      : [{ name: 'caller', policy: request.identityPolicy ?? ALLOW_EVERYTHING }],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy,
  } as unknown as Simulation; // The library types policies as its own literal shapes; ours are plain JSON.
  const response = await runSimulation(simulation, {});
  if (response.resultType === 'error') {
    throw new Error(`the simulator rejected the request: ${JSON.stringify(response.errors)}`);
  }
  return response.overallResult as Decision;
}
