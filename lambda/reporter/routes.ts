import { z } from 'zod';

/** The providers build results are reported to. */
export const REPORT_PROVIDERS = ['backlog', 'github', 'gitlab', 'bitbucket', 'gitea'] as const;
export type ReportProvider = (typeof REPORT_PROVIDERS)[number];

const ReporterRouteSchema = z.object({
  name: z.string().min(1),
  projectName: z.string().min(1),
  provider: z.enum(REPORT_PROVIDERS),
  repository: z.string().min(1),
  apiUrl: z.url(),
  /** False: the result is not put on the commit (a failed build still reaches the notification topic). */
  report: z.boolean(),
});

/**
 * One repository whose builds are reported, as the reporter needs it. The app derives the list
 * from the config at synth time and bundles it into the function (esbuild `define`).
 */
export type ReporterRoute = z.infer<typeof ReporterRouteSchema>;

/** Reads the bundled table, failing the cold start (not a report) when it is unusable. */
export function parseReporterRoutes(json: string | undefined): ReporterRoute[] {
  if (!json) throw new Error('PUSHLINE_REPORT_ROUTES is not set: the reporting table was not bundled');
  return z.array(ReporterRouteSchema).parse(JSON.parse(json));
}
