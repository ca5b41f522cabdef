/**
 * What CodePipeline does with one deploy artifact, on this machine: the environments in order, each
 * with its manual approval first when it asks for one (announced on the notification topic), then
 * its deploy. A rejected approval or a failed deploy stops the walk, as a failed action stops a
 * pipeline execution ("Manage approval actions in CodePipeline":
 * https://docs.aws.amazon.com/codepipeline/latest/userguide/approvals.html).
 */

/** One environment of the walk, in the pipeline's order. */
export interface WalkEnvironment {
  /** `undefined` for the single service of a `deploy` section without `environments`. */
  readonly name?: string;
  /** A manual approval before this environment's deploy. */
  readonly approval: boolean;
}

/** An approval the walk waits for: the pipeline's stage and action, and what it would deploy. */
export interface ApprovalRequest {
  /** The environment's name, as the console lines show it. */
  readonly environment: string;
  /** The pipeline stage the approval action is in (`Deploy-<environment>`). */
  readonly stageName: string;
  /** The approval action's name in that stage. */
  readonly actionName: string;
  /** The image the environment would get. */
  readonly image: string;
}

export type ApprovalDecision =
  | { readonly approved: true; readonly by: string }
  | { readonly approved: false; readonly reason: string };

/** Decides an approval: asks a person, or answers for one (`--approve`). */
export type Approver = (request: ApprovalRequest) => Promise<ApprovalDecision>;

export type DeployOutcome =
  | {
      readonly ok: true;
      readonly image: string;
      /** Printed after the image on the `deployed` line. */
      readonly detail?: string;
      /** Further lines about this deploy (what the local stand-in did not do, and why). */
      readonly notes?: readonly string[];
    }
  | { readonly ok: false; readonly reason: string };

export interface WalkOptions {
  /** The repository whose artifact this is, for the console lines. */
  readonly repository: string;
  readonly environments: readonly WalkEnvironment[];
  /** The image the artifact names (`imageDetail.json`): the one every environment gets. */
  readonly image: string;
  readonly approve: Approver;
  /** Publishes the approval request where the real pipeline publishes it (the notification topic). */
  readonly announceApproval: (request: ApprovalRequest) => Promise<void>;
  /** Deploys the artifact's templates of one environment. */
  readonly deploy: (environment: WalkEnvironment) => Promise<DeployOutcome>;
  readonly print: (line: string) => void;
}

export interface WalkResult {
  /** The environments deployed, in order, with the image each got. */
  readonly deployed: readonly { readonly environment: string; readonly image: string }[];
  /** Where the walk stopped before the last environment, and why. */
  readonly stopped?: { readonly environment: string; readonly reason: string };
}

/** The environment's name in console lines; the single unnamed service is "service". */
export function environmentLabel(environment: WalkEnvironment): string {
  return environment.name ?? 'service';
}

/** The stage that deploys the environment, as `DeployPipeline` names it. */
export function deployStageName(environment: WalkEnvironment): string {
  return environment.name === undefined ? 'Deploy' : `Deploy-${environment.name}`;
}

/** Takes the artifact through the environments in order; never throws for a failed step. */
export async function walkEnvironments(options: WalkOptions): Promise<WalkResult> {
  const deployed: { environment: string; image: string }[] = [];
  const line = (environment: string, text: string) =>
    options.print(`deploy ${options.repository} ${environment}: ${text}`);
  for (const environment of options.environments) {
    const label = environmentLabel(environment);
    if (environment.approval) {
      const request: ApprovalRequest = {
        environment: label,
        stageName: deployStageName(environment),
        actionName: 'Approve',
        image: options.image,
      };
      line(label, `waiting for approval to deploy ${options.image}`);
      await options.announceApproval(request);
      const decision = await options
        .approve(request)
        .catch((err: unknown): ApprovalDecision => ({ approved: false, reason: (err as Error).message }));
      if (!decision.approved) {
        line(
          label,
          `not approved: ${decision.reason}; the walk stops here, as a rejected approval fails the pipeline run`,
        );
        return { deployed, stopped: { environment: label, reason: decision.reason } };
      }
      line(label, `approved (${decision.by})`);
    }
    const outcome = await options
      .deploy(environment)
      .catch((err: unknown): DeployOutcome => ({ ok: false, reason: (err as Error).message }));
    if (!outcome.ok) {
      const rest = options.environments.slice(options.environments.indexOf(environment) + 1);
      const skipped = rest.length > 0 ? `; not deploying ${rest.map(environmentLabel).join(', ')}` : '';
      line(label, `deploy failed: ${outcome.reason}${skipped}`);
      return { deployed, stopped: { environment: label, reason: outcome.reason } };
    }
    line(label, `deployed ${outcome.image}${outcome.detail ? ` ${outcome.detail}` : ''}`);
    for (const note of outcome.notes ?? []) line(label, note);
    deployed.push({ environment: label, image: outcome.image });
  }
  return { deployed };
}

