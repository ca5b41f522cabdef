import { z } from 'zod';

/**
 * The EventBridge events the reporter receives, parsed at the edge. Only the fields it reads are
 * declared; anything else AWS adds is ignored. Shape: AWS CodeBuild User Guide, "Build
 * notifications input format reference"
 * (https://docs.aws.amazon.com/codebuild/latest/userguide/sample-build-notifications-ref.html).
 */

/** CodeBuild's build statuses (BatchGetBuilds `buildStatus`; the event's `build-status`). */
export const BUILD_STATUSES = [
  'IN_PROGRESS',
  'SUCCEEDED',
  'FAILED',
  'FAULT',
  'TIMED_OUT',
  'STOPPED',
] as const;
export type BuildStatus = (typeof BUILD_STATUSES)[number];

const EnvironmentVariableSchema = z.object({ name: z.string(), value: z.string().optional() });

export const BuildStateChangeSchema = z.object({
  'detail-type': z.literal('CodeBuild Build State Change'),
  source: z.literal('aws.codebuild'),
  account: z.string(),
  region: z.string(),
  time: z.string(),
  detail: z.object({
    'build-status': z.enum(BUILD_STATUSES),
    'project-name': z.string().min(1),
    'build-id': z.string().min(1),
    'additional-information': z
      .object({
        environment: z
          .object({ 'environment-variables': z.array(EnvironmentVariableSchema).optional() })
          .optional(),
      })
      .optional(),
  }),
});
export type BuildStateChange = z.infer<typeof BuildStateChangeSchema>;

/** The build's ID (`project:uuid`) from the ID or ARN the event carries. */
export function buildIdOf(buildIdOrArn: string): string {
  const marker = ':build/';
  const at = buildIdOrArn.indexOf(marker);
  return at < 0 ? buildIdOrArn : buildIdOrArn.slice(at + marker.length);
}

/** A list of CodeBuild environment variables as a plain map (later entries win, as overrides do). */
export function environmentMap(
  variables: readonly { name?: string; value?: string }[] | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of variables ?? []) if (v.name && v.value !== undefined) out[v.name] = v.value;
  return out;
}

/** CodeDeploy's deployment states in EventBridge ("AWS CodeDeploy events", EventBridge reference). */
export const DEPLOYMENT_STATES = ['START', 'SUCCESS', 'FAILURE', 'STOP', 'READY'] as const;
export type DeploymentState = (typeof DEPLOYMENT_STATES)[number];

export const DeploymentStateChangeSchema = z.object({
  'detail-type': z.literal('CodeDeploy Deployment State-change Notification'),
  source: z.literal('aws.codedeploy'),
  region: z.string(),
  detail: z.object({
    application: z.string().min(1),
    deploymentGroup: z.string().min(1),
    deploymentId: z.string().min(1),
    state: z.enum(DEPLOYMENT_STATES),
  }),
});
