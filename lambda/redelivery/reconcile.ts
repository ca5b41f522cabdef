// zod/mini: the same schemas at a fraction of the bundle (the full zod adds about 440 KB here).
import * as z from 'zod/mini';

/**
 * The GitHub redelivery reconciler, without HTTP: GitHub never redelivers a failed delivery by
 * itself ("Handling failed webhook deliveries", GitHub Docs,
 * https://docs.github.com/en/webhooks/using-webhooks/handling-failed-webhook-deliveries), so on a
 * schedule this lists the recent deliveries of pushline's hook in each repository
 * (`GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries`) and asks GitHub to redeliver each push
 * whose every attempt failed on pushline's side (`POST …/deliveries/{delivery_id}/attempts`), as the
 * docs' own example script does. A redelivery carries the same `X-GitHub-Delivery`, so one that
 * already built is a no-op for the webhook.
 */

/** One entry of "List deliveries for a repository webhook" (only the fields used). */
export const HookDeliverySchema = z.object({
  id: z.number(),
  guid: z.string(),
  delivered_at: z.string(),
  redelivery: z.boolean(),
  status_code: z.number(),
  event: z.string(),
});
export type HookDelivery = z.infer<typeof HookDeliverySchema>;

/** One entry of "List repository webhooks" (only the fields used). */
export const RepositoryHookSchema = z.object({
  id: z.number(),
  config: z.object({ url: z.optional(z.string()) }),
});

export interface RedeliveryPolicy {
  /** Deliveries older than this are left alone (GitHub keeps them for 3 days). */
  readonly lookbackMs: number;
  /** A push whose delivery failed this many times is left to a person (an ERROR log line). */
  readonly maxAttempts: number;
}

/** A failed push to redeliver (the latest attempt's id), or one given up on. */
export interface RedeliveryDecision {
  readonly guid: string;
  readonly deliveryId: number;
  readonly attempts: number;
  readonly action: 'redeliver' | 'give-up';
}

/**
 * Whether an attempt failed on pushline's side: no answer in time (GitHub records status code 0),
 * or a 5xx. A 4xx is the webhook refusing the delivery (bad signature, malformed body), which a
 * redelivery would only repeat.
 */
export function failedOnOurSide(delivery: HookDelivery): boolean {
  return delivery.status_code === 0 || delivery.status_code >= 500;
}

/** Groups attempts by delivery (`guid`) and decides, for each push none of whose attempts got through, what to do. */
export function decideRedeliveries(
  deliveries: readonly HookDelivery[],
  now: number,
  policy: RedeliveryPolicy,
): RedeliveryDecision[] {
  const byGuid = new Map<string, HookDelivery[]>();
  for (const delivery of deliveries) {
    if (delivery.event !== 'push') continue;
    if (now - Date.parse(delivery.delivered_at) > policy.lookbackMs) continue;
    byGuid.set(delivery.guid, [...(byGuid.get(delivery.guid) ?? []), delivery]);
  }
  const decisions: RedeliveryDecision[] = [];
  for (const [guid, attempts] of byGuid) {
    if (!attempts.every(failedOnOurSide)) continue;
    const latest = attempts.reduce((a, b) =>
      Date.parse(b.delivered_at) > Date.parse(a.delivered_at) ? b : a,
    );
    decisions.push({
      guid,
      deliveryId: latest.id,
      attempts: attempts.length,
      action: attempts.length >= policy.maxAttempts ? 'give-up' : 'redeliver',
    });
  }
  return decisions;
}

/** The GitHub REST calls the reconciler makes. */
export interface GithubHooksApi {
  listHooks(repository: string): Promise<z.infer<typeof RepositoryHookSchema>[]>;
  /** Every delivery of the hook delivered since `since` (newest first, all pages). */
  listDeliveries(repository: string, hookId: number, since: number): Promise<HookDelivery[]>;
  redeliver(repository: string, hookId: number, deliveryId: number): Promise<void>;
}

export interface ReconcileReport {
  readonly repository: string;
  readonly hookId?: number;
  readonly redelivered: readonly string[];
  readonly gaveUp: readonly string[];
  readonly error?: string;
}

/**
 * For each repository: the hooks pointing at `webhookUrl`, their failed pushes redelivered. One
 * repository failing (no access, API down) does not stop the others.
 */
export async function reconcile(
  api: GithubHooksApi,
  repositories: readonly string[],
  webhookUrl: string,
  now: number,
  policy: RedeliveryPolicy,
): Promise<ReconcileReport[]> {
  const reports: ReconcileReport[] = [];
  for (const repository of repositories) {
    try {
      const hooks = (await api.listHooks(repository)).filter((h) => h.config.url?.startsWith(webhookUrl));
      if (hooks.length === 0) {
        reports.push({ repository, redelivered: [], gaveUp: [], error: `no webhook to ${webhookUrl}` });
        continue;
      }
      for (const hook of hooks) {
        const deliveries = await api.listDeliveries(repository, hook.id, now - policy.lookbackMs);
        const decisions = decideRedeliveries(deliveries, now, policy);
        for (const d of decisions.filter((x) => x.action === 'redeliver'))
          await api.redeliver(repository, hook.id, d.deliveryId);
        reports.push({
          repository,
          hookId: hook.id,
          redelivered: decisions.filter((d) => d.action === 'redeliver').map((d) => d.guid),
          gaveUp: decisions.filter((d) => d.action === 'give-up').map((d) => d.guid),
        });
      }
    } catch (err) {
      reports.push({
        repository,
        redelivered: [],
        gaveUp: [],
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
  return reports;
}
