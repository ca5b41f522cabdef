import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../lib/config/load';
import { AwsServiceError } from './aws-endpoints';
import { notificationLine, printEndpoints, progressLine, reportLine, retryLine } from './console-output';
import { makeDeployKey, type SshDaemon, startSshd } from './daemons';
import type { Approver } from './environment-walk';
import type { RecordedReport } from './git-host-api';
import type { BuildProgress, LocalCodeBuildOptions } from './local-codebuild';
import { artifactImage, readArtifact } from './local-deploy';
import type { LocalPipeline } from './local-pipeline';
import { startLocalPipeline } from './local-pipeline';
import type { RetryEvent } from './local-retry-queue';
import type { PublishedMessage } from './notification-topic';
import { createSampleRepository, type SampleRepository } from './sample-repository';

export interface DemoOptions {
  readonly workDir: string;
  readonly print: (line: string) => void;
  readonly onBuildLog?: (projectName: string, line: string) => void;
  /** Receives each stop function as soon as there is something to stop, so Ctrl-C can stop it. */
  readonly registerStop?: (stop: () => Promise<void>) => void;
  /**
   * Decides the approval before production (see `approvalGate`).
   * @default refused, so the walk stops after staging
   */
  readonly approve?: Approver;
}

const ZERO_SHA = '0'.repeat(40);
const DEMO_REPOSITORY = 'demo/app';
const DEMO_BACKLOG_PROJECT_REPO = 'DEMO/app';
const DEMO_BACKLOG_URL = 'https://demo.backlog.jp/git/DEMO/app';
const DEMO_NPM_TOKEN = 'npm_demo_token_that_must_not_reach_a_layer';

/**
 * The config the demo runs: one Backlog repository served by the local sshd, deployed to staging,
 * then, once approved, to production.
 */
export function demoConfigYaml(
  sshd: Pick<SshDaemon, 'cloneUrl' | 'knownHostsLine'>,
  barePath: string,
): string {
  return [
    '# Written by `npm run local -- --demo`.',
    'name: pushline-demo',
    'webhook:',
    '  allowedCidrs: ["127.0.0.1/32"]',
    'repositories:',
    `  - name: ${DEMO_REPOSITORY}`,
    '    source:',
    '      provider: backlog',
    `      repository: ${DEMO_BACKLOG_PROJECT_REPO}`,
    `      cloneUrl: ${JSON.stringify(sshd.cloneUrl(barePath))}`,
    // The clone comes from the local sshd, the deliveries from the space the payload names.
    `      host: ${new URL(DEMO_BACKLOG_URL).hostname}`,
    `      knownHosts: [${JSON.stringify(sshd.knownHostsLine)}]`,
    '      apiUrl: https://demo.backlog.jp',
    '    branches: [main]',
    '    docker:',
    '      secrets: [{ id: npm_token, secretName: demo/npm-token }]',
    '    deploy:',
    '      containerPort: 8080',
    '      validation: { path: /health }',
    '      environments:',
    '        - name: staging',
    '        - name: production',
    '          approval: true',
    '          desiredCount: 2',
    '',
  ].join('\n');
}

