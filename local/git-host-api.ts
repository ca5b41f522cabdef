import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for the parts of the GitHub, GitLab, Backlog, Bitbucket and Gitea APIs that pushline's reporter
 * calls, on one 127.0.0.1 port. Each provider lives under its own base path (`apiUrls`), so a
 * reporter pointed at it through `source.apiUrl` runs unchanged. It records every call, answers
 * the way the providers document, and prints what a person would see on the commit.
 */

/** A commit status (GitHub, GitLab) or a pull request comment (Backlog) as the stand-in received it. */
export interface RecordedReport {
  readonly provider: 'github' | 'gitlab' | 'backlog' | 'bitbucket' | 'gitea';
  /** `owner/name`, the decoded GitLab project path, or `PROJECT/repo`. */
  readonly repository: string;
  /** The commit (GitHub, GitLab); undefined for Backlog. */
  readonly sha?: string;
  /** GitHub `state`, GitLab `state`; undefined for Backlog. */
  readonly state?: string;
  /** GitHub `context`, GitLab `name`. */
  readonly context?: string;
  readonly description?: string;
  readonly targetUrl?: string;
  /** GitLab `ref`. */
  readonly ref?: string;
  /** Backlog: the pull request commented on, and the comment. */
  readonly pullRequest?: number;
  readonly content?: string;
  /** The credential the call carried (Bearer token, PRIVATE-TOKEN or apiKey). */
  readonly credential?: string;
}

export interface BacklogPullRequest {
  readonly number: number;
  /** The source branch. */
  readonly branch: string;
  /** 1 open, 2 closed, 3 merged. */
  readonly statusId?: number;
}

export interface LocalGitHostApi {
  readonly url: string;
  /** The `source.apiUrl` to configure for each provider. */
  readonly apiUrls: {
    readonly github: string;
    readonly gitlab: string;
    readonly backlog: string;
    readonly bitbucket: string;
    readonly gitea: string;
  };
  readonly reports: RecordedReport[];
  /** Backlog pull requests by `PROJECT/repo`. */
  readonly backlogPullRequests: Map<string, BacklogPullRequest[]>;
  /** The next `count` calls answer with `status` (e.g. 502), to exercise retries. */
  failNext(count: number, status: number): void;
  close(): Promise<void>;
}

export interface LocalGitHostApiOptions {
  /** Called with each report as it arrives (the local run prints it). */
  readonly onReport?: (report: RecordedReport) => void;
}

