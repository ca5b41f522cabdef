import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import { CIDR_PRESET_NAMES, isCidrPresetName } from './cidr-presets';
import { serviceProblems } from './service-problems';
import { isSelfHosted, sourceHost } from './source-host';

/**
 * The schema of `pipeline.config.yaml`. It only validates: presets are expanded and defaults that
 * depend on other fields are filled in by `resolveConfig`, so that the JSON Schema generated from
 * this file describes exactly what a user may write.
 */

export const PROVIDERS = ['backlog', 'github', 'gitlab', 'bitbucket', 'gitea'] as const;
export type Provider = (typeof PROVIDERS)[number];

/** Host-key presets for `source.knownHosts`; the keys themselves live in `known-hosts.ts`. */
export const KNOWN_HOSTS_PRESETS = ['backlog-jp', 'backlog-com', 'github', 'gitlab', 'bitbucket'] as const;

export const TRAFFIC_SHIFTS = [
  'all-at-once',
  'canary-10-5m',
  'canary-10-15m',
  'linear-10-1m',
  'linear-10-3m',
] as const;
export type TrafficShift = (typeof TRAFFIC_SHIFTS)[number];

export const COMPUTE_TYPES = ['small', 'medium', 'large', 'xlarge', '2xlarge'] as const;

/**
 * The CPU of the build host. CodeBuild offers every compute type above for both (CodeBuild User
 * Guide, "Build environment compute modes and types", About environment types: ARM_CONTAINER and
 * LINUX_CONTAINER each from BUILD_GENERAL1_SMALL to BUILD_GENERAL1_2XLARGE).
 */
export const BUILD_ARCHES = ['amd64', 'arm64'] as const;
export type BuildArch = (typeof BUILD_ARCHES)[number];

/** What a fleet does with builds beyond its capacity: wait for an instance, or run on demand. */
export const FLEET_OVERFLOWS = ['queue', 'on-demand'] as const;

/**
 * Regions with reserved capacity fleets of the container environment types pushline uses
 * (CodeBuild API Reference, CreateFleet, environmentType: LINUX_CONTAINER and ARM_CONTAINER are
 * "available only in regions" us-east-1, us-east-2, us-west-2, eu-west-1, eu-central-1,
 * ap-northeast-1, ap-southeast-1, ap-southeast-2, sa-east-1 and ap-south-1).
 */
export const FLEET_REGIONS = [
  'us-east-1',
  'us-east-2',
  'us-west-2',
  'eu-west-1',
  'eu-central-1',
  'ap-northeast-1',
  'ap-southeast-1',
  'ap-southeast-2',
  'sa-east-1',
  'ap-south-1',
] as const;

/** CloudWatch Logs accepts only these retention periods. */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

/** Where CIDRs are taken, so is the plain address of a single host (`203.0.113.7` means `/32`). */
export function isCidr(value: string): boolean {
  const [address, prefix, ...rest] = value.split('/');
  if (address === undefined || rest.length > 0) return false;
  const max = isIPv4(address) ? 32 : isIPv6(address) ? 128 : -1;
  if (max < 0) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= max;
}

const cidr = z.string().refine(isCidr, {
  error: 'must be an IPv4 or IPv6 CIDR such as 203.0.113.0/24 (a bare address means a single host)',
});

const cidrOrPreset = z.string().refine((v) => isCidrPresetName(v) || isCidr(v), {
  error: `must be a CIDR such as 203.0.113.0/24 or one of the presets ${CIDR_PRESET_NAMES.join(', ')}`,
});

const accountId = z.coerce
  .string()
  .regex(/^\d{12}$/, { error: 'must be a 12-digit AWS account ID in quotes' });

/** ECR's own rule for repository names. */
export const ECR_REPOSITORY_NAME = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

const repositoryName = z
  .string()
  .min(2, { error: 'must be 2 to 256 characters' })
  .max(200, { error: 'must be at most 200 characters (it also names the CodeBuild project)' })
  .regex(ECR_REPOSITORY_NAME, {
    error:
      'must be a valid ECR repository name: lowercase letters and digits, separated by single ".", "_", "-" or "/"',
  });

/**
 * A Git branch or tag glob: `*` matches within one path segment, `**` across segments.
 * Rejects what could never match a ref Git allows.
 */
export function refPatternProblem(pattern: string): string | undefined {
  if (pattern.length === 0) return 'must not be empty';
  if (/\s/.test(pattern)) return 'must not contain spaces';
  if (pattern.startsWith('refs/'))
    return 'give the branch or tag name (main), not the full ref (refs/heads/main)';
  if (/[~^:\\]/.test(pattern) || pattern.includes('..') || pattern.includes('@{'))
    return 'contains characters Git does not allow in a ref (~ ^ : \\ .. @{)';
  if (pattern.startsWith('/') || pattern.endsWith('/') || pattern.includes('//'))
    return 'must not start or end with "/" or contain "//"';
  if (pattern.endsWith('.lock') || pattern.endsWith('.')) return 'must not end with "." or ".lock"';
  return undefined;
}

const refPattern = z.string().superRefine((value, ctx) => {
  const problem = refPatternProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: `${problem}; a glob such as main or release/*` });
});

const pathPattern = z
  .string()
  .min(1, { error: 'must not be empty' })
  .refine((v) => !v.startsWith('/'), {
    error: 'is relative to the repository root: write docker/**, not /docker/**',
  });

