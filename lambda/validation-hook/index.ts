import { CodeDeployClient, PutLifecycleEventHookExecutionStatusCommand } from '@aws-sdk/client-codedeploy';
import { z } from 'zod';
import { checkNewVersion, settingsFromEnvironment } from './core';

/**
 * The CodeDeploy `AfterAllowTestTraffic` hook: checks the new task set through the test listener
 * and reports the outcome with `PutLifecycleEventHookExecutionStatus`; `Failed` rolls the
 * deployment back before production traffic moves. The SDK honours `AWS_ENDPOINT_URL_CODEDEPLOY`.
 */
const codedeploy = new CodeDeployClient({});
const settings = settingsFromEnvironment(process.env);

/** The event CodeDeploy invokes a lifecycle hook function with. */
const HookEvent = z.object({
  DeploymentId: z.string().regex(/^d-[A-Z0-9]+$/),
  LifecycleEventHookExecutionId: z.string().min(1),
});

export async function handler(event: unknown): Promise<{ status: string }> {
  const parsed = HookEvent.safeParse(event);
  if (!parsed.success) {
    // Without the ids there is nothing to report to; CodeDeploy times the hook out and rolls back.
    console.log(
      JSON.stringify({ message: 'not a CodeDeploy lifecycle hook event', issues: parsed.error.issues }),
    );
    throw new Error('not a CodeDeploy lifecycle hook event');
  }
  const { DeploymentId, LifecycleEventHookExecutionId } = parsed.data;
  const result = await checkNewVersion(settings);
  console.log(
    JSON.stringify({
      message: `validation ${result.status}: ${result.summary}`,
      deploymentId: DeploymentId,
      status: result.status,
    }),
  );
  await codedeploy.send(
    new PutLifecycleEventHookExecutionStatusCommand({
      deploymentId: DeploymentId,
      lifecycleEventHookExecutionId: LifecycleEventHookExecutionId,
      status: result.status,
    }),
  );
  return { status: result.status };
}
