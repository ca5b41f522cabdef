import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IMAGE_PLACEHOLDER, TASK_DEFINITION_PLACEHOLDER } from '../lib/deploy-templates';
import { LOCAL_ACCOUNT, LOCAL_REGION } from './cloud-assembly';
import { TOOL_PATHS } from './daemons';
import type { DeployOutcome, WalkEnvironment } from './environment-walk';

/**
 * The local stand-in for the CodeDeploy ECS Blue/Green action of one environment: what CodePipeline
 * does with the artifact before CodeDeploy takes over. It reads the environment's `taskdef` and
 * `appspec` from the artifact, puts the artifact's image where `<IMAGE1_NAME>` stands, "registers"
 * the task definition (a file and a local revision number) and puts its ARN where
 * `<TASK_DEFINITION>` stands (CDK's "CodeDeployEcsContainerImageInput": the placeholder "will be
 * replaced with the image URI" of `imageDetail.json`,
 * https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_codepipeline_actions.CodeDeployEcsContainerImageInput.html).
 * It starts no containers and moves no traffic: the rendered files are what a deployment would use.
 */

/** The files of one deploy artifact zip, by name. */
export type ArtifactFiles = ReadonlyMap<string, string>;

/** Reads every file of a deploy artifact zip (a few small text files). */
export function readArtifact(zipPath: string): ArtifactFiles {
  const names = execFileSync(TOOL_PATHS.unzip, ['-Z1', zipPath], { encoding: 'utf8' })
    .split('\n')
    .filter((name) => name !== '');
  return new Map(
    names.map((name) => [name, execFileSync(TOOL_PATHS.unzip, ['-p', zipPath, name], { encoding: 'utf8' })]),
  );
}

/** The image the artifact's `imageDetail.json` names. */
export function artifactImage(files: ArtifactFiles): string {
  const detail = files.get('imageDetail.json');
  if (detail === undefined) throw new Error('the artifact has no imageDetail.json');
  const image = (JSON.parse(detail) as { ImageURI?: unknown }).ImageURI;
  if (typeof image !== 'string' || image === '') throw new Error('imageDetail.json names no ImageURI');
  return image;
}

/** The artifact files the pipeline reads for an environment (as `deployTemplateFiles`). */
export function environmentFiles(environment: WalkEnvironment): { taskdef: string; appspec: string } {
  return environment.name === undefined
    ? { taskdef: 'taskdef.json', appspec: 'appspec.yaml' }
    : { taskdef: `taskdef-${environment.name}.json`, appspec: `appspec-${environment.name}.yaml` };
}

/**
 * The digest a registry serves for an image reference `host/name:tag`, read with the OCI
 * distribution API (`HEAD /v2/<name>/manifests/<tag>`, header `Docker-Content-Digest`), or why not.
 */
export async function registryDigest(image: string): Promise<{ digest: string } | { error: string }> {
  const slash = image.indexOf('/');
  const colon = image.lastIndexOf(':');
  if (slash < 0 || colon < slash) return { error: `${image} is not host/name:tag` };
  const url = `http://${image.slice(0, slash)}/v2/${image.slice(slash + 1, colon)}/manifests/${image.slice(colon + 1)}`;
  try {
    const res = await fetch(url, {
      method: 'HEAD',
      headers: {
        accept: [
          'application/vnd.oci.image.index.v1+json',
          'application/vnd.oci.image.manifest.v1+json',
          'application/vnd.docker.distribution.manifest.list.v2+json',
          'application/vnd.docker.distribution.manifest.v2+json',
        ].join(', '),
      },
    });
    const digest = res.headers.get('docker-content-digest');
    if (!res.ok || !digest) return { error: `the registry answers ${res.status} for ${image}` };
    return { digest };
  } catch (err) {
    return { error: `the registry cannot be reached for ${image} (${(err as Error).message})` };
  }
}

export interface LocalDeployerOptions {
  /** The artifact's files. */
  readonly files: ArtifactFiles;
  /** Where the rendered task definition and AppSpec of each environment are written. */
  readonly outDir: string;
  /** Resolves the image to the digest the registry holds (`registryDigest`). */
  readonly digestOf: (image: string) => Promise<{ digest: string } | { error: string }>;
  /** Task definition revisions registered so far, by family; shared by every walk of a run. */
  readonly revisions: Map<string, number>;
}

/** A deploy function for `walkEnvironments`: one environment's templates from this artifact. */
export function localDeployer(
  options: LocalDeployerOptions,
): (environment: WalkEnvironment) => Promise<DeployOutcome> {
  return async (environment) => {
    const image = artifactImage(options.files);
    const names = environmentFiles(environment);
    const taskdefText = options.files.get(names.taskdef);
    const appspecText = options.files.get(names.appspec);
    if (taskdefText === undefined || appspecText === undefined) {
      return { ok: false, reason: `the artifact has no ${names.taskdef} and ${names.appspec}` };
    }
    if (!taskdefText.includes(IMAGE_PLACEHOLDER)) {
      return { ok: false, reason: `${names.taskdef} has no ${IMAGE_PLACEHOLDER} for the image to go to` };
    }
    const taskdef = JSON.parse(taskdefText.split(IMAGE_PLACEHOLDER).join(image)) as { family?: unknown };
    if (typeof taskdef.family !== 'string') return { ok: false, reason: `${names.taskdef} names no family` };
    const resolved = await options.digestOf(image);
    if ('error' in resolved) return { ok: false, reason: resolved.error };
    const revision = (options.revisions.get(taskdef.family) ?? 0) + 1;
    options.revisions.set(taskdef.family, revision);
    const arn = `arn:aws:ecs:${LOCAL_REGION}:${LOCAL_ACCOUNT}:task-definition/${taskdef.family}:${revision}`;
    const dir = join(options.outDir, environment.name ?? 'service');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'taskdef.json'), `${JSON.stringify(taskdef, null, 2)}\n`);
    writeFileSync(join(dir, 'appspec.yaml'), appspecText.split(TASK_DEFINITION_PLACEHOLDER).join(arn));
    return {
      ok: true,
      image,
      detail: `(${resolved.digest})`,
      notes: [
        `task definition ${taskdef.family}:${revision} and its AppSpec rendered in ${dir}; no container started, no traffic moved (pushline local has no ECS)`,
      ],
    };
  };
}