const platform = z.string().regex(/^linux\/(amd64|arm64)(\/v8)?$/, {
  error: 'must be linux/amd64 or linux/arm64',
});

const knownHostLine = z
  .string()
  .regex(/^\S+ (ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,2}$/, {
    error: 'must be a known_hosts line: "<host> <key type> <base64 key>"',
  });

const secretName = z.string().regex(/^[A-Za-z0-9/_+=.@-]{1,512}$/, {
  error: 'must be a Secrets Manager secret name (letters, digits and /_+=.@-)',
});

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'must be an environment variable name' });

const logRetentionDays = z.number().refine((d) => (LOG_RETENTION_DAYS as readonly number[]).includes(d), {
  error: `must be one of the periods CloudWatch Logs accepts: ${LOG_RETENTION_DAYS.join(', ')}`,
});

const apiUrl = z.url({
  protocol: /^https?$/,
  error: 'must be an http(s) URL such as https://github.example.com/api/v3',
});

/** Where build results go when `source.apiUrl` is not given. */
export const DEFAULT_API_URLS = {
  github: 'https://api.github.com',
  gitlab: 'https://gitlab.com/api/v4',
  bitbucket: 'https://api.bitbucket.org/2.0',
} as const;

/**
 * The API base URL build results are sent to, without a trailing slash: `source.apiUrl`; else on a
 * server of its own `https://<host>/api/v3` (GitHub Enterprise Server, GitHub Docs "About the REST
 * API") or `https://<host>/api/v4` (GitLab self-managed); else the public service's (api.github.com,
 * gitlab.com/api/v4) or, for a Backlog space, its web URL (`https://<space>.backlog.jp` or `.com`).
 * Bitbucket Cloud's is https://api.bitbucket.org/2.0; Gitea's and Forgejo's `https://<host>/api/v1`.
 * Undefined where it cannot be derived (Backlog Enterprise).
 */
export function sourceApiUrl(source: {
  readonly provider: Provider;
  readonly cloneUrl: string;
  readonly host?: string | undefined;
  readonly apiUrl?: string | undefined;
}): string | undefined {
  const host = sourceHost(source);
  const selfHosted = isSelfHosted(source);
  let url = source.apiUrl;
  if (url === undefined && source.provider === 'github')
    url = selfHosted ? `https://${host}/api/v3` : DEFAULT_API_URLS.github;
  if (url === undefined && source.provider === 'gitlab')
    url = selfHosted ? `https://${host}/api/v4` : DEFAULT_API_URLS.gitlab;
  if (url === undefined && source.provider === 'backlog' && !selfHosted) url = `https://${host}`;
  if (url === undefined && source.provider === 'bitbucket') url = DEFAULT_API_URLS.bitbucket;
  // Gitea and Forgejo serve their API under /api/v1 of the web host, which the clone URL names.
  if (url === undefined && source.provider === 'gitea') url = `https://${host}/api/v1`;
  return url?.replace(/\/+$/, '');
}

const SourceSchema = z.strictObject({
  provider: z
    .enum(PROVIDERS, { error: `must be one of ${PROVIDERS.join(', ')}` })
    .describe('Git host: backlog, github, gitlab, bitbucket or gitea'),
  repository: z
    .string()
    .regex(/^[^\s/]+(\/[^\s/]+)+$/, {
      error:
        'must be the identity the webhook sends: Backlog PROJECT/repo, GitHub owner/name, GitLab group/project, Bitbucket workspace/repo, Gitea owner/name',
    })
    .describe(
      'Identity in the webhook: Backlog PROJECT/repo, GitHub owner/name, GitLab group/project, Bitbucket workspace/repo, Gitea owner/name',
    ),
  cloneUrl: z
    .string()
    .regex(/^(ssh:\/\/\S+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+)$/, {
      error: 'must be an SSH clone URL (git@host:path.git or ssh://git@host/path.git)',
    })
    .describe('SSH clone URL the build fetches the commit from'),
  knownHosts: z
    .union([z.enum(KNOWN_HOSTS_PRESETS), z.array(knownHostLine).min(1)], {
      error: `must be one of ${KNOWN_HOSTS_PRESETS.join(', ')} or a list of known_hosts lines`,
    })
    .optional()
    .describe('Pinned SSH host keys: a preset or known_hosts lines. Default: the preset of the provider'),
  sshKeySecretName: secretName
    .optional()
    .describe('Existing secret holding the deploy key. Default: an empty secret the stack creates'),
  host: z
    .hostname({ error: 'must be a host name such as github.example.co.jp (no scheme, port or path)' })
    .optional()
    .describe(
      'Host name of a self-hosted server (GitHub Enterprise Server, GitLab self-managed) as its webhook payloads carry it. Default: github.com, gitlab.com; for Backlog the host of cloneUrl',
    ),
  apiUrl: apiUrl
    .optional()
    .describe(
      'API base URL for build results. Default: https://api.github.com, https://gitlab.com/api/v4, https://HOST/api/v3 (GitHub Enterprise Server) or /api/v4 (GitLab self-managed) for source.host, the Backlog space https://SPACE.backlog.jp of cloneUrl; required for Backlog Enterprise (e.g. http://HOST:8969/backlog) unless report: false',
    ),
});

