import type { Provider, RepositoryConfig } from './schema';

/**
 * Published SSH host keys of the Git providers, for `source.knownHosts` presets. The build pins
 * them (`StrictHostKeyChecking=yes`) and never runs `ssh-keyscan`: a key learned on first use is
 * a key a network attacker can choose.
 *
 * Sources, checked on 2026-11-25 (`ssh-keygen -lf` of these lines gives the published SHA256
 * fingerprints):
 * - GitHub: https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/githubs-ssh-key-fingerprints
 *   ED25519 SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU, ECDSA SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM,
 *   RSA SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s
 * - GitLab.com: https://docs.gitlab.com/ee/user/gitlab_com/#ssh-known_hosts-entries
 *   ED25519 SHA256:eUXGGm1YGsMAS7vkcx6JOJdOGHPem5gQp4taiCfCLB8, ECDSA SHA256:HbW3g8zUjNSksFbqTiUWPWg2Bq1x8xdGUrliXFzSnUw,
 *   RSA SHA256:ROQFvPThGrW4RuWLoL9tq9I9zJ42fK4XywyRtbOz/EQ
 * - Bitbucket Cloud: the ECDSA and Ed25519 keys Atlassian introduced on 2023-05-15, "Bitbucket Cloud
 *   SSH host key changes" (https://bitbucket.org/blog/ssh-host-key-changes, also
 *   https://www.atlassian.com/blog/it-teams/ssh-host-key-changes), whose fingerprints
 *   ECDSA SHA256:FC73VB6C4OQLSCrjEayhMp9UMxS97caD/Yyi2bhW/J0 and ED25519
 *   SHA256:ybgmFkzwOSotHTHLJgHO0QN8L0xErw6vd0VhFA9m3SM are also listed in "Set up additional SSH
 *   keys" (https://support.atlassian.com/bitbucket-cloud/docs/set-up-additional-ssh-keys/). The RSA
 *   key (3072 bits, rotated 2023-06-20) is checked against the fingerprint Atlassian prints,
 *   RSA SHA256:46OSHA1Rmj8E8ERTC6xkNcmGOw9oFxYr0WF6zWW8l1E ("The authenticity of host 'bitbucket.org'
 *   can't be established": https://confluence.atlassian.com/bbkb/the-authenticity-of-host-bitbucket-org-104-192-143-1-can-t-be-established-1168865389.html).
 * - Gitea and Forgejo run on the user's own servers: no preset; the config must give the lines.
 * - Backlog (Nulab): no published host keys could be found in Nulab's documentation, so the
 *   Backlog presets are EMPTY on purpose. A Backlog repository needs explicit `knownHosts` lines
 *   for `<space>.git.backlog.jp` / `.com`, verified out of band (for example with Nulab support);
 *   until then synth warns and the build stops before fetching with a message saying so.
 */
export const KNOWN_HOSTS_PRESET_LINES = {
  github: [
    'github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl',
    'github.com ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=',
    'github.com ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCj7ndNxQowgcQnjshcLrqPEiiphnt+VTTvDP6mHBL9j1aNUkY4Ue1gvwnGLVlOhGeYrnZaMgRK6+PKCUXaDbC7qtbW8gIkhL7aGCsOr/C56SJMy/BCZfxd1nWzAOxSDPgVsmerOBYfNqltV9/hWCqBywINIR+5dIg6JTJ72pcEpEjcYgXkE2YEFXV1JHnsKgbLWNlhScqb2UmyRkQyytRLtL+38TGxkxCflmO+5Z8CSSNY7GidjMIZ7Q4zMjA2n1nGrlTDkzwDCsw+wqFPGQA179cnfGWOWRVruj16z6XyvxvjJwbz0wQZ75XK5tKSb7FNyeIEs4TT4jk+S4dhPeAUC5y+bDYirYgM4GC7uEnztnZyaVWQ7B381AK4Qdrwt51ZqExKbQpTUNn+EjqoTwvqNj4kqx5QUCI0ThS/YkOxJCXmPUWZbhjpCg56i+2aB6CmK2JGhn57K5mj0MNdBXA4/WnwH6XoPWJzK5Nyu2zB3nAZp+S5hpQs+p1vN1/wsjk=',
  ],
  gitlab: [
    'gitlab.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf',
    'gitlab.com ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFSMqzJeV9rUzU4kWitGjeR4PWSa29SPqJ1fVkhtj3Hw9xjLVXVYrU9QlYWrOLXBpQ6KWjbjTDTdDkoohFzgbEY=',
    'gitlab.com ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCsj2bNKTBSpIYDEGk9KxsGh3mySTRgMtXL583qmBpzeQ+jqCMRgBqB98u3z++J1sKlXHWfM9dyhSevkMwSbhoR8XIq/U0tCNyokEi/ueaBMCvbcTHhO7FcwzY92WK4Yt0aGROY5qX2UKSeOvuP4D6TPqKF1onrSzH9bx9XUf2lEdWT/ia1NEKjunUqu1xOB/StKDHMoX4/OKyIzuS0q/T1zOATthvasJFoPrAjkohTyaDUz2LN5JoH839hViyEG82yB+MjcFV5MU3N1l1QL3cVUCh93xSaua1N85qivl+siMkPGbO5xR/En4iEY6K2XPASUEMaieWVNTRCtJ4S8H+9',
  ],
  bitbucket: [
    'bitbucket.org ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPIQmuzMBuKdWeF4+a2sjSSpBK0iqitSQ+5BM9KhpexuGt20JpTVM7u5BDZngncgrqDMbWdxMWWOGtZ9UgbqgZE=',
    'bitbucket.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIazEu89wgQZ4bqs3d63QSMzYVa0MuJ2e2gKTKqu+UUO',
    'bitbucket.org ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQDQeJzhupRu0u0cdegZIa8e86EG2qOCsIsD1Xw0xSeiPDlCr7kq97NLmMbpKTX6Esc30NuoqEEHCuc7yWtwp8dI76EEEB1VqY9QJq6vk+aySyboD5QF61I/1WeTwu+deCbgKMGbUijeXhtfbxSxm6JwGrXrhBdofTsbKRUsrN1WoNgUa8uqN1Vx6WAJw1JHPhglEGGHea6QICwJOAr/6mrui/oB7pkaWKHj3z7d1IC4KWLtY47elvjbaTlkN04Kc/5LFEirorGYVbt15kAUlqGM65pk6ZBxtaO3+30LVlORZkxOh+LKL/BvbZ/iRNhItLqNyieoQj/uh/7Iv4uyH/cV/0b4WDSd3DptigWq84lJubb9t/DnZlrJazxyDCulTmKdOR7vs9gMTo+uoIrPSb8ScTtvw65+odKAlBj59dhnVp9zd7QUojOpXlL62Aw56U4oO+FALuevvMjiWeavKhJqlR7i5n9srYcrNV7ttmDw7kf/97P5zauIhxcjX+xHv4M=',
  ],
  'backlog-jp': [],
  'backlog-com': [],
} as const satisfies Record<string, readonly string[]>;

