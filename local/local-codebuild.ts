import { randomUUID } from 'node:crypto';
import type { LocalBuild, StartBuildCall } from './aws-endpoints';
import { runBuildspec } from './buildspec-runner';

/** Where a build is, as the progress lines show it. */
export type BuildStage = 'queued' | 'fetching' | 'building' | 'pushing' | 'done' | 'failed';

export interface BuildProgress {
  readonly buildId: string;
  readonly projectName: string;
  readonly commitSha: string;
  readonly stage: BuildStage;
  /** For `done`: the image reference; for `failed`: the last lines of the log. */
  readonly detail?: string;
}

export interface LocalProject {
  /** The CodeBuild project name the webhook starts. */
  readonly projectName: string;
  /** The environment the project itself sets (what the CDK project has, pointed at local parts). */
  readonly environment: Readonly<Record<string, string>>;
}

export interface LocalCodeBuildOptions {
  readonly buildspecPath: string;
  /** The directory the buildspec runs in (CODEBUILD_SRC_DIR). */
  readonly sourceDir: string;
  readonly projects: readonly LocalProject[];
  /** Each build gets its own work directory under this one. */
  readonly workRoot: string;
  readonly onProgress?: (progress: BuildProgress) => void;
  readonly onLog?: (projectName: string, line: string) => void;
  /**
   * Holds a build back before it enters its project's queue until the promise settles (undefined:
   * no hold), so that a later build can finish first, as CodeBuild's concurrent builds may.
   * @default no build is held
   */
  readonly holdBuild?: (build: {
    readonly buildId: string;
    readonly commitSha: string;
  }) => Promise<void> | undefined;
  /** Receives a "CodeBuild Build State Change" event when a build starts and when it ends. */
  readonly onStateChange?: (event: BuildStateChangeEvent) => void;
  /** The account and region the events name. */
  readonly account?: string;
  readonly region?: string;
}

/**
 * A "CodeBuild Build State Change" event in the shape AWS documents ("Build notifications input
 * format reference"), with the fields pushline's reporter reads.
 */
export interface BuildStateChangeEvent {
  readonly version: '0';
  readonly id: string;
  readonly 'detail-type': 'CodeBuild Build State Change';
  readonly source: 'aws.codebuild';
  readonly account: string;
  readonly time: string;
  readonly region: string;
  readonly resources: readonly string[];
  readonly detail: {
    readonly 'build-status': LocalBuild['buildStatus'];
    readonly 'project-name': string;
    readonly 'build-id': string;
    readonly 'additional-information': {
      readonly 'build-complete': boolean;
      readonly environment: {
        readonly 'environment-variables': readonly { name: string; value: string; type: 'PLAINTEXT' }[];
      };
    };
  };
}

/** Lines of the build log that move a build to its next stage. */
const STAGE_MARKERS: readonly [RegExp, BuildStage][] = [
  [/^pushline: building /, 'fetching'],
  [/^pushline: fetched /, 'building'],
  [/^(The push refers to repository|pushline: .*already in the registry)/, 'pushing'],
];

/**
 * Runs the builds that StartBuild asks for, the way CodeBuild would: the project's buildspec with
 * the project's environment under the call's overrides, one build at a time per project (a
 * project's concurrent-build limit of one), later builds queued behind it.
 */
export class LocalCodeBuild {
  private readonly projects: Map<string, LocalProject>;
  private readonly queues = new Map<string, Promise<void>>();
  private pending = 0;
  private readonly drained: (() => void)[] = [];

  constructor(private readonly options: LocalCodeBuildOptions) {
    this.projects = new Map(options.projects.map((p) => [p.projectName, p]));
  }