/** A self-hosted server has no published host keys: its lines must be in the config. */
function requireKnownHostsWhenSelfHosted(source: z.output<typeof SourceSchema>, ctx: z.RefinementCtx): void {
  if (isSelfHosted(source) && !Array.isArray(source.knownHosts))
    ctx.addIssue({
      code: 'custom',
      path: ['knownHosts'],
      message: `is required for the self-hosted server ${sourceHost(source)}: give its known_hosts lines, checked out of band (no preset can exist for it)`,
    });
}

const DockerSchema = z.strictObject({
  context: z.string().min(1).default('.').describe('Build context, relative to the repository root'),
  file: z.string().min(1).optional().describe('Dockerfile path. Default: <context>/Dockerfile'),
  platforms: z
    .array(platform)
    .min(1)
    .optional()
    .describe('Target platforms: linux/amd64, linux/arm64. Default: the build host platform'),
  target: z.string().min(1).optional().describe('Multi-stage build target'),
  buildArgs: z.record(envName, z.string()).optional().describe('Build arguments; never secrets'),
  secrets: z
    .array(
      z.strictObject({
        id: z
          .string()
          .regex(/^[A-Za-z0-9_.-]+$/, { error: 'must be a BuildKit secret id' })
          .describe('BuildKit secret id'),
        secretName: secretName.describe('Secrets Manager secret whose value is mounted'),
      }),
    )
    .optional()
    .describe('Build secrets mounted with RUN --mount=type=secret,id=<id>; never build args'),
});

const BuildSchema = z.strictObject({
  computeType: z
    .enum(COMPUTE_TYPES)
    .default('small')
    .describe('CodeBuild compute type: small, medium, large, xlarge or 2xlarge'),
  timeoutMinutes: z.number().int().min(5).max(480).default(30).describe('Build timeout, in minutes'),
  concurrentBuildLimit: z
    .number()
    .int()
    .min(1)
    .max(100)
    .default(2)
    .describe('Builds of this project that may run at once'),
  logRetentionDays: logRetentionDays.default(30).describe('Retention of the build logs, in days'),
  arch: z
    .enum(BUILD_ARCHES, { error: `must be ${BUILD_ARCHES.join(' or ')}` })
    .default('amd64')
    .describe(
      'CPU of the build host: amd64, or arm64 for a native Graviton build of linux/arm64 images (and an ARM64 service)',
    ),
  fleet: z
    .string()
    .optional()
    .describe(
      'Name of a fleet under fleets: builds start on its reserved, already running instances (its computeType applies). Default: on-demand',
    ),
});

/** CodeBuild's fleet names are 2 to 128 characters; the installation's name and "-" come first. */
const fleetName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{1,62}$/, { error: 'must be 2 to 63 lowercase letters, digits and -' });

const FleetSchema = z.strictObject({
  baseCapacity: z
    .number()
    .int({ error: 'must be a whole number of instances' })
    .min(1, { error: 'must be at least 1 (CodeBuild API Reference, Fleet: baseCapacity minimum 1)' })
    .describe('Instances kept running, and so builds that start at once; each is billed while it runs'),
  computeType: z
    .enum(COMPUTE_TYPES, { error: `must be one of ${COMPUTE_TYPES.join(', ')}` })
    .default('small')
    .describe('Size of each instance: small, medium, large, xlarge or 2xlarge'),
  arch: z
    .enum(BUILD_ARCHES, { error: `must be ${BUILD_ARCHES.join(' or ')}` })
    .default('amd64')
    .describe('CPU of the instances: amd64 or arm64; repositories on the fleet set the same build.arch'),
  overflow: z
    .enum(FLEET_OVERFLOWS, { error: `must be ${FLEET_OVERFLOWS.join(' or ')}` })
    .default('queue')
    .describe(
      'Builds beyond baseCapacity: queue (wait for a fleet instance) or on-demand (start on on-demand capacity, billed per minute)',
    ),
});

export const SHARE_ACTIONS = ['pull', 'push-pull'] as const;
export type ShareAction = (typeof SHARE_ACTIONS)[number];

const ShareSchema = z
  .strictObject({
    accounts: z.array(accountId).min(1).optional().describe('12-digit AWS account IDs, in quotes'),
    organizationId: z
      .string()
      .regex(/^o-[a-z0-9]{10,32}$/, { error: 'must be an AWS Organizations ID such as o-a1b2c3d4e5' })
      .optional()
      .describe('Every account of this AWS Organizations organization, instead of accounts'),
    // A refinement rather than z.enum: inside the object-or-list union of `share`, a failed enum
    // aborts the object branch and zod reports "Invalid input" for the whole share instead of
    // naming this field. `meta` keeps the enum in the generated JSON Schema.
    actions: z
      .string()
      .refine((v): v is ShareAction => (SHARE_ACTIONS as readonly string[]).includes(v), {
        error: `must be ${SHARE_ACTIONS.join(' or ')}`,
      })
      .meta({ enum: [...SHARE_ACTIONS] })
      .default('pull')
      .describe('pull, or push-pull to push as well'),
    principalTags: z
      .record(z.string().min(1), z.string().min(1, { error: 'tag values must not be empty' }))
      .optional()
      .describe('Tags the calling role or user must all have'),
    sourceIps: z.array(cidr).min(1).optional().describe('CIDRs the request must come from'),
    sourceVpce: z
      .array(
        z
          .string()
          .regex(/^vpce-[0-9a-f]{8,17}$/, { error: 'must be a VPC endpoint ID such as vpce-0a1b2c3d' }),
      )
      .min(1)
      .optional()
      .describe('VPC endpoints the request may come through instead of sourceIps'),
  })
  .refine((s) => s.accounts !== undefined || s.organizationId !== undefined, {
    error: 'needs accounts or organizationId: whom to share with',
  })
  .refine((s) => s.accounts === undefined || s.organizationId === undefined, {
    error: 'give accounts or organizationId, not both; list two share entries to share with both',
    path: ['organizationId'],
  })
  .refine((s) => s.sourceIps === undefined || s.sourceVpce === undefined, {
    error:
      'give sourceIps or sourceVpce, not both: requests through a VPC endpoint carry no aws:SourceIp, so one statement requiring both would match nothing; list two share entries instead',
    path: ['sourceVpce'],
  });