/** A Backlog Git push delivery, form-encoded as Backlog posts it. */
export function backlogPushBody(before: string, after: string, message: string): string {
  const payload = {
    before,
    after,
    ref: 'refs/heads/main',
    repository: { name: 'app', url: DEMO_BACKLOG_URL, description: 'pushline demo' },
    revisions: [
      {
        id: after,
        url: `${DEMO_BACKLOG_URL}/commit/${after}`,
        author: { name: 'pushline demo', email: 'demo@example.com' },
        message,
        timestamp: new Date().toISOString(),
        added: [],
        removed: [],
        modified: ['app.txt'],
      },
    ],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

async function postBacklog(
  pipeline: LocalPipeline,
  token: string,
  body: string,
): Promise<{ status: number; body: string }> {
  const res = await fetch(`${pipeline.webhookUrl('backlog')}?token=${encodeURIComponent(token)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
  return { status: res.status, body: await res.text() };
}

/** The tags a repository has in the registry, read with its HTTP API. */
async function registryTags(pipeline: LocalPipeline, repository: string): Promise<string[]> {
  const res = await fetch(`http://${pipeline.registry.address}/v2/${repository}/tags/list`);
  if (!res.ok) return [];
  return ((await res.json()) as { tags?: string[] }).tags ?? [];
}

/**
 * Makes CodeBuild answer every StartBuild with ThrottlingException, as it does under load (the SDK
 * retries a throttled call by itself, so one refusal would not reach the function); returns the
 * function that ends it.
 */
function throttleStartBuilds(pipeline: LocalPipeline): () => void {
  pipeline.endpoints.onStartBuild((call) => {
    throw new AwsServiceError('ThrottlingException', `Rate exceeded for project ${call.projectName}`);
  });
  return () => pipeline.endpoints.onStartBuild(pipeline.codebuild.start);
}

export interface DemoWorld {
  readonly sshd: SshDaemon;
  readonly repo: SampleRepository & { readonly firstCommit: string };
  readonly pipeline: LocalPipeline;
  /** Posts a Backlog delivery with this token (the right one unless a test forges it). */
  postBacklog(body: string, token?: string): Promise<{ status: number; body: string }>;
  /** The tags the demo repository has in the registry. */
  registryTags(): Promise<string[]>;
  stop(): Promise<void>;
}

/**
 * The demo's world: a deploy key, a Git repository with its first commit served over SSH with a
 * pinned host key, a config for it, and the local pipeline running that config.
 */
export async function startDemoWorld(
  workDir: string,
  options: Pick<DemoOptions, 'print' | 'onBuildLog' | 'registerStop'> & {
    onProgress?: (p: BuildProgress) => void;
    onRetry?: (event: RetryEvent) => void;
    holdBuild?: LocalCodeBuildOptions['holdBuild'];
    onReport?: (report: RecordedReport) => void;
    onNotification?: (message: PublishedMessage) => void;
    approve?: Approver;
    onDeploy?: (line: string) => void;
  },
): Promise<DemoWorld> {
  const deployKey = makeDeployKey(workDir, 'pushline-demo');
  const sshd = await startSshd({ authorizedKeys: [deployKey.publicKey] });
  options.registerStop?.(() => sshd.stop());
  let pipeline: LocalPipeline | undefined;
  try {
    const repo = createSampleRepository(join(workDir, 'git'), 'version 1\n');
    const configPath = join(workDir, 'pipeline.config.yaml');
    writeFileSync(configPath, demoConfigYaml(sshd, repo.barePath));
    options.print(`demo: Git repository ${sshd.cloneUrl(repo.barePath)} (host key pinned)`);
    options.print('demo: synthesizing the demo config and starting the local parts...');
    pipeline = await startLocalPipeline({
      config: loadConfig(configPath),
      configPath,
      workDir,
      sshPrivateKey: deployKey.privateKey,
      secrets: { 'demo/npm-token': DEMO_NPM_TOKEN },
      onProgress: options.onProgress,
      onBuildLog: options.onBuildLog,
      onRetry: options.onRetry,
      holdBuild: options.holdBuild,
      onReport: options.onReport,
      onNotification: options.onNotification,
      approve: options.approve,
      onDeploy: options.onDeploy,
      registerStop: options.registerStop,
    });
    const running = pipeline;
    return {
      sshd,
      repo,
      pipeline: running,
      postBacklog: (body, token = running.webhookSecret.backlog) => postBacklog(running, token, body),
      registryTags: () => registryTags(running, DEMO_REPOSITORY),
      stop: async () => {
        await running.stop();
        await sshd.stop();
      },
    };
  } catch (err) {
    await pipeline?.stop();
    await sshd.stop();
    throw err;
  }
}

/**
 * The demo: a repository over SSH, two pushes, a Backlog webhook for each, both builds, then the
 * checks a user would make. Returns the exit code: 0 only if both images are in the registry under
 * the pushed SHAs and the replayed and forged deliveries built nothing.
 */
export async function runDemo(options: DemoOptions): Promise<number> {
  const { print } = options;
  // The build of push 1 waits until the build of push 2 has finished, so the older push's build
  // finishes last: the artifact must still hold push 2 (README, "Which commit deploys").
  let firstCommit = '';
  let releaseFirstBuild = () => {};
  const laterBuildFinished = new Promise<void>((resolve) => {
    releaseFirstBuild = resolve;
  });
  const world = await startDemoWorld(options.workDir, {
    ...options,
    onProgress: (p) => {
      print(progressLine(p));
      if ((p.stage === 'done' || p.stage === 'failed') && p.commitSha !== firstCommit) releaseFirstBuild();
    },
    onRetry: (r) => print(retryLine(r)),
    holdBuild: ({ commitSha }) => {
      if (commitSha !== firstCommit) return undefined;
      print(`build of push 1 held until the build of push 2 has finished`);
      return laterBuildFinished;
    },
    onReport: (r) => print(reportLine(r)),
    onNotification: (m) => print(notificationLine(m)),
    onDeploy: print,
  });
  const { pipeline, repo } = world;
  firstCommit = repo.firstCommit;
  try {
    printEndpoints(pipeline, print);
    // Backlog has no commit status: the reporter comments on the open pull requests of the branch.
    pipeline.gitHost.backlogPullRequests.set(DEMO_BACKLOG_PROJECT_REPO, [{ number: 1, branch: 'main' }]);
    print(
      `demo: pull request #1 from main is open on the local Backlog (${pipeline.gitHost.apiUrls.backlog})`,
    );
    const started = Date.now();

    const first = repo.firstCommit;
    print(`push 1: ${first}`);
    const answer1 = await world.postBacklog(backlogPushBody(ZERO_SHA, first, 'First version'));
    print(`webhook push 1: ${answer1.status} ${answer1.body}`);

    const second = repo.pushAppChange('version 2\n', 'Second version');
    print(`push 2: ${second}`);
    // CodeBuild throttles the next StartBuild: the webhook must queue it, and the bundled retry
    // consumer behind the local queue must start it, so no push is lost.
    const endThrottling = throttleStartBuilds(pipeline);
    print('codebuild: throttling every StartBuild (ThrottlingException) while push 2 is delivered');
    const secondBody = backlogPushBody(first, second, 'Second version');
    const answer2 = await world.postBacklog(secondBody);
    endThrottling();
    print(`webhook push 2: ${answer2.status} ${answer2.body}`);
    await pipeline.retryQueue.idle();

    const buildsBefore = pipeline.endpoints.builds.size;
    const replay = await world.postBacklog(secondBody);
    const replayBuilds = pipeline.endpoints.builds.size - buildsBefore;
    print(`webhook replay of push 2: ${replay.status} ${replay.body} (new builds: ${replayBuilds})`);
    const forgedBody = backlogPushBody(second, second.replace(/^./, 'f'), 'forged');
    const forged = await world.postBacklog(forgedBody, 'not-the-token');
    const forgedBuilds = pipeline.endpoints.builds.size - buildsBefore;
    print(`webhook with a wrong token: ${forged.status} ${forged.body} (new builds: ${forgedBuilds})`);

    await pipeline.codebuild.idle();
    await pipeline.codepipeline.idle();
    const elapsed = Date.now() - started;
    const tags = await world.registryTags();
    const images = [first, second].map((sha) => ({
      sha,
      full: tags.includes(sha),
      short: tags.includes(sha.slice(0, 12)),
    }));
    for (const image of images) {
      print(
        `image ${pipeline.registry.address}/${DEMO_REPOSITORY}:${image.sha} ${image.full ? 'present' : 'MISSING'}` +
          ` (short tag ${image.sha.slice(0, 12)} ${image.short ? 'present' : 'MISSING'})`,
      );
    }
    const deployed = deployedCommit(pipeline.artifactDir);
    print(
      `artifact artifacts/demo-app/deploy.zip: ${deployed === second ? 'push 2' : deployed === first ? 'push 1' : 'none'} (${deployed ?? '-'}), though push 1's build finished last`,
    );
    await pipeline.reported();
    const reported = [first, second].map((sha) => {
      const image = `Image: ${pipeline.registry.address}/${DEMO_REPOSITORY}:${sha.slice(0, 12)}`;
      return pipeline.gitHost.reports.some(
        (r) =>
          r.pullRequest === 1 &&
          r.content?.includes(`${sha.slice(0, 12)} built`) &&
          r.content.includes(image),
      );
    });
    print(`build results: ${reported.filter(Boolean).length} of 2 pushes reported as built with their image`);
    const walked = walkSummary(pipeline, second);
    print(`deploy walk: ${walked.summary}`);
    const webhookMs = pipeline.webhookDurations.reduce((a, b) => a + b, 0);
    print(
      `builds: ${pipeline.endpoints.builds.size}; both pushes to both images ${(elapsed / 1000).toFixed(1)} s, ` +
        `of which ${webhookMs.toFixed(1)} ms in the webhook function (${pipeline.webhookDurations.length} deliveries)`,
    );
    const ok =
      answer1.status === 202 &&
      answer2.status === 202 &&
      JSON.parse(answer2.body).queued !== undefined &&
      replayBuilds === 0 &&
      forged.status === 401 &&
      forgedBuilds === 0 &&
      pipeline.endpoints.builds.size === 2 &&
      images.every((i) => i.full && i.short) &&
      deployed === second &&
      reported.every(Boolean) &&
      walked.ok;
    print(ok ? 'demo: OK' : 'demo: FAILED');
    return ok ? 0 : 1;
  } finally {
    await world.stop();
  }
}

/**
 * How the one walk of the demo went: push 2's image on staging, and on production the same image
 * when the approval was given, nothing when it was not.
 */
function walkSummary(pipeline: LocalPipeline, pushed: string): { ok: boolean; summary: string } {
  const runs = pipeline.codepipeline.runs;
  const run = runs[0];
  if (runs.length !== 1 || !run)
    return { ok: false, summary: `${runs.length} walks, expected 1 (push 2's artifact)` };
  const { deployed, stopped } = run.result;
  const images = new Set(deployed.map((d) => d.image));
  const where = deployed.map((d) => d.environment).join(' then ') || 'nothing';
  const summary = `${where} deployed${images.size === 1 ? ` with one image, ${[...images][0]}` : ''}${stopped ? `; stopped at ${stopped.environment}: ${stopped.reason}` : ''}`;
  const ok =
    run.commitSha === pushed &&
    deployed[0]?.environment === 'staging' &&
    images.size === 1 &&
    [...images].every((image) => image.endsWith(`:${pushed}`)) &&
    (deployed.length === 2 || (stopped?.environment === 'production' && deployed.length === 1));
  return { ok, summary };
}

/** The commit whose image the demo repository's deploy artifact names, if there is one. */
function deployedCommit(artifactDir: string): string | undefined {
  const zip = join(artifactDir, 'artifacts', 'demo-app', 'deploy.zip');
  if (!existsSync(zip)) return undefined;
  return artifactImage(readArtifact(zip)).split(':').pop();
}