export type KnownHostsPreset = keyof typeof KNOWN_HOSTS_PRESET_LINES;

/** What the build pins for one repository, and why a user should look again if anything is off. */
export interface ResolvedKnownHosts {
  readonly lines: readonly string[];
  /** The preset used, when the lines come from one. */
  readonly preset?: KnownHostsPreset;
  /** A problem to show at synth time: the build will refuse to fetch until it is fixed. */
  readonly problem?: string;
}

/** The host (and port, if not 22) of an SSH clone URL: `git@github.com:o/r.git` → `github.com`. */
export function cloneUrlHost(cloneUrl: string): { host: string; port?: number } {
  const url = /^ssh:\/\/(?:[^@/]+@)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?\//.exec(cloneUrl);
  if (url?.[1]) {
    const host = url[1].replace(/^\[|\]$/g, '');
    const port = url[2] ? Number(url[2]) : undefined;
    return port && port !== 22 ? { host, port } : { host };
  }
  const scp = /^(?:[^@]+@)?([^:]+):/.exec(cloneUrl);
  return { host: scp?.[1] ?? cloneUrl };
}

/** The preset a repository gets when its config names none. */
export function defaultPreset(provider: Provider, cloneUrl: string): KnownHostsPreset | undefined {
  if (provider === 'backlog')
    return cloneUrlHost(cloneUrl).host.endsWith('.backlog.com') ? 'backlog-com' : 'backlog-jp';
  return provider === 'gitea' ? undefined : provider;
}

/** True when a known_hosts host field (`a,b`, `*.x`, `[h]:p`) names the host the build connects to. */
export function knownHostsLineCovers(line: string, target: { host: string; port?: number }): boolean {
  const field = line.split(' ')[0] ?? '';
  const name = target.port ? `[${target.host}]:${target.port}` : target.host;
  return field.split(',').some((pattern) => {
    if (pattern.startsWith('!')) return false;
    const regex = new RegExp(
      `^${pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
    );
    return regex.test(name);
  });
}

/** The known_hosts lines a repository's build pins. */
export function resolveKnownHosts(source: RepositoryConfig['source']): ResolvedKnownHosts {
  const configured = source.knownHosts;
  const preset = Array.isArray(configured)
    ? undefined
    : ((configured as KnownHostsPreset | undefined) ?? defaultPreset(source.provider, source.cloneUrl));
  const lines: readonly string[] = preset
    ? KNOWN_HOSTS_PRESET_LINES[preset]
    : ((configured as readonly string[] | undefined) ?? []);
  const target = cloneUrlHost(source.cloneUrl);
  const where = preset ? `preset ${preset}` : 'source.knownHosts';
  if (lines.length === 0) {
    return {
      lines,
      preset,
      problem:
        `${where} has no host key${preset ? ': Nulab publishes none that pushline could verify' : ''}. Add the host key of ` +
        `${target.host} as source.knownHosts lines, checked out of band; until then the build refuses to fetch.`,
    };
  }
  if (!lines.some((line) => knownHostsLineCovers(line, target))) {
    const name = target.port ? `[${target.host}]:${target.port}` : target.host;
    return {
      lines,
      preset,
      problem: `${where} has no key for ${name}, the host of cloneUrl ${source.cloneUrl}: the build will refuse to fetch.`,
    };
  }
  return { lines, preset };
}