const RegistrySchema = z
  .strictObject({
    encryption: z.enum(['AES256', 'KMS']).default('AES256').describe('Image encryption: AES256 or KMS'),
    kmsKeyArn: z
      .string()
      .regex(/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]+$/, { error: 'must be a KMS key ARN' })
      .optional()
      .describe('KMS key for encryption: KMS. Default: the AWS managed key'),
    untaggedExpireDays: z
      .number()
      .int()
      .min(1)
      .default(14)
      .describe('Untagged images expire after this many days'),
    keepImages: z.number().int().min(1).default(100).describe('How many tagged images to keep, newest first'),
    removalPolicy: z
      .enum(['retain', 'destroy'])
      .default('retain')
      .describe('retain or destroy the ECR repository with its stack'),
  })
  .refine((r) => r.kmsKeyArn === undefined || r.encryption === 'KMS', {
    error: 'needs encryption: KMS (the key is only used for KMS encryption)',
    path: ['kmsKeyArn'],
  });

const subnetIds = z
  .array(z.string().regex(/^subnet-[0-9a-f]{8,17}$/, { error: 'must be a subnet ID' }))
  .min(2);

/** A VPC the service stack creates. */
export interface NewVpcConfig {
  readonly maxAzs: number;
  readonly natGateways: number;
}

/** The VPC a service gets when `deploy.vpc` says nothing: 2 zones, 1 NAT gateway. */
export const DEFAULT_NEW_VPC: NewVpcConfig = { maxAzs: 2, natGateways: 1 };

/** An existing VPC, given in full so that synth needs no look-up. */
export interface ExistingVpcConfig {
  readonly vpcId: string;
  readonly availabilityZones: string[];
  readonly publicSubnetIds: string[];
  readonly privateSubnetIds: string[];
}

const NEW_VPC_FIELDS = ['maxAzs', 'natGateways'] as const;
const EXISTING_VPC_FIELDS = ['availabilityZones', 'publicSubnetIds', 'privateSubnetIds'] as const;

/**
 * Either a VPC to create (`maxAzs`, `natGateways`) or an existing one (`vpcId` with its zones and
 * subnets). One object rather than a union, so that a mistake is reported against the form the
 * user meant (the one with `vpcId` or without), not against whichever alternative zod tried first.
 */
const VpcSchema = z
  .strictObject({
    maxAzs: z
      .number()
      .int()
      .min(2)
      .max(6)
      .optional()
      .describe('Availability Zones of the VPC the stack creates. Default: 2'),
    natGateways: z
      .number()
      .int()
      .min(0)
      .max(6)
      .optional()
      .describe('NAT gateways of the VPC the stack creates. Default: 1'),
    vpcId: z
      .string()
      .regex(/^vpc-[0-9a-f]{8,17}$/, { error: 'must be a VPC ID such as vpc-0a1b2c3d' })
      .optional()
      .describe('An existing VPC instead; then availabilityZones and the subnet IDs are required'),
    availabilityZones: z
      .array(z.string().min(1))
      .min(2)
      .optional()
      .describe('Availability Zones of the existing VPC'),
    publicSubnetIds: subnetIds.optional().describe('Public subnets of the existing VPC, at least two'),
    privateSubnetIds: subnetIds.optional().describe('Private subnets of the existing VPC, at least two'),
  })
  .superRefine((vpc, ctx) => {
    if (vpc.vpcId === undefined) {
      for (const field of EXISTING_VPC_FIELDS) {
        if (vpc[field] !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: [field],
            message: 'belongs to an existing VPC: give vpcId too',
          });
      }
      return;
    }
    for (const field of NEW_VPC_FIELDS) {
      if (vpc[field] !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: [field],
          message: 'applies only to a VPC the stack creates, not to an existing one (vpcId)',
        });
    }
    for (const field of EXISTING_VPC_FIELDS) {
      if (vpc[field] === undefined)
        ctx.addIssue({
          code: 'custom',
          path: [field],
          message: 'is required with vpcId (no look-ups at synth)',
        });
    }
  })
  .transform((vpc): NewVpcConfig | ExistingVpcConfig =>
    vpc.vpcId === undefined
      ? {
          maxAzs: vpc.maxAzs ?? DEFAULT_NEW_VPC.maxAzs,
          natGateways: vpc.natGateways ?? DEFAULT_NEW_VPC.natGateways,
        }
      : {
          vpcId: vpc.vpcId,
          availabilityZones: vpc.availabilityZones ?? [],
          publicSubnetIds: vpc.publicSubnetIds ?? [],
          privateSubnetIds: vpc.privateSubnetIds ?? [],
        },
  );

