import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import {
  pipelineRegionStackName,
  pipelineStackName,
  repositoryStackName,
  serviceStackName,
} from '../resource-names';
import {
  NOT_AN_ENVIRONMENT_SETTING,
  type PipelineConfig,
  PipelineConfigSchema,
  projectSuffix,
} from './schema';

/** CloudFormation's limit on a stack name (API Reference, CreateStack, StackName: "can't be longer than 128 characters"). */
export const STACK_NAME_MAX_LENGTH = 128;

/** Thrown when the config file cannot be used; `problems` holds one line per mistake. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(`${file}: ${problems.length} problem(s)\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Reads, parses and validates a config file, reporting every mistake at once. */
export function loadConfig(file: string): PipelineConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [
      `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    ]);
  }
  return parseConfig(text, file);
}

/** Parses and validates config text; `file` only names the source in errors. */
export function parseConfig(text: string, file = 'pipeline.config.yaml'): PipelineConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map(
        (e) => `YAML ${e.linePos ? `line ${e.linePos[0].line}` : ''}: ${e.message.split('\n')[0]}`,
      ),
    );
  }
  const raw: unknown = doc.toJS();
  const result = PipelineConfigSchema.safeParse(raw);
  const problems = [
    ...(result.success ? [] : result.error.issues.flatMap((issue) => describeIssue(issue, raw))),
    ...duplicateNames(raw),
    ...overlongStackNames(raw),
    ...(result.success ? environmentAccountsWithoutEnv(result.data) : []),
  ];
  if (!result.success || problems.length > 0) throw new ConfigError(file, problems);
  return result.data;
}

/** Formats a path the way a user would point at the field: `repositories[0].source.provider`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out.length === 0 ? String(key) : `.${String(key)}`;
  }
  return out.length === 0 ? '(top level)' : out;
}

function describeIssue(issue: z.core.$ZodIssue, raw: unknown): string[] {
  const where = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const parent = valueAt(raw, issue.path);
    return issue.keys.map((key) => {
      const value =
        parent && typeof parent === 'object' ? (parent as Record<string, unknown>)[key] : undefined;
      const path = formatPath([...issue.path, key]);
      if (issue.path.at(-2) === 'environments')
        return `${path}: ${NOT_AN_ENVIRONMENT_SETTING} (got ${show(value)})`;
      return `${path}: unknown field (value ${show(value)}); check the spelling against pipeline.config.schema.json`;
    });
  }
  const value = valueAt(raw, issue.path);
  const got = value === undefined ? 'missing' : `got ${show(value)}`;
  return [`${where}: ${issue.message} (${got})`];
}

/**
 * Repository names must be unique, also after mapping to CodeBuild project names (`a/b` and `a-b`
 * collide). Checked on the raw input so it is reported together with every other mistake.
 */
function duplicateNames(raw: unknown): string[] {
  const repositories = valueAt(raw, ['repositories']);
  if (!Array.isArray(repositories)) return [];
  const seen = new Map<string, number>();
  const problems: string[] = [];
  repositories.forEach((repo: unknown, index) => {
    const name = valueAt(repo, ['name']);
    if (typeof name !== 'string') return;
    const first = seen.get(projectSuffix(name));
    if (first === undefined) {
      seen.set(projectSuffix(name), index);
    } else {
      problems.push(
        `repositories[${index}].name: duplicates repositories[${first}].name; every repository needs its own name (got ${show(name)})`,
      );
    }
  });
  return problems;
}

/**
 * Each repository names stacks (`<name>-repo-<repository>`; with `deploy` also
 * `<name>-service-<repository>`, or with `deploy.environments` `<name>-pipeline-<repository>` and
 * `<name>-service-<repository>-<environment>`); CloudFormation refuses names over 128 characters, which CDK would
 * only report as a stack-level error without naming the field.
 */
function overlongStackNames(raw: unknown): string[] {
  const repositories = valueAt(raw, ['repositories']);
  if (!Array.isArray(repositories)) return [];
  const prefixValue = valueAt(raw, ['name']);
  const prefix = typeof prefixValue === 'string' ? prefixValue : 'pushline';
  return repositories.flatMap((repo: unknown, index) => {
    const name = valueAt(repo, ['name']);
    if (typeof name !== 'string') return [];
    const stackName = stackNamesOf(prefix, name, repo).reduce((a, b) => (b.length > a.length ? b : a));
    if (stackName.length <= STACK_NAME_MAX_LENGTH) return [];
    return [
      `repositories[${index}].name: makes the stack name ${stackName.length} characters long ("${stackName.slice(0, 40)}..."), over CloudFormation's ${STACK_NAME_MAX_LENGTH}; shorten it by ${stackName.length - STACK_NAME_MAX_LENGTH} (got ${show(name)})`,
    ];
  });
}

/** The names of the stacks a repository entry makes, as `pushline-app.ts` names them. */
function stackNamesOf(prefix: string, name: string, repo: unknown): string[] {
  const names = [repositoryStackName(prefix, { name })];
  if (valueAt(repo, ['deploy']) === undefined) return names;
  const environments = valueAt(repo, ['deploy', 'environments']);
  if (!Array.isArray(environments) || environments.length === 0)
    return [...names, serviceStackName(prefix, { name })];
  names.push(pipelineStackName(prefix, { name }));
  for (const environment of environments) {
    const environmentName = valueAt(environment, ['name']);
    if (typeof environmentName === 'string') names.push(serviceStackName(prefix, { name }, environmentName));
    const region = valueAt(environment, ['region']);
    if (typeof region === 'string') names.push(pipelineRegionStackName(prefix, { name }, region));
  }
  return names;
}

/**
 * CodePipeline deploys to another account only from a pipeline whose own account is known at
 * synth, so an environment's `account` needs the installation's `env`. Likewise its `region`: the
 * pipeline keeps an artifact store in every region an action runs in, made (and named) at synth in
 * its own account, and CDK tells another region from the pipeline's only when that is known.
 */
function environmentAccountsWithoutEnv(config: PipelineConfig): string[] {
  if (config.env !== undefined) return [];
  return config.repositories.flatMap((repository, r) =>
    (repository.deploy?.environments ?? []).flatMap((environment, e) => [
      ...(environment.account === undefined
        ? []
        : [
            `repositories[${r}].deploy.environments[${e}].account: an environment in another account needs env.account and env.region of the installation (the account its pipeline runs in) (got ${show(environment.account)})`,
          ]),
      ...(environment.region === undefined
        ? []
        : [
            `repositories[${r}].deploy.environments[${e}].region: an environment in another region needs env.account and env.region of the installation: the pipeline keeps an artifact store in every region it deploys to, made in its own account and region, which must be known at synth (got ${show(environment.region)})`,
          ]),
    ]),
  );
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node: unknown = root;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

function show(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
