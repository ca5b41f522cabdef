import picomatch from 'picomatch';
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
  /** The identity in the webhook: Backlog `PROJECT/repo`, GitHub `owner/name`, GitLab `group/project`. */
  readonly repository: string;
  readonly cloneUrl: string;
  readonly branches: readonly string[];
  readonly tags: readonly string[];
  /** Build only when one of these changed; undefined means every push builds. */
  readonly paths?: readonly string[];
}

/** The routing decision for one push. */
export type RouteDecision =
  | { readonly kind: 'ignored'; readonly reason: string }
  | { readonly kind: 'build'; readonly routes: readonly WebhookRoute[] };

/** Reads the bundled routing table, failing the cold start (not a delivery) when it is unusable. */
export function parseRoutes(json: string | undefined): WebhookRoute[] {
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
      typeof route.repository !== 'string' ||
      typeof route.cloneUrl !== 'string' ||
      !Array.isArray(route.branches) ||
      !Array.isArray(route.tags)
    ) {
      throw new Error(`PUSHLINE_ROUTES[${i}] is not a route: ${JSON.stringify(route)}`);
    }
    return route as unknown as WebhookRoute;
  });
}

interface CompiledRoute {
  readonly route: WebhookRoute;
  readonly key: string;
  readonly branch: (name: string) => boolean;
  readonly tag: (name: string) => boolean;
  readonly path?: (path: string) => boolean;
}

const NEVER = (): boolean => false;

/** Repository identities compare without case: GitHub and GitLab treat `Owner/Name` and `owner/name` alike. */
function routeKey(provider: string, repository: string): string {
  return `${provider}:${repository.toLowerCase()}`;
}

/**
 * Compiles the routing table once (at cold start) into a function that decides, for one push,
 * which repositories build, or why none does.
 */
export function createRouter(routes: readonly WebhookRoute[]): (event: PushEvent) => RouteDecision {
  const compiled: CompiledRoute[] = routes.map((route) => ({
    route,
    key: routeKey(route.provider, route.repository),
    branch: route.branches.length > 0 ? picomatch([...route.branches]) : NEVER,
    tag: route.tags.length > 0 ? picomatch([...route.tags]) : NEVER,
    ...(route.paths && route.paths.length > 0 ? { path: picomatch([...route.paths], { dot: true }) } : {}),
  }));

  return (event) => {
    const what = `${event.refType} ${event.refName}`;
    if (event.deleted) return { kind: 'ignored', reason: `${what} was deleted` };
    const key = routeKey(event.provider, event.repository);
    const configured = compiled.filter((c) => c.key === key);
    if (configured.length === 0)
      return { kind: 'ignored', reason: `repository ${event.repository} is not configured` };
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