/** The service settings that may differ per environment (`deploy.environments[].<setting>`). */
const ServiceSettings = {
  cpu: z.number().int().default(256).describe('Task CPU units'),
  memory: z.number().int().default(512).describe('Task memory (MiB)'),
  desiredCount: z.number().int().min(1).max(100).default(2).describe('Number of tasks'),
  trafficShift: z.enum(TRAFFIC_SHIFTS).default('canary-10-5m').describe('How production traffic moves'),
  environment: z.record(envName, z.string()).optional().describe('Plain environment variables'),
  secrets: z
    .record(envName, secretName)
    .optional()
    .describe('Environment variable -> Secrets Manager secret name'),
  certificateArn: z
    .string()
    .regex(/^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[0-9a-f-]+$/, {
      error: 'must be an ACM certificate ARN',
    })
    .optional()
    .describe('ACM certificate: the listeners use HTTPS. Default: HTTP'),
  testListenerCidrs: z
    .array(cidr)
    .min(1)
    .optional()
    .describe(
      "Who may reach the test listener. Default: the VPC's CIDR (with network.shared, every service's in it)",
    ),
  vpc: VpcSchema.optional().describe(
    'The shape of the VPC to create (services of one shape share one with network.shared), or an existing one. Default: 2 zones, 1 NAT gateway',
  ),
};

/** The settings a `deploy.environments` entry may override. */
export const ENVIRONMENT_OVERRIDES = [
  'desiredCount',
  'cpu',
  'memory',
  'environment',
  'secrets',
  'trafficShift',
  'certificateArn',
  'vpc',
  'testListenerCidrs',
] as const satisfies readonly (keyof typeof ServiceSettings)[];

const region = z
  .string()
  .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, { error: 'must be an AWS region such as ap-northeast-1' });

const EnvironmentSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,19}$/, {
      error: 'must be lowercase letters, digits and -, starting with a letter, at most 20 characters',
    })
    .describe('Names the stage, the service stack and the templates in the deploy artifact'),
  account: accountId.optional().describe("Target AWS account. Default: the installation's"),
  region: region
    .optional()
    .describe("Target region; another region needs the installation's env. Default: the installation's"),
  approval: z
    .boolean()
    .optional()
    .describe('A manual approval before this environment (the notification topic is told)'),
  desiredCount: ServiceSettings.desiredCount.removeDefault().optional().describe('Number of tasks here'),
  cpu: ServiceSettings.cpu.removeDefault().optional().describe('Task CPU units here'),
  memory: ServiceSettings.memory.removeDefault().optional().describe('Task memory (MiB) here'),
  environment: ServiceSettings.environment,
  secrets: ServiceSettings.secrets,
  trafficShift: ServiceSettings.trafficShift
    .removeDefault()
    .optional()
    .describe('How production traffic moves here'),
  certificateArn: ServiceSettings.certificateArn,
  vpc: ServiceSettings.vpc,
  testListenerCidrs: ServiceSettings.testListenerCidrs,
});

/** What the loader says of a field an environment does not take. */
export const NOT_AN_ENVIRONMENT_SETTING = `is not a per-environment setting: an environment takes name, account, region, approval and overrides of ${ENVIRONMENT_OVERRIDES.join(', ')}`;

const EnvironmentsSchema = z
  .array(EnvironmentSchema)
  .min(1, { error: 'must list at least one environment (or leave environments out)' })
  .superRefine((environments, ctx) => {
    const seen = new Map<string, number>();
    environments.forEach((environment, index) => {
      const first = seen.get(environment.name);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [index, 'name'],
          message: `duplicates environments[${first}].name; every environment needs its own name`,
        });
      } else {
        seen.set(environment.name, index);
      }
    });
    if (environments[0]?.approval === true) {
      ctx.addIssue({
        code: 'custom',
        path: [0, 'approval'],
        message:
          'the first environment has nothing before it to approve; put approval: true on a later environment',
      });
    }
  });

const ValidationSchema = z.strictObject({
  path: z.string().startsWith('/').describe('Path the check requests through the test listener'),
  expectStatus: z.number().int().min(100).max(599).default(200).describe('HTTP status the check expects'),
  timeoutSeconds: z
    .number()
    .int()
    .min(1)
    .max(600)
    .default(30)
    .describe('Seconds the check waits for an answer'),
});