/** The bits of a readable stream a keypress prompt needs (`process.stdin` has them). */
export interface KeypressInput {
  readonly isTTY?: boolean;
  setRawMode?(raw: boolean): unknown;
  on(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
  off(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

export interface ApprovalGateOptions {
  /** `--approve`: grant every approval without asking (scripts, CI). */
  readonly approveAll: boolean;
  /** Where keypresses come from. */
  readonly input: KeypressInput;
  readonly print: (line: string) => void;
  /** Ctrl-C while waiting: raw mode swallows the signal, so the gate passes it on. */
  readonly onInterrupt: () => void;
  /**
   * Keys that arrive this soon after the question were typed before it (a terminal hands over a
   * line typed ahead once raw mode is on): ignored, so that no stray `y` approves a deploy.
   * @default 150
   */
  readonly typedAheadMs?: number;
}

/** Ctrl-C as a terminal in raw mode delivers it. */
const CTRL_C = '\u0003';

/**
 * The approver of a local run: `--approve` grants; on a terminal one key decides (`y` approves,
 * `n` rejects, Ctrl-C stops everything); with neither, the approval is refused at once with how to
 * give it, rather than waiting for a key that cannot come. One prompt at a time.
 */
export function approvalGate(options: ApprovalGateOptions): Approver {
  let queue: Promise<unknown> = Promise.resolve();
  const ask = (request: ApprovalRequest): Promise<ApprovalDecision> => {
    const head = `approval ${request.stageName}/${request.actionName}`;
    if (options.approveAll) return Promise.resolve({ approved: true, by: '--approve' });
    if (!options.input.isTTY || !options.input.setRawMode) {
      options.print(
        `${head}: waiting for approval, but stdin is not a terminal, so no key can give it: ` +
          'run `npm run local -- --approve` to grant every approval, or run in a terminal and press y',
      );
      return Promise.resolve({ approved: false, reason: 'no terminal to approve on and no --approve' });
    }
    const { input } = options;
    options.print(
      `${head}: press y to approve deploying ${request.image} to ${request.environment}, ` +
        'n to reject (the image stays where it is), Ctrl-C to stop pushline local',
    );
    return new Promise((resolve) => {
      const asked = performance.now();
      const onData = (chunk: Buffer | string) => {
        const key = chunk.toString();
        if (key !== CTRL_C && performance.now() - asked < (options.typedAheadMs ?? 150)) {
          options.print(`${head}: ignored keys typed before the question; press y or n now`);
          return;
        }
        const decision: ApprovalDecision | undefined =
          key === 'y' || key === 'Y'
            ? { approved: true, by: 'y pressed' }
            : key === 'n' || key === 'N'
              ? { approved: false, reason: 'rejected (n pressed)' }
              : key === CTRL_C
                ? { approved: false, reason: 'interrupted (Ctrl-C)' }
                : undefined;
        if (!decision) {
          options.print(`${head}: press y to approve or n to reject`);
          return;
        }
        input.off('data', onData);
        input.setRawMode?.(false);
        input.pause();
        resolve(decision);
        if (key === CTRL_C) options.onInterrupt();
      };
      input.setRawMode?.(true);
      input.on('data', onData);
      input.resume();
    });
  };
  return (request) => {
    const decided = queue.then(() => ask(request));
    queue = decided.catch(() => undefined);
    return decided;
  };
}