  /** For `startLocalAwsEndpoints({ onStartBuild })`: accepts the build and queues it. */
  readonly start = (call: StartBuildCall, build: LocalBuild): void => {
    const project = this.projects.get(call.projectName);
    if (!project) {
      build.buildStatus = 'FAILED';
      return;
    }
    const overrides = Object.fromEntries(
      (call.environmentVariablesOverride ?? []).map((v) => [v.name, v.value]),
    );
    const commitSha = overrides.COMMIT_SHA ?? '';
    this.report({ buildId: build.id, projectName: project.projectName, commitSha, stage: 'queued' });
    this.pending += 1;
    const hold = this.options.holdBuild?.({ buildId: build.id, commitSha }) ?? Promise.resolve();
    const next = hold.then(() => {
      const previous = this.queues.get(project.projectName) ?? Promise.resolve();
      const queued = previous.then(() => this.run(project, build, overrides, commitSha));
      this.queues.set(project.projectName, queued);
      return queued;
    });
    void next.finally(() => {
      this.pending -= 1;
      if (this.pending === 0) for (const resolve of this.drained.splice(0)) resolve();
    });
  };

  /** Resolves when no build is queued or running. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  private async run(
    project: LocalProject,
    build: LocalBuild,
    overrides: Record<string, string>,
    commitSha: string,
  ): Promise<void> {
    let stage: BuildStage = 'queued';
    const base = { buildId: build.id, projectName: project.projectName, commitSha };
    // The variables the event shows: the image repository and the StartBuild overrides, never the
    // values CodeBuild resolves from Secrets Manager (the event shows only their names).
    const eventEnvironment = {
      IMAGE_REPOSITORY_URI: project.environment.IMAGE_REPOSITORY_URI ?? '',
      ...overrides,
    };
    this.stateChange(build, project.projectName, eventEnvironment);
    const result = await runBuildspec({
      buildspecPath: this.options.buildspecPath,
      cwd: this.options.sourceDir,
      env: {
        ...project.environment,
        PUSHLINE_WORK_DIR: `${this.options.workRoot}/${build.id.replace(/[^A-Za-z0-9_-]/g, '_')}`,
        CODEBUILD_BUILD_ID: build.id,
        // As CodeBuild sets it: when the build was started, epoch milliseconds.
        CODEBUILD_START_TIME: String(Math.round(build.startTime * 1000)),
        ...overrides,
      },
      onLog: (line) => {
        this.options.onLog?.(project.projectName, line);
        for (const [pattern, next] of STAGE_MARKERS) {
          if (pattern.test(line) && stageOrder(next) > stageOrder(stage)) {
            stage = next;
            this.report({ ...base, stage });
          }
        }
      },
    });
    build.buildStatus = result.succeeded ? 'SUCCEEDED' : 'FAILED';
    build.endTime = Date.now() / 1000;
    this.stateChange(build, project.projectName, eventEnvironment);
    const image = `${project.environment.IMAGE_REPOSITORY_URI ?? project.projectName}:${commitSha}`;
    this.report(
      result.succeeded
        ? { ...base, stage: 'done', detail: image }
        : { ...base, stage: 'failed', detail: result.log.slice(-15).join('\n') },
    );
  }

  private stateChange(build: LocalBuild, projectName: string, environment: Record<string, string>): void {
    const { onStateChange, account = '000000000000', region = 'us-east-1' } = this.options;
    onStateChange?.({
      version: '0',
      id: randomUUID(),
      'detail-type': 'CodeBuild Build State Change',
      source: 'aws.codebuild',
      account,
      time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      region,
      resources: [build.arn],
      detail: {
        'build-status': build.buildStatus,
        'project-name': projectName,
        'build-id': build.arn,
        'additional-information': {
          'build-complete': build.buildStatus !== 'IN_PROGRESS',
          environment: {
            'environment-variables': Object.entries(environment).map(([name, value]) => ({
              name,
              value,
              type: 'PLAINTEXT' as const,
            })),
          },
        },
      },
    });
  }

  private report(progress: BuildProgress): void {
    this.options.onProgress?.(progress);
  }
}

function stageOrder(stage: BuildStage): number {
  return ['queued', 'fetching', 'building', 'pushing', 'done', 'failed'].indexOf(stage);
}