const DeploySchema = z
  .strictObject({
    containerPort: z.number().int().min(1).max(65535).describe('Port the container listens on'),
    healthCheckPath: z
      .string()
      .startsWith('/')
      .default('/')
      .describe('Path of the target group health check'),
    cpu: ServiceSettings.cpu,
    memory: ServiceSettings.memory,
    desiredCount: ServiceSettings.desiredCount,
    trafficShift: ServiceSettings.trafficShift,
    terminationWaitMinutes: z
      .number()
      .int()
      .min(0)
      .max(2880)
      .default(15)
      .describe('Minutes the old tasks keep running after the shift'),
    environment: ServiceSettings.environment,
    secrets: ServiceSettings.secrets,
    certificateArn: ServiceSettings.certificateArn,
    testListenerPort: z.number().int().min(1).max(65535).default(8080).describe('Port of the test listener'),
    testListenerCidrs: ServiceSettings.testListenerCidrs,
    vpc: ServiceSettings.vpc,
    notificationEmail: z.email().optional().describe('Address subscribed to the notification topic'),
    logRetentionDays: logRetentionDays.default(30).describe('Retention of the container logs, in days'),
    environments: EnvironmentsSchema.optional().describe(
      "Ordered environments the same image goes through, each with its own service. Default: one service in the installation's account and region",
    ),
    validation: ValidationSchema.optional().describe(
      'A check of the new version through the test listener before production traffic shifts',
    ),
  })
  .superRefine(
    (deploy, ctx) => {
      // Settings that only conflict once an environment's overrides are applied are named here, so that
      // every config the schema accepts also synthesizes.
      const effective = deploy.environments?.map((environment, index) => ({
        at: ['environments', index] as (string | number)[],
        cpu: environment.cpu ?? deploy.cpu,
        memory: environment.memory ?? deploy.memory,
        vpc: environment.vpc ?? deploy.vpc,
        testListenerCidrs: environment.testListenerCidrs ?? deploy.testListenerCidrs,
        certificateArn: environment.certificateArn ?? deploy.certificateArn,
      })) ?? [{ at: [], ...deploy }];
      // Environments that inherit one shared mistake report it once.
      const reported = new Set<string>();
      const report = (path: (string | number)[], message: string) => {
        const key = JSON.stringify([path, message]);
        if (reported.has(key)) return;
        reported.add(key);
        ctx.addIssue({ code: 'custom', path, message });
      };
      for (const { at, ...settings } of effective) {
        for (const problem of serviceProblems({ ...settings, testListenerPort: deploy.testListenerPort })) {
          if (problem.field === 'testListenerPort') {
            // A shared setting that clashes only with this environment's certificate.
            report([problem.field], `${problem.message}${at.length > 0 ? ` (environments[${at[1]}])` : ''}`);
            continue;
          }
          // Blame the field where it was written: the environment's override, or the shared setting.
          const sized = problem.field === 'cpu' || problem.field === 'memory';
          const override =
            at.length > 0 && deploy.environments?.[Number(at[1])]?.[problem.field] !== undefined;
          report([...(!sized || override ? at : []), problem.field], problem.message);
        }
        const { certificateArn } = settings;
        if (deploy.validation !== undefined && certificateArn !== undefined)
          report(
            ['validation'],
            `cannot check an HTTPS test listener yet (the load balancer's DNS name does not match the certificate${at.length > 0 ? ` of environments[${at[1]}]` : ''}); leave validation out where certificateArn is set`,
          );
      }
    },
    // Only a deploy section whose own fields are valid can be checked as a whole.
    { when: (payload) => payload.issues.length === 0 },
  );

const RepositorySchema = z
  .strictObject({
    name: repositoryName.describe('ECR repository name; also names the CodeBuild project and the stack'),
    source: SourceSchema.superRefine(requireKnownHostsWhenSelfHosted).describe(
      'Where the code is and how its webhook names it',
    ),
    branches: z
      .array(refPattern)
      .min(1)
      .default(['main'])
      .describe('Branch globs that build (* within a segment, ** across)'),
    tags: z.array(refPattern).optional().describe('Tag globs that build. Default: tags do not build'),
    paths: z.array(pathPattern).min(1).optional().describe('Build only when one of these paths changed'),
    docker: DockerSchema.default({ context: '.' }).describe('How the image is built'),
    build: BuildSchema.default({
      computeType: 'small',
      timeoutMinutes: 30,
      concurrentBuildLimit: 2,
      logRetentionDays: 30,
      arch: 'amd64',
    }).describe('The CodeBuild project'),
    registry: RegistrySchema.default({
      encryption: 'AES256',
      untaggedExpireDays: 14,
      keepImages: 100,
      removalPolicy: 'retain',
    }).describe('The ECR repository'),
    share: z
      .union([ShareSchema, z.array(ShareSchema).min(1)])
      .optional()
      .describe('Who in other accounts may pull or push-pull: one entry or a list'),
    deploy: DeploySchema.optional().describe('The ECS Fargate service and its Blue/Green deployment'),
    report: z
      .boolean()
      .default(true)
      .describe('Report build results on the commit (status or Backlog pull request comment)'),
  })
  .superRefine((repository, ctx) => {
    if (repository.report && repository.source.provider === 'backlog' && !sourceApiUrl(repository.source))
      ctx.addIssue({
        code: 'custom',
        path: ['source', 'apiUrl'],
        message:
          "is required for a Backlog repository outside a backlog.jp or backlog.com space (Backlog Enterprise) to report build results: give the server's URL, such as http://backlog.example.jp:8969/backlog, or set report: false",
      });
    const platforms = repository.docker.platforms;
    if (repository.build.arch === 'arm64' && platforms?.every((p) => p.startsWith('linux/amd64')))
      ctx.addIssue({
        code: 'custom',
        path: ['build', 'arch'],
        message: `is arm64 but docker.platforms is ${platforms.join(', ')}: an arm64 host would build that image under QEMU emulation, slower than an amd64 host builds it natively; leave arch out (amd64) or add linux/arm64 to docker.platforms`,
      });
  });

