import * as iam from 'aws-cdk-lib/aws-iam';
import { normalizeCidr } from '../config/cidr-presets';
import type { ShareAction, ShareConfig } from '../config/schema';

/** What a consumer account needs to pull an image: the manifest, and the layers it points at. */
export const PULL_ACTIONS = [
  'ecr:BatchGetImage',
  'ecr:GetDownloadUrlForLayer',
  'ecr:BatchCheckLayerAvailability',
] as const;

/** What pushing adds: uploading layers and writing the manifest (and so the tag). */
export const PUSH_ACTIONS = [
  'ecr:PutImage',
  'ecr:InitiateLayerUpload',
  'ecr:UploadLayerPart',
  'ecr:CompleteLayerUpload',
] as const;

/** The repository actions one `share` intent grants. */
export function shareActions(actions: ShareAction): string[] {
  return actions === 'push-pull' ? [...PULL_ACTIONS, ...PUSH_ACTIONS] : [...PULL_ACTIONS];
}

/**
 * The repository policy statements for a repository's `share` section: one Allow statement per
 * entry, so that each intent reads on its own and one entry's conditions never loosen another's.
 *
 * - Principals are the listed accounts' roots (the account then delegates with its own IAM
 *   policies), or, for `organizationId`, any principal whose account is in that organisation
 *   (`aws:PrincipalOrgID`).
 * - Every condition narrows: all `principalTags` must match (`StringEquals` on
 *   `aws:PrincipalTag/<key>`), and the request must come from `sourceIps` (`IpAddress` on
 *   `aws:SourceIp`) or through one of `sourceVpce` (`StringEquals` on `aws:SourceVpce`).
 * - No `Resource` element: a repository policy applies to its repository, and ECR rejects one.
 *
 * Cross-account access also needs the consumer's own identity policy to allow the same actions
 * (and `ecr:GetAuthorizationToken`); this policy alone grants nothing inside the other account.
 */
export function repositoryShareStatements(
  share: ShareConfig | readonly ShareConfig[],
): iam.PolicyStatement[] {
  const entries: readonly ShareConfig[] = Array.isArray(share) ? share : [share as ShareConfig];
  return entries.map((entry, index) => shareStatement(entry, index, entries.length));
}

function shareStatement(entry: ShareConfig, index: number, count: number): iam.PolicyStatement {
  const conditions: Record<string, Record<string, string | string[]>> = {};
  const stringEquals: Record<string, string | string[]> = {};
  for (const [key, value] of Object.entries(entry.principalTags ?? {})) {
    stringEquals[`aws:PrincipalTag/${key}`] = value;
  }
  if (entry.sourceVpce) stringEquals['aws:SourceVpce'] = [...entry.sourceVpce];
  if (Object.keys(stringEquals).length > 0) conditions.StringEquals = stringEquals;
  if (entry.sourceIps) conditions.IpAddress = { 'aws:SourceIp': entry.sourceIps.map(normalizeCidr) };

  return new iam.PolicyStatement({
    sid: statementId(entry.actions, index, count),
    effect: iam.Effect.ALLOW,
    principals: sharePrincipals(entry),
    actions: shareActions(entry.actions),
    conditions,
  });
}

function sharePrincipals(entry: ShareConfig): iam.IPrincipal[] {
  // The schema allows exactly one of the two; the check keeps a hand-built config honest too.
  if (entry.accounts && entry.organizationId) {
    throw new Error(
      `share: give accounts or organizationId, not both (got accounts ${entry.accounts.join(', ')} and organizationId ${entry.organizationId})`,
    );
  }
  if (entry.organizationId) return [new iam.OrganizationPrincipal(entry.organizationId)];
  if (entry.accounts && entry.accounts.length > 0) {
    return [...new Set(entry.accounts)].map((account) => new iam.AccountPrincipal(account));
  }
  throw new Error('share: needs accounts or organizationId: whom to share with (got neither)');
}

/** `SharePull`, or `Share1Pull`, `Share2PushPull` … when the section is a list. */
function statementId(actions: ShareAction, index: number, count: number): string {
  const intent = actions === 'push-pull' ? 'PushPull' : 'Pull';
  return count === 1 ? `Share${intent}` : `Share${index + 1}${intent}`;
}
