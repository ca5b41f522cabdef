import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Reads what pushline local needs out of a synthesized cloud assembly (`cdk.out`), so a local run
 * uses the same settings `cdk deploy` would create: the build projects' environment, the deploy
 * templates' parameters. Values that only exist once deployed (ARNs, bucket names) are rendered
 * as recognisable local placeholders.
 */

export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
}

export interface CfnTemplate {
  readonly Resources: Record<string, CfnResource>;
}

export const LOCAL_ACCOUNT = '000000000000';
export const LOCAL_REGION = 'us-east-1';

export function readTemplate(assemblyDir: string, stackName: string): CfnTemplate {
  const path = join(assemblyDir, `${stackName}.template.json`);
  if (!existsSync(path))
    throw new Error(`${path} is missing: synthesize first (npx cdk synth -o ${assemblyDir})`);
  return JSON.parse(readFileSync(path, 'utf8')) as CfnTemplate;
}

const PSEUDO_PARAMETERS: Record<string, string> = {
  'AWS::AccountId': LOCAL_ACCOUNT,
  'AWS::Region': LOCAL_REGION,
  'AWS::Partition': 'aws',
  'AWS::URLSuffix': 'amazonaws.com',
  'AWS::StackName': 'local',
};

/** Renders a CloudFormation value (string or intrinsic function) as the text it would become, with placeholders. */
export function renderValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null || typeof value !== 'object') return '';
  const fn = value as Record<string, unknown>;
  if ('Ref' in fn) {
    const name = String(fn.Ref);
    return PSEUDO_PARAMETERS[name] ?? `local-${name}`;
  }
  if ('Fn::GetAtt' in fn) {
    const [id, attribute] = fn['Fn::GetAtt'] as [string, string];
    return attribute === 'Arn'
      ? `arn:aws:local:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${id}`
      : `local-${id}-${attribute}`;
  }
  if ('Fn::Join' in fn) {
    const [separator, parts] = fn['Fn::Join'] as [string, unknown[]];
    return parts.map(renderValue).join(separator);
  }
  if ('Fn::Select' in fn) {
    const [index, list] = fn['Fn::Select'] as [number, unknown];
    const items = renderList(list);
    return items[index] ?? '';
  }
  if ('Fn::Sub' in fn) {
    const template = Array.isArray(fn['Fn::Sub']) ? String(fn['Fn::Sub'][0]) : String(fn['Fn::Sub']);
    return template.replace(
      /\$\{([^}]+)\}/g,
      (_, name: string) => PSEUDO_PARAMETERS[name] ?? `local-${name}`,
    );
  }
  if ('Fn::ImportValue' in fn) return `local-import-${renderValue(fn['Fn::ImportValue'])}`;
  return JSON.stringify(value);
}

function renderList(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(renderValue);
  const fn = value as Record<string, unknown>;
  if (fn && 'Fn::Split' in fn) {
    const [separator, source] = fn['Fn::Split'] as [string, unknown];
    return renderValue(source).split(separator);
  }
  return [renderValue(value)];
}

export interface ProjectVariable {
  readonly name: string;
  readonly type: 'PLAINTEXT' | 'SECRETS_MANAGER' | 'PARAMETER_STORE';
  /** For PLAINTEXT the value; otherwise the secret or parameter it names. */
  readonly value: string;
  /** The logical ID of the secret in the same template, when `value` is a reference to one. */
  readonly secretLogicalId?: string;
}

/** The environment variables of the CodeBuild project with this name, as the template declares them. */
export function buildProjectVariables(template: CfnTemplate, projectName: string): ProjectVariable[] {
  const project = Object.values(template.Resources).find(
    (r) => r.Type === 'AWS::CodeBuild::Project' && r.Properties?.Name === projectName,
  );
  if (!project) throw new Error(`no CodeBuild project named ${projectName} in the template`);
  const environment = project.Properties?.Environment as { EnvironmentVariables?: Record<string, unknown>[] };
  return (environment.EnvironmentVariables ?? []).map((v) => {
    const raw = v.Value as { Ref?: string } | string;
    return {
      name: String(v.Name),
      type: (v.Type as ProjectVariable['type'] | undefined) ?? 'PLAINTEXT',
      value: renderValue(raw),
      secretLogicalId: typeof raw === 'object' && typeof raw.Ref === 'string' ? raw.Ref : undefined,
    };
  });
}

/** The value of the SSM string parameter with this name, rendered with placeholders. */
export function parameterValue(template: CfnTemplate, parameterName: string): string | undefined {
  const parameter = Object.values(template.Resources).find(
    (r) => r.Type === 'AWS::SSM::Parameter' && r.Properties?.Name === parameterName,
  );
  return parameter ? renderValue(parameter.Properties?.Value) : undefined;
}

/** The redrive policy's maxReceiveCount of the one queue in the template that has a dead-letter queue. */
export function maxReceiveCount(template: CfnTemplate): number | undefined {
  for (const resource of Object.values(template.Resources)) {
    const policy = resource.Properties?.RedrivePolicy as { maxReceiveCount?: unknown } | undefined;
    if (resource.Type === 'AWS::SQS::Queue' && typeof policy?.maxReceiveCount === 'number')
      return policy.maxReceiveCount;
  }
  return undefined;
}
