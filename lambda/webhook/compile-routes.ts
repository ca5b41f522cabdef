import picomatch from 'picomatch';
import type { BundledRoute, GlobMatcher, WebhookRoute } from './routes';

/**
 * Compiles the routes' branch, tag and path globs with picomatch at synth time, so that the
 * function bundles plain regular expressions instead of the glob library (the webhook bundle is
 * kept small for cold starts). Runs where the routes are made (the CDK app, tests), never in the
 * function.
 */
export function compileRoutes(routes: readonly WebhookRoute[]): BundledRoute[] {
  return routes.map((route) => ({
    ...route,
    matchers: {
      branches: route.branches.map((glob) => matcher(glob)),
      tags: route.tags.map((glob) => matcher(glob)),
      ...(route.paths ? { paths: route.paths.map((glob) => matcher(glob, { dot: true })) } : {}),
    },
  }));
}

function matcher(glob: string, options: picomatch.PicomatchOptions = {}): GlobMatcher {
  const regex = picomatch.makeRe(glob, options);
  if (regex.flags !== '') throw new Error(`glob ${glob} compiled with flags ${regex.flags}; expected none`);
  return { glob, regex: regex.source };
}
