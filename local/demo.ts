import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../lib/config/load';
import { printEndpoints, progressLine } from './console-output';
import { type SshDaemon, startSshd, TOOL_PATHS } from './daemons';
import type { LocalPipeline } from './local-pipeline';
import { startLocalPipeline } from './local-pipeline';
import { createSampleRepository } from './sample-repository';

export interface DemoOptions {
  readonly workDir: string;
  readonly print: (line: string) => void;
  readonly onBuildLog?: (projectName: string, line: string) => void;
  /** Hands the running pipeline to the caller, so Ctrl-C can stop it. */
  readonly setPipeline: (pipeline: LocalPipeline) => void;
}

const ZERO_SHA = '0'.repeat(40);
const DEMO_REPOSITORY = 'demo/app';
const DEMO_BACKLOG_URL = 'https://demo.backlog.jp/git/DEMO/app';
const DEMO_NPM_TOKEN = 'npm_demo_token_that_must_not_reach_a_layer';

/** The config the demo runs: one Backlog repository served by the local sshd. */
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
    '      repository: DEMO/app',
    `      cloneUrl: ${JSON.stringify(sshd.cloneUrl(barePath))}`,
    `      knownHosts: [${JSON.stringify(sshd.knownHostsLine)}]`,
    '    branches: [main]',
    '    docker:',
    '      secrets: [{ id: npm_token, secretName: demo/npm-token }]',
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

function makeDeployKey(dir: string): { privateKey: string; publicKey: string } {
  const file = join(dir, 'demo-deploy-key');
  execFileSync(TOOL_PATHS['ssh-keygen'], [
    '-q',
    '-t',
    'ed25519',
    '-N',
    '',
    '-C',
    'pushline-demo',
    '-f',
    file,
  ]);
  const keys = {
    privateKey: readFileSync(file, 'utf8'),
    publicKey: readFileSync(`${file}.pub`, 'utf8').trim(),
  };
  rmSync(file);
  return keys;
}

/**
 * The demo: a repository over SSH, two pushes, a Backlog webhook for each, both builds, then the
 * checks a user would make. Returns the exit code: 0 only if both images are in the registry under
 * the pushed SHAs and the replayed and forged deliveries built nothing.
 */
export async function runDemo(options: DemoOptions): Promise<number> {
  const { workDir, print } = options;
  const deployKey = makeDeployKey(workDir);
  const sshd = await startSshd({ authorizedKeys: [deployKey.publicKey] });
  try {
    const repo = createSampleRepository(join(workDir, 'git'), 'version 1\n');
    const configPath = join(workDir, 'pipeline.config.yaml');
    writeFileSync(configPath, demoConfigYaml(sshd, repo.barePath));
    print(`demo: Git repository ${sshd.cloneUrl(repo.barePath)} (host key pinned)`);
    print('demo: synthesizing the demo config and starting the local parts...');
    const pipeline = await startLocalPipeline({
      config: loadConfig(configPath),
      configPath,
      workDir,
      sshPrivateKey: deployKey.privateKey,
      secrets: { 'demo/npm-token': DEMO_NPM_TOKEN },
      onProgress: (p) => print(progressLine(p)),
      onBuildLog: options.onBuildLog,
    });
    options.setPipeline(pipeline);
    printEndpoints(pipeline, print);
    const token = pipeline.webhookSecret.backlog;
    const started = Date.now();

    const first = repo.firstCommit;
    print(`push 1: ${first}`);
    const firstBody = backlogPushBody(ZERO_SHA, first, 'First version');
    const answer1 = await postBacklog(pipeline, token, firstBody);
    print(`webhook push 1: ${answer1.status} ${answer1.body}`);

    const second = repo.pushAppChange('version 2\n', 'Second version');
    print(`push 2: ${second}`);
    const secondBody = backlogPushBody(first, second, 'Second version');
    const answer2 = await postBacklog(pipeline, token, secondBody);
    print(`webhook push 2: ${answer2.status} ${answer2.body}`);

    const buildsBefore = pipeline.endpoints.builds.size;
    const replay = await postBacklog(pipeline, token, secondBody);
    const replayBuilds = pipeline.endpoints.builds.size - buildsBefore;
    print(`webhook replay of push 2: ${replay.status} ${replay.body} (new builds: ${replayBuilds})`);
    const forged = await postBacklog(
      pipeline,
      'not-the-token',
      backlogPushBody(second, second.replace(/^./, 'f'), 'x'),
    );
    const forgedBuilds = pipeline.endpoints.builds.size - buildsBefore;
    print(`webhook with a wrong token: ${forged.status} ${forged.body} (new builds: ${forgedBuilds})`);

    await pipeline.codebuild.idle();
    const elapsed = Date.now() - started;
    const tags = await registryTags(pipeline, DEMO_REPOSITORY);
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
    const webhookMs = pipeline.webhookDurations.reduce((a, b) => a + b, 0);
    print(
      `builds: ${pipeline.endpoints.builds.size}; push-to-image ${(elapsed / 1000).toFixed(1)} s, ` +
        `of which in the webhook function ${webhookMs.toFixed(1)} ms (${((100 * webhookMs) / elapsed).toFixed(3)} %)`,
    );
    const ok =
      answer1.status === 202 &&
      answer2.status === 202 &&
      replayBuilds === 0 &&
      forged.status === 401 &&
      forgedBuilds === 0 &&
      pipeline.endpoints.builds.size === 2 &&
      images.every((i) => i.full && i.short);
    print(ok ? 'demo: OK' : 'demo: FAILED');
    return ok ? 0 : 1;
  } finally {
    await sshd.stop();
  }
}