const PullThroughCacheSchema = z
  .strictObject({
    prefix: z
      .string()
      .regex(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/, { error: 'must be a lowercase ECR repository prefix' })
      .describe('Builds pull <prefix>/<image> through the rule'),
    upstream: z
      .enum(['ecr-public', 'docker-hub', 'ghcr', 'quay', 'k8s'])
      .describe('Upstream registry: ecr-public, docker-hub, ghcr, quay or k8s'),
    credentialSecretName: z
      .string()
      .startsWith('ecr-pullthroughcache/', {
        error: 'must start with ecr-pullthroughcache/ (an ECR requirement)',
      })
      .optional()
      .describe('Secret with the upstream credentials: required for docker-hub and ghcr, optional for quay'),
  })
  .superRefine((rule, ctx) => {
    const needsCredentials = rule.upstream === 'docker-hub' || rule.upstream === 'ghcr';
    const takesCredentials = needsCredentials || rule.upstream === 'quay';
    if (needsCredentials && rule.credentialSecretName === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['credentialSecretName'],
        message: `is required for ${rule.upstream}: ECR only pulls through from it with credentials`,
      });
    }
    if (!takesCredentials && rule.credentialSecretName !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['credentialSecretName'],
        message: `must be left out for ${rule.upstream}, which ECR pulls from without credentials`,
      });
    }
  });

const PipelineConfigFields = z.strictObject({
  $schema: z.string().optional(),
  name: z
    .string()
    .regex(/^[a-z][a-z0-9-]{1,30}$/, { error: 'must be lowercase letters, digits and -, 2 to 31 characters' })
    .default('pushline')
    .describe('Prefix of every stack and named resource'),
  env: z
    .strictObject({
      account: accountId.describe('12-digit AWS account ID, in quotes'),
      region: z
        .string()
        .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, { error: 'must be an AWS region such as ap-northeast-1' })
        .describe('AWS region such as ap-northeast-1'),
    })
    .optional()
    .describe('Pin the stacks to one account and region. Default: environment-agnostic (those of the CLI)'),
  webhook: z
    .strictObject({
      allowedCidrs: z.array(cidrOrPreset).min(1).describe('Who may call the webhook URL: CIDRs or presets'),
      throttle: z
        .strictObject({
          rateLimit: z.number().positive().default(10).describe('Steady requests per second'),
          burstLimit: z.number().int().positive().default(20).describe('Burst of requests'),
        })
        .default({ rateLimit: 10, burstLimit: 20 })
        .describe('API Gateway stage throttling'),
      logRetentionDays: logRetentionDays
        .default(90)
        .describe('Retention of the API access log and function logs, in days'),
      maxBuildAttempts: z
        .number()
        .int()
        .min(1)
        .max(20)
        .default(5)
        .describe('StartBuild tries from the retry queue before the dead-letter queue'),
      apiGatewayAccountRole: z
        .boolean()
        .default(true)
        .describe(
          "Set API Gateway's account-wide CloudWatch Logs role in this account and region (kept on stack deletion). false where the account already manages it",
        ),
      githubRedelivery: z
        .strictObject({
          intervalMinutes: z.number().int().min(1).max(1440).default(15).describe('How often to look'),
          lookbackHours: z
            .number()
            .positive()
            .max(72)
            .default(6)
            .describe('How far back to redeliver (GitHub keeps deliveries 3 days)'),
          maxAttempts: z
            .number()
            .int()
            .min(1)
            .max(20)
            .default(5)
            .describe('Failed attempts of one push before it is left to a person'),
        })
        .optional()
        .describe(
          'Redeliver failed GitHub deliveries on a schedule (needs a GitHub token in the provider-token secret)',
        ),
    })
    .describe('The webhook receiver shared by every repository'),
  pullThroughCache: z
    .array(PullThroughCacheSchema)
    .refine((rules) => new Set(rules.map((r) => r.prefix)).size === rules.length, {
      error: 'every rule needs its own prefix (ECR allows one rule per prefix in a registry)',
    })
    .optional()
    .describe('ECR pull-through cache rules, one per prefix'),
  notifications: z
    .strictObject({
      email: z
        .union([z.email(), z.array(z.email()).min(1)], {
          error: 'must be an email address or a list of them',
        })
        .optional()
        .describe('Who receives failed builds, failed deployments and the dead-letter alarm'),
      slack: z
        .strictObject({
          workspaceId: z
            .string()
            .regex(/^[0-9A-Z]{1,255}$/, { error: 'must be a Slack workspace ID such as T0123ABCD' })
            .describe('Slack workspace ID, such as T0123ABCD'),
          channelId: z
            .string()
            .regex(/^[A-Za-z0-9]{1,255}$/, { error: 'must be a Slack channel ID such as C0123ABCD' })
            .describe('Slack channel ID, such as C0123ABCD'),
        })
        .optional()
        .describe('An AWS Chatbot Slack channel for the same notifications (authorize the workspace first)'),
    })
    .optional()
    .describe("The platform team's notification topic"),
  network: z
    .strictObject({
      shared: z
        .boolean()
        .default(true)
        .describe(
          'Services in one account and region share one VPC (one per deploy.vpc shape), in the stack <name>-network. false: every service stack makes its own VPC, as before this setting existed; set it on an installation whose services are already deployed, since moving a service to another VPC replaces it and its load balancer',
        ),
    })
    .default({ shared: true })
    .describe('The VPC of the services that deploy.vpc does not name by vpcId'),
  fleets: z
    .record(fleetName, FleetSchema)
    .optional()
    .describe(
      'CodeBuild reserved capacity fleets by name, shared by the repositories whose build.fleet names them; billed per instance while they exist',
    ),
  repositories: z
    .array(RepositorySchema)
    .min(1, { error: 'must list at least one repository' })
    .describe('The repositories to build; each gets its own stack'),
});