export async function startLocalGitHostApi(options: LocalGitHostApiOptions = {}): Promise<LocalGitHostApi> {
  const reports: RecordedReport[] = [];
  const backlogPullRequests = new Map<string, BacklogPullRequest[]>();
  let failures: { count: number; status: number } = { count: 0, status: 500 };

  const record = (report: RecordedReport): void => {
    reports.push(report);
    options.onReport?.(report);
  };

  const server: Server = createServer((req, res) => {
    void readBody(req).then((body) => {
      const answer = (status: number, payload: unknown): void => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(payload));
      };
      if (failures.count > 0) {
        failures = { ...failures, count: failures.count - 1 };
        answer(failures.status, { message: 'stand-in failure' });
        return;
      }
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const path = url.pathname;
      let match = /^\/github\/repos\/([^/]+)\/([^/]+)\/statuses\/([0-9a-f]{40})$/.exec(path);
      if (req.method === 'POST' && match) {
        const json = JSON.parse(body) as Record<string, string | undefined>;
        if (!['pending', 'success', 'failure', 'error'].includes(json.state ?? ''))
          return answer(422, { message: 'Validation Failed' });
        if ((json.description ?? '').length > 140) return answer(422, { message: 'description is too long' });
        record({
          provider: 'github',
          repository: ownerAndName(match),
          sha: match[3],
          state: json.state,
          context: json.context,
          description: json.description,
          targetUrl: json.target_url,
          credential: req.headers.authorization?.replace(/^Bearer /, ''),
        });
        return answer(201, { state: json.state, context: json.context });
      }
      match =
        /^\/bitbucket\/2\.0\/repositories\/([^/]+)\/([^/]+)\/commit\/([0-9a-f]{40})\/statuses\/build$/.exec(
          path,
        );
      if (req.method === 'POST' && match) {
        const json = JSON.parse(body) as Record<string, string | undefined>;
        if (
          !['INPROGRESS', 'SUCCESSFUL', 'FAILED', 'STOPPED'].includes(json.state ?? '') ||
          !json.key ||
          !json.url
        )
          return answer(400, { type: 'error', error: { message: 'state, key and url are required' } });
        record({
          provider: 'bitbucket',
          repository: ownerAndName(match),
          sha: match[3],
          state: json.state,
          context: json.key,
          description: json.description,
          targetUrl: json.url,
          ref: json.refname,
          credential: req.headers.authorization?.replace(/^Bearer /, ''),
        });
        return answer(201, { key: json.key, state: json.state });
      }
      match = /^\/gitea\/api\/v1\/repos\/([^/]+)\/([^/]+)\/statuses\/([0-9a-f]{40})$/.exec(path);
      if (req.method === 'POST' && match) {
        const json = JSON.parse(body) as Record<string, string | undefined>;
        if (!['pending', 'success', 'error', 'failure', 'warning'].includes(json.state ?? ''))
          return answer(422, { message: 'invalid state' });
        record({
          provider: 'gitea',
          repository: ownerAndName(match),
          sha: match[3],
          state: json.state,
          context: json.context,
          description: json.description,
          targetUrl: json.target_url,
          credential: req.headers.authorization?.replace(/^token /, ''),
        });
        return answer(201, { status: json.state, context: json.context });
      }
      match = /^\/gitlab\/api\/v4\/projects\/([^/]+)\/statuses\/([0-9a-f]{40})$/.exec(path);
      if (req.method === 'POST' && match) {
        const json = JSON.parse(body) as Record<string, string | undefined>;
        if (!['pending', 'running', 'success', 'failed', 'canceled'].includes(json.state ?? ''))
          return answer(400, { message: 'state does not have a valid value' });
        record({
          provider: 'gitlab',
          repository: decodeURIComponent(match[1] ?? ''),
          sha: match[2],
          state: json.state,
          context: json.name,
          description: json.description,
          targetUrl: json.target_url,
          ref: json.ref,
          credential: headerValue(req.headers['private-token']),
        });
        return answer(201, { status: json.state, name: json.name });
      }
      match =
        /^\/backlog\/api\/v2\/projects\/([^/]+)\/git\/repositories\/([^/]+)\/pullRequests(?:\/(\d+)\/comments)?$/.exec(
          path,
        );
      if (match) {
        const repository = ownerAndName(match);
        const credential = url.searchParams.get('apiKey') ?? undefined;
        if (!credential) return answer(401, { errors: [{ message: 'Authentication failure.' }] });
        if (req.method === 'GET' && match[3] === undefined) {
          const wanted = url.searchParams.getAll('statusId[]').map(Number);
          const list = (backlogPullRequests.get(repository) ?? []).filter(
            (pr) => wanted.length === 0 || wanted.includes(pr.statusId ?? 1),
          );
          return answer(
            200,
            list.map((pr) => ({ number: pr.number, branch: pr.branch, status: { id: pr.statusId ?? 1 } })),
          );
        }
        if (req.method === 'POST' && match[3] !== undefined) {
          const content = new URLSearchParams(body).get('content') ?? '';
          record({ provider: 'backlog', repository, pullRequest: Number(match[3]), content, credential });
          return answer(201, { id: reports.length, content });
        }
      }
      answer(404, { message: 'Not Found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    apiUrls: {
      github: `${url}/github`,
      gitlab: `${url}/gitlab/api/v4`,
      backlog: `${url}/backlog`,
      bitbucket: `${url}/bitbucket/2.0`,
      gitea: `${url}/gitea/api/v1`,
    },
    reports,
    backlogPullRequests,
    failNext(count, status) {
      failures = { count, status };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** `owner/name` from a path matched as `/…/<owner>/<name>/…`. */
function ownerAndName(match: RegExpExecArray): string {
  return `${decodeURIComponent(match[1] ?? '')}/${decodeURIComponent(match[2] ?? '')}`;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
