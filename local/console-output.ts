import { PROVIDERS } from '../lib/config/schema';
import type { BuildProgress } from './local-codebuild';
import type { LocalPipeline } from './local-pipeline';

/** What pushline local prints: one progress line per build stage, and where to send webhooks. */

export function progressLine(p: BuildProgress): string {
  const sha = p.commitSha.slice(0, 12);
  const head = `build ${p.projectName} ${sha}`;
  if (p.stage === 'done') return `${head}: done ${p.detail ?? ''}`;
  if (p.stage === 'failed') return `${head}: failed\n${(p.detail ?? '').replace(/^/gm, '    | ')}`;
  return `${head}: ${p.stage}`;
}

export function printEndpoints(pipeline: LocalPipeline, out: (line: string) => void): void {
  for (const provider of PROVIDERS) {
    const secret = pipeline.webhookSecret[provider];
    const how =
      provider === 'backlog'
        ? `${pipeline.webhookUrl(provider)}?token=${secret}`
        : `${pipeline.webhookUrl(provider)}  secret: ${secret}`;
    out(`webhook ${provider}: ${how}`);
  }
  out(`registry: ${pipeline.registry.address}   artifacts: ${pipeline.artifactDir}`);
}
