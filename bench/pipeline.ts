import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backlogPushBody, startDemoWorld } from '../local/demo';
import { SAMPLE_DOCKERFILE_WITH_DEPENDENCIES } from '../local/sample-repository';

/**
 * End to end on this machine (`npm run local`'s parts): push-to-image time of a cold build (fresh
 * Docker engine, empty registry) and of a cached rebuild after a one-line change, and the share of
 * each spent inside the webhook function. The cold push is the baseline of the ratios.
 */

async function pushToImage(
  world: Awaited<ReturnType<typeof startDemoWorld>>,
  before: string,
  after: string,
): Promise<{ totalMs: number; webhookMs: number; status: number }> {
  const durationsBefore = world.pipeline.webhookDurations.length;
  const started = performance.now();
  const answer = await world.postBacklog(backlogPushBody(before, after, 'bench'));
  await world.pipeline.codebuild.idle();
  const totalMs = performance.now() - started;
  const webhookMs = world.pipeline.webhookDurations.slice(durationsBefore).reduce((a, b) => a + b, 0);
  if (!(await world.registryTags()).includes(after))
    throw new Error(`the image of ${after} is not in the registry`);
  return { totalMs, webhookMs, status: answer.status };
}

async function main(): Promise<void> {
  const workDir = mkdtempSync(join(tmpdir(), 'pushline-bench-'));
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
  const world = await startDemoWorld(workDir, { print: () => undefined });
  try {
    // A Dockerfile with a dependency step, so that the cache has something to save.
    writeFileSync(join(world.repo.workPath, 'Dockerfile'), SAMPLE_DOCKERFILE_WITH_DEPENDENCIES);
    const first = world.repo.pushAppChange('version 1\n', 'Install dependencies');
    const cold = await pushToImage(world, world.repo.firstCommit, first);
    const second = world.repo.pushAppChange('version 2\n', 'One-line change');
    const cached = await pushToImage(world, first, second);
    const row = (name: string, r: typeof cold) =>
      `${name.padEnd(26)} ${(r.totalMs / 1000).toFixed(2).padStart(7)} s  ${(r.totalMs / cold.totalMs).toFixed(2).padStart(5)}x  ` +
      `webhook ${r.webhookMs.toFixed(1).padStart(6)} ms = ${((100 * r.webhookMs) / r.totalMs).toFixed(3)} %`;
    process.stdout.write(
      'pipeline (local end to end: webhook → build → registry), baseline: the cold push\n',
    );
    process.stdout.write(`${row('push-to-image, cold', cold)}\n`);
    process.stdout.write(`${row('push-to-image, cached', cached)}\n`);
  } finally {
    await world.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/pipeline.ts: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
