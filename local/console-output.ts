import { PROVIDERS } from '../lib/config/schema';
import type { RecordedReport } from './git-host-api';
import type { BuildProgress } from './local-codebuild';
import type { LocalPipeline } from './local-pipeline';
import type { RetryEvent } from './local-retry-queue';
import type { PublishedMessage } from './notification-topic';

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

export function retryLine(r: RetryEvent): string {
  const head = `retry queue: message ${r.messageId.slice(0, 8)} try ${r.attempt}`;
  if (r.outcome === 'delivered') return `${head}: build started`;
  if (r.outcome === 'dead-lettered') return `${head}: failed again, moved to the dead-letter queue`;
  return `${head}: failed, next try in ${r.retryInSeconds ?? '?'} s (compressed locally)`;
}

/** A commit status or pull request comment as the Git host would show it. */
export function reportLine(r: RecordedReport): string {
  if (r.provider === 'backlog') {
    const [head = '', ...rest] = (r.content ?? '').split('\n');
    const image = rest.find((line) => line.startsWith('Image: '));
    return `report backlog ${r.repository} pull request #${r.pullRequest}: ${head}${image ? ` (${image})` : ''}`;
  }
  return `report ${r.provider} ${r.repository} ${r.sha?.slice(0, 12)}: ${r.state} ${r.context} "${r.description}"`;
}

/** A message on the platform team's topic. */
export function notificationLine(m: PublishedMessage): string {
  return `notification: ${m.subject ?? '(no subject)'}`;
}
