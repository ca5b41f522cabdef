import { isObject, isWebhookProvider, type PushEvent, type WebhookProvider } from './push-event';

/**
 * One configured repository as the webhook function needs it. The app derives the list from the
 * config at synth time and bundles it into the function, so it is never kept by hand.
 */
export interface WebhookRoute {
  /** The configured repository name (ECR repository); what the answer calls `repository`. */
  readonly name: string;
  /** The CodeBuild project that builds it. */
  readonly projectName: string;
  readonly provider: WebhookProvider;
  /** The Git server's host name as the payload's repository URLs give it (`github.com`, `ghes.example.co.jp`). */
  readonly host: string;
  /** The identity in the webhook: Backlog `PROJECT/repo`, GitHub `owner/name`, GitLab `group/project`, Bitbucket `workspace/repo`, Gitea `owner/name`. */
  readonly repository: string;
  readonly cloneUrl: string;
  readonly branches: readonly string[];
  readonly tags: readonly string[];
  /** Build only when one of these changed; undefined means every push builds. */
  readonly paths?: readonly string[];
}

/** One glob as picomatch compiled it at synth time (`compile-routes.ts`). */
export interface GlobMatcher {
  readonly glob: string;
  /** The source of picomatch's regular expression for the glob (no flags). */
  readonly regex: string;
}

/** A route as the function receives it: the globs with their compiled matchers. */
export interface BundledRoute extends WebhookRoute {
  readonly matchers: {
    readonly branches: readonly GlobMatcher[];
    readonly tags: readonly GlobMatcher[];
    readonly paths?: readonly GlobMatcher[];
  };
}

/** The routing decision for one push. */
export type RouteDecision =
  | { readonly kind: 'ignored'; readonly reason: string }
  | { readonly kind: 'build'; readonly routes: readonly BundledRoute[] };

/** Reads the bundled routing table, failing the cold start (not a delivery) when it is unusable. */
export function parseRoutes(json: string | undefined): BundledRoute[] {
  if (!json) throw new Error('PUSHLINE_ROUTES is not set: the routing table was not bundled');
  const routes: unknown = JSON.parse(json);
  if (!Array.isArray(routes)) throw new Error('PUSHLINE_ROUTES must be a JSON array of routes');
  return routes.map((route, i) => {
    if (
      !isObject(route) ||
      typeof route.name !== 'string' ||
      typeof route.projectName !== 'string' ||
      typeof route.provider !== 'string' ||
      !isWebhookProvider(route.provider) ||
      typeof route.host !== 'string' ||
      typeof route.repository !== 'string' ||
      typeof route.cloneUrl !== 'string' ||
      !Array.isArray(route.branches) ||
      !Array.isArray(route.tags) ||
      !isObject(route.matchers)
    ) {
      throw new Error(`PUSHLINE_ROUTES[${i}] is not a route: ${JSON.stringify(route)}`);
    }
    return route as unknown as BundledRoute;
  });
}

interface CompiledRoute {
  readonly route: BundledRoute;
  readonly key: string;
  readonly branch: (name: string) => boolean;
  readonly tag: (name: string) => boolean;
  readonly path?: (path: string) => boolean;
}

/**
 * Whether a name matches one of the globs, as picomatch decides it: the name equals the glob, or
 * the glob's compiled expression matches it.
 */
function anyOf(matchers: readonly GlobMatcher[]): (name: string) => boolean {
  const compiled = matchers.map((m) => ({ glob: m.glob, regex: new RegExp(m.regex) }));
  return (name) => compiled.some((m) => name === m.glob || m.regex.test(name));
}

/**
 * Repository identities compare without case (GitHub and GitLab treat `Owner/Name` and `owner/name`
 * alike) and include the server, so `acme/api` on github.com and on a company server never meet.
 */
function routeKey(provider: string, host: string, repository: string): string {
  return `${provider}:${host.toLowerCase()}:${repository.toLowerCase()}`;
}

/**
 * Compiles the routing table once (at cold start) into a function that decides, for one push,
 * which repositories build, or why none does.
 */
export function createRouter(routes: readonly BundledRoute[]): (event: PushEvent) => RouteDecision {
  const compiled: CompiledRoute[] = routes.map((route) => ({
    route,
    key: routeKey(route.provider, route.host, route.repository),
    branch: anyOf(route.matchers.branches),
    tag: anyOf(route.matchers.tags),
    ...(route.matchers.paths?.length ? { path: anyOf(route.matchers.paths) } : {}),
  }));

  return (event) => {
    const what = `${event.refType} ${event.refName}`;
    if (event.deleted) return { kind: 'ignored', reason: `${what} was deleted` };
    const key = routeKey(event.provider, event.host, event.repository);
    const configured = compiled.filter((c) => c.key === key);
    if (configured.length === 0)
      return { kind: 'ignored', reason: `repository ${event.repository} on ${event.host} is not configured` };
    const onRef = configured.filter((c) =>
      event.refType === 'branch' ? c.branch(event.refName) : c.tag(event.refName),
    );
    if (onRef.length === 0)
      return { kind: 'ignored', reason: `${what} does not match the configured ${event.refType} patterns` };
    const changed = event.changedPaths;
    const onPath = changed ? onRef.filter((c) => !c.path || changed.some((p) => c.path?.(p))) : onRef;
    if (onPath.length === 0)
      return { kind: 'ignored', reason: 'no changed path matches the configured paths' };
    return { kind: 'build', routes: onPath.map((c) => c.route) };
  };
}