export const PipelineConfigSchema = PipelineConfigFields.superRefine(fleetProblems, {
  when: (payload) => payload.issues.length === 0,
});

/**
 * A repository's `build.fleet` must name a fleet of `fleets` with the same arch as its `build.arch`,
 * and a fleet can only exist in a region that has reserved capacity.
 */
function fleetProblems(
  config: {
    readonly env?: { readonly region: string } | undefined;
    readonly fleets?:
      | Readonly<Record<string, { readonly arch: BuildArch; readonly computeType: string }>>
      | undefined;
    readonly repositories: readonly {
      readonly build: {
        readonly arch: BuildArch;
        readonly computeType: string;
        readonly fleet?: string | undefined;
      };
    }[];
  },
  ctx: z.RefinementCtx,
): void {
  const fleets = config.fleets ?? {};
  const names = Object.keys(fleets);
  config.repositories.forEach(({ build }, index) => {
    if (build.fleet === undefined) return;
    const fleet = fleets[build.fleet];
    if (fleet === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['repositories', index, 'build', 'fleet'],
        message: `names no fleet of fleets (${names.length > 0 ? `there are ${names.join(', ')}` : 'there is none: define it under fleets'})`,
      });
    } else if (fleet.arch !== build.arch) {
      ctx.addIssue({
        code: 'custom',
        path: ['repositories', index, 'build', 'arch'],
        message: `builds on ${build.arch}${build.arch === 'amd64' ? ' (the default)' : ''} but fleet ${build.fleet} runs ${fleet.arch} instances (a project and its fleet share one environment type); set build.arch: ${fleet.arch} or name an ${build.arch} fleet`,
      });
    }
    // The default `small` cannot be told from one written out; any other size is a choice the fleet overrides.
    if (fleet !== undefined && build.computeType !== 'small' && build.computeType !== fleet.computeType)
      ctx.addIssue({
        code: 'custom',
        path: ['repositories', index, 'build', 'computeType'],
        message: `would be ignored: builds on fleet ${build.fleet} run on its ${fleet.computeType} instances; leave computeType out or set the fleet's computeType`,
      });
  });
  const region = config.env?.region;
  if (region !== undefined && names.length > 0 && !(FLEET_REGIONS as readonly string[]).includes(region))
    ctx.addIssue({
      code: 'custom',
      path: ['fleets'],
      message: `cannot be created in ${region}: CodeBuild has reserved capacity fleets only in ${FLEET_REGIONS.join(', ')}; leave fleets out there`,
    });
}

/** What a user writes. */
export type PipelineConfigInput = z.input<typeof PipelineConfigSchema>;
/** What the app works with after validation and defaults. */
export type PipelineConfig = z.output<typeof PipelineConfigSchema>;
export type RepositoryConfig = PipelineConfig['repositories'][number];
export type DeployConfig = NonNullable<RepositoryConfig['deploy']>;
export type ShareConfig = z.output<typeof ShareSchema>;
export type EnvironmentConfig = z.output<typeof EnvironmentSchema>;
export type ValidationConfig = z.output<typeof ValidationSchema>;
export type PullThroughCacheConfig = z.output<typeof PullThroughCacheSchema>;
export type FleetConfig = z.output<typeof FleetSchema>;

/**
 * The part of a repository name that is safe in CodeBuild project and stack names, which take
 * neither "/" nor ".". Two names that map to the same suffix are rejected as duplicates.
 */
export function projectSuffix(repositoryName: string): string {
  return repositoryName.replace(/[^A-Za-z0-9-]/g, '-');
}

/** One environment of a repository's deploy chain, with its overrides applied. */
export interface DeployEnvironment {
  /** `undefined` for the single service of a `deploy` section without `environments`. */
  readonly name?: string;
  /** Target account. @default the installation's */
  readonly account?: string;
  /** Target region. @default the installation's */
  readonly region?: string;
  /** A manual approval before this environment. */
  readonly approval: boolean;
  /** The service settings of this environment: the repository's `deploy` with its overrides. */
  readonly deploy: DeployConfig;
}

/**
 * The environments a repository's image goes through, in order. A `deploy` section without
 * `environments` is one unnamed environment: exactly the service it described before environments
 * existed.
 */
export function deployEnvironments(deploy: DeployConfig): DeployEnvironment[] {
  if (deploy.environments === undefined) return [{ approval: false, deploy }];
  const { environments: _, ...shared } = deploy;
  return deploy.environments.map(({ name, account, region, approval, ...overrides }) => ({
    name,
    account,
    region,
    approval: approval ?? false,
    deploy: {
      ...shared,
      ...Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined)),
    },
  }));
}
