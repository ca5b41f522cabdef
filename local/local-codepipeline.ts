import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { deployEnvironments, projectSuffix, type RepositoryConfig } from '../lib/config/schema';
import { artifactKey, pipelineStackName, serviceStackName } from '../lib/resource-names';
import { LOCAL_ACCOUNT, LOCAL_REGION } from './cloud-assembly';
import {
  type ApprovalRequest,
  type Approver,
  type WalkEnvironment,
  type WalkResult,
  walkEnvironments,
} from './environment-walk';
import { artifactImage, localDeployer, readArtifact, registryDigest } from './local-deploy';

/**
 * The local stand-in for each deployed repository's CodePipeline: when a build has written the
 * repository's deploy artifact (the object creation that starts the real pipeline), it walks the
 * artifact through the repository's environments. One walk at a time, in the order the artifacts
 * were written, so that approvals are asked one after the other: a newer artifact waits for the
 * walk before it, where CodePipeline's SUPERSEDED mode lets "a more recent execution overtake an
 * older one" ("How pipeline executions work":
 * https://docs.aws.amazon.com/codepipeline/latest/userguide/concepts-how-it-works.html).
 */

export interface LocalCodePipelineOptions {
  /** The installation's name (`name` in the config), which the stack names start with. */
  readonly installation: string;
  readonly repositories: readonly RepositoryConfig[];
  /** Where the builds write the artifacts (`ARTIFACT_DIR`), each under its artifact key. */
  readonly artifactDir: string;
  /** Where the rendered task definitions and AppSpecs go, per repository and environment. */
  readonly deploymentsDir: string;
  readonly approve: Approver;
  /** The SNS endpoint the approval requests are published to (the local notification topic). */
  readonly snsEndpoint: string;
  readonly print: (line: string) => void;
}

/** A walk of one artifact, once it has ended. */
export interface LocalPipelineRun {
  readonly repository: string;
  readonly commitSha: string;
  readonly result: WalkResult;
}

export class LocalCodePipeline {
  /** Every walk that has ended, in order. */
  public readonly runs: LocalPipelineRun[] = [];
  private readonly walked = new Set<string>();
  private readonly revisions = new Map<string, number>();
  private readonly sns: SNSClient;
  private walking: Promise<void> = Promise.resolve();

  constructor(private readonly options: LocalCodePipelineOptions) {
    this.sns = new SNSClient({
      endpoint: options.snsEndpoint,
      region: LOCAL_REGION,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
  }

  /**
   * Tells the stand-in that a build of `projectName` succeeded for `commitSha`: if the build wrote
   * the artifact (the build script may keep a newer push's artifact instead), the walk starts.
   */
  buildSucceeded(repository: RepositoryConfig, commitSha: string): void {
    if (!repository.deploy) return;
    const zip = join(this.options.artifactDir, artifactKey(repository));
    // The build script records the push whose artifact it wrote next to the zip: "<time> <commit>".
    const record = existsSync(`${zip}.push`) ? readFileSync(`${zip}.push`, 'utf8').trim() : '';
    if (!record.endsWith(` ${commitSha}`) || this.walked.has(`${repository.name} ${record}`)) return;
    this.walked.add(`${repository.name} ${record}`);
    const { deploy } = repository;
    // Read now: the walk may wait for an earlier one, and a later build may replace the artifact.
    const files = readArtifact(zip);
    const image = artifactImage(files);
    // A newer push's build wrote the zip between the record and the read: that build walks it.
    if (!image.endsWith(`:${commitSha}`)) return;
    const environments = deployEnvironments(deploy);
    const deployLocally = localDeployer({
      files,
      outDir: join(this.options.deploymentsDir, projectSuffix(repository.name)),
      digestOf: registryDigest,
      revisions: this.revisions,
    });
    const walk = async () => {
      const result = await walkEnvironments({
        repository: repository.name,
        environments,
        image,
        approve: this.options.approve,
        announceApproval: (request) =>
          this.announce(repository, request).catch((err: unknown) =>
            this.options.print(`warning: the approval request was not published: ${(err as Error).message}`),
          ),
        deploy: async (environment: WalkEnvironment) => {
          const outcome = await deployLocally(environment);
          const validation = environments.find((e) => e.name === environment.name)?.deploy.validation;
          if (!outcome.ok || !validation) return outcome;
          return {
            ...outcome,
            notes: [
              ...(outcome.notes ?? []),
              `validation GET ${validation.path} (expecting ${validation.expectStatus}) not run: pushline local starts no containers, so nothing answers a test listener; on AWS the AfterAllowTestTraffic hook runs it before production traffic moves`,
            ],
          };
        },
        print: this.options.print,
      });
      this.runs.push({ repository: repository.name, commitSha, result });
    };
    this.walking = this.walking.then(walk).catch((err: unknown) => {
      this.options.print(
        `warning: the deploy walk of ${repository.name} ended early: ${(err as Error).message}`,
      );
    });
  }

  /** Resolves when every walk started so far has ended. */
  idle(): Promise<void> {
    return this.walking;
  }

  /**
   * Publishes the approval request as CodePipeline does when an approval action has a notification
   * topic: a JSON message with the pipeline, stage, action and token ("JSON data format for manual
   * approval notifications in CodePipeline":
   * https://docs.aws.amazon.com/codepipeline/latest/userguide/approvals-json-format.html). The
   * subject is this stand-in's; AWS does not document one.
   */
  private async announce(repository: RepositoryConfig, request: ApprovalRequest): Promise<void> {
    // Without environments there is no approval; with them the topic is in the pipeline stack.
    const stack = repository.deploy?.environments
      ? pipelineStackName(this.options.installation, repository)
      : serviceStackName(this.options.installation, repository);
    const pipelineName = `${stack}-local`;
    const token = randomUUID();
    const consoleLink = `https://console.aws.amazon.com/codepipeline/home?region=${LOCAL_REGION}#/view/${pipelineName}`;
    const expires = new Date(Date.now() + 7 * 24 * 3600 * 1000).toISOString().replace(/:\d\d\.\d+Z$/, 'Z');
    const message = {
      region: LOCAL_REGION,
      consoleLink,
      approval: {
        pipelineName,
        stageName: request.stageName,
        actionName: request.actionName,
        token,
        expires,
        approvalReviewLink: `${consoleLink}/${request.stageName}/${request.actionName}/approve/${token}`,
        customData: `Deploy this commit's image to ${request.environment}?`,
      },
    };
    await this.sns.send(
      new PublishCommand({
        TopicArn: `arn:aws:sns:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${stack}-Notifications`,
        Subject: `APPROVAL NEEDED: ${pipelineName} ${request.stageName}/${request.actionName}`,
        Message: JSON.stringify(message),
      }),
    );
  }
}
