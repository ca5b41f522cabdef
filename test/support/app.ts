import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { App } from 'aws-cdk-lib';
import { loadConfig, parseConfig } from '../../lib/config/load';
import type { PipelineConfig } from '../../lib/config/schema';
import { createPushlineStacks, type PushlineStacks } from '../../lib/pushline-app';

export const ROOT = resolve(__dirname, '..', '..');
export const SAMPLE_CONFIG = join(ROOT, 'pipeline.config.yaml');

/** The feature flags of `cdk.json`, so that tests synthesize exactly what `cdk synth` does. */
const CDK_CONTEXT = (
  JSON.parse(readFileSync(join(ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> }
).context;

export function sampleConfig(): PipelineConfig {
  return loadConfig(SAMPLE_CONFIG);
}

/**
 * Builds the app for a config, with cdk-nag on. `app.synth()` throws with the nag report when a
 * rule fails, so every test that synthesizes also proves the stacks are nag-clean.
 */
export function buildApp(
  config: PipelineConfig,
  options: { nag?: boolean } = {},
): { app: App; stacks: PushlineStacks } {
  const app = new App({ outdir: mkdtempSync(join(tmpdir(), 'pushline-test-')), context: CDK_CONTEXT });
  const stacks = createPushlineStacks(app, config, { nag: options.nag ?? false });
  return { app, stacks };
}

/** A valid config with `count` repositories spread over the three providers, every fourth one deployed. */
export function generatedConfig(count: number): PipelineConfig {
  const providers = ['backlog', 'github', 'gitlab'] as const;
  const repos = Array.from({ length: count }, (_, i) => {
    const provider = providers[i % providers.length] ?? 'github';
    const cloneUrl =
      provider === 'backlog'
        ? `example@example.git.backlog.jp:/PROJ/app-${i}.git`
        : `git@${provider}.com:example/app-${i}.git`;
    return [
      `  - name: team-${i % 5}/app-${i}`,
      '    source:',
      `      provider: ${provider}`,
      `      repository: ${provider === 'backlog' ? 'PROJ' : 'example'}/app-${i}`,
      `      cloneUrl: ${cloneUrl}`,
      '    branches: [main, "release/*"]',
      '    share: { accounts: ["123456789012"], actions: pull }',
      ...(i % 4 === 0 ? ['    deploy: { containerPort: 8080 }'] : []),
    ].join('\n');
  });
  return parseConfig(
    `webhook:\n  allowedCidrs: [backlog-jp, github-hooks]\nrepositories:\n${repos.join('\n')}\n`,
  );
}
