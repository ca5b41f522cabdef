import { cloneUrlHost } from './known-hosts';
import type { Provider } from './schema';

/** The public services' hosts: a repository there needs no `source.host`. */
export const PUBLIC_HOSTS: Partial<Record<Provider, string>> = {
  github: 'github.com',
  gitlab: 'gitlab.com',
  bitbucket: 'bitbucket.org',
};

/** Backlog's cloud SSH hosts: `<space>.git.backlog.jp`, or `git.backlog.com` with the space as user. */
const BACKLOG_CLOUD_GIT_HOST = /^(?:([^.]+)\.)?git\.(backlog\.(?:jp|com))$/i;

/**
 * The host name a repository's webhook payloads carry in their repository URLs, which the webhook
 * function compares (with provider and identity) to pick the repositories a push builds:
 * `source.host` when given; else the public service's host (github.com, gitlab.com, bitbucket.org); for Backlog the
 * space's web host derived from the clone URL (`space@space.git.backlog.jp` → `space.backlog.jp`),
 * or on Backlog Enterprise (and Gitea, Forgejo) the clone URL's host itself.
 */
export function sourceHost(source: {
  readonly provider: Provider;
  readonly cloneUrl: string;
  readonly host?: string | undefined;
}): string {
  if (source.host) return source.host.toLowerCase();
  const publicHost = PUBLIC_HOSTS[source.provider];
  if (publicHost) return publicHost;
  const cloneHost = cloneUrlHost(source.cloneUrl).host.toLowerCase();
  if (source.provider === 'backlog') {
    const cloud = BACKLOG_CLOUD_GIT_HOST.exec(cloneHost);
    if (cloud) {
      const space = cloud[1] ?? /^([^@:/]+)@/.exec(source.cloneUrl.replace(/^ssh:\/\//, ''))?.[1];
      return `${space?.toLowerCase()}.${cloud[2]?.toLowerCase()}`;
    }
  }
  return cloneHost;
}

/** True when the repository lives on a server of its own, for which no host-key preset can exist. */
export function isSelfHosted(source: {
  readonly provider: Provider;
  readonly cloneUrl: string;
  readonly host?: string | undefined;
}): boolean {
  const host = sourceHost(source);
  const publicHost = PUBLIC_HOSTS[source.provider];
  if (publicHost) return host !== publicHost;
  if (source.provider === 'backlog') return !/\.backlog\.(?:jp|com)$/.test(host);
  return true;
}
