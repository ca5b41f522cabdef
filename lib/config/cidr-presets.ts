/**
 * Named source-address presets for `webhook.allowedCidrs` (and anywhere else a CIDR list is taken).
 *
 * Providers publish the addresses their webhooks come from; these lists are copies with their source
 * and date, because synth must work offline. Check them against the source before a deploy that
 * matters, and open an issue when they drift.
 */
export interface CidrPreset {
  /** What the preset stands for, shown in errors and the README. */
  readonly description: string;
  /** Where the list was taken from, and when. */
  readonly source: string;
  readonly cidrs: readonly string[];
}

/** Backlog spaces hosted in Tokyo (backlog.jp, and backlog.com spaces in the Tokyo region). */
const BACKLOG_TOKYO = [
  '54.248.107.22/32',
  '54.248.105.89/32',
  '54.238.168.195/32',
  '52.192.66.90/32',
  '54.65.251.183/32',
  '54.250.148.49/32',
  '52.199.112.83/32',
  '35.73.201.244/32',
  '35.72.166.154/32',
  '35.73.143.41/32',
  '35.74.201.20/32',
  '52.198.115.185/32',
] as const;

/** Backlog's senders in the US (Oregon) region, used by backlog.com spaces. */
const BACKLOG_OREGON = [
  '35.166.55.243/32',
  '50.112.242.159/32',
  '35.165.230.177/32',
  '18.236.6.123/32',
] as const;

const BACKLOG_SOURCE =
  'Nulab support, "Webhook 送信サーバーの IP アドレスを教えてください" (article 360035645534), as listed in seed 002 and checked 2026-11-25';

export const CIDR_PRESETS = {
  'backlog-jp': {
    description: 'Backlog webhook senders for backlog.jp spaces (Tokyo)',
    source: BACKLOG_SOURCE,
    cidrs: BACKLOG_TOKYO,
  },
  'backlog-com': {
    description: 'Backlog webhook senders for backlog.com spaces (Tokyo and Oregon)',
    source: BACKLOG_SOURCE,
    cidrs: [...BACKLOG_TOKYO, ...BACKLOG_OREGON],
  },
  'github-hooks': {
    description: 'GitHub.com webhook senders (the "hooks" list of the Meta API)',
    source:
      'https://api.github.com/meta "hooks", with the ranges added on 2026-10-29 (GitHub changelog); 2026-11-25',
    cidrs: [
      '192.30.252.0/22',
      '185.199.108.0/22',
      '140.82.112.0/20',
      '143.55.64.0/20',
      '9.234.98.160/28',
      '9.234.98.176/28',
      '9.234.106.48/28',
      '2a0a:a440::/29',
      '2606:50c0::/32',
    ],
  },
  'gitlab-com': {
    description: 'GitLab.com webhook senders (GitLab publishes these as the "webhooks" egress ranges)',
    source: 'https://docs.gitlab.com/user/gitlab_com/#ip-range (34.74.90.64/28, 34.74.226.0/24); 2026-11-25',
    cidrs: ['34.74.90.64/28', '34.74.226.0/24'],
  },
} as const satisfies Record<string, CidrPreset>;

export type CidrPresetName = keyof typeof CIDR_PRESETS;

export const CIDR_PRESET_NAMES = Object.keys(CIDR_PRESETS) as CidrPresetName[];

export function isCidrPresetName(value: string): value is CidrPresetName {
  return Object.hasOwn(CIDR_PRESETS, value);
}

/** Expands presets to their CIDRs and bare addresses to host prefixes, keeping order and dropping repeats. */
export function expandCidrs(entries: readonly string[]): string[] {
  const out = new Set<string>();
  for (const entry of entries) {
    if (isCidrPresetName(entry)) {
      for (const cidr of CIDR_PRESETS[entry].cidrs) out.add(cidr);
    } else {
      out.add(normalizeCidr(entry));
    }
  }
  return [...out];
}

/** A bare address is taken as a single host: `/32` for IPv4, `/128` for IPv6. */
export function normalizeCidr(value: string): string {
  if (value.includes('/')) return value;
  return value.includes(':') ? `${value}/128` : `${value}/32`;
}
