import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TOOL_PATHS } from './daemons';

/**
 * A Git repository of a small application whose image builds with no network: `FROM scratch` plus
 * Debian's static busybox. Its Dockerfile uses the two BuildKit mounts a pushline build provides —
 * `--mount=type=secret,id=npm_token` and `--mount=type=ssh` — and records only that they were there
 * (the secret's length, the agent socket's presence), never their contents.
 */
export const SAMPLE_DOCKERFILE = [
  'FROM scratch',
  'COPY busybox /bin/busybox',
  'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
  'RUN --mount=type=secret,id=npm_token wc -c < /run/secrets/npm_token > /secret-length',
  'RUN --mount=type=ssh test -S "$SSH_AUTH_SOCK" && echo agent-forwarded > /ssh-agent',
  'COPY app.txt /app.txt',
  'CMD ["/bin/cat", "/app.txt"]',
  '',
].join('\n');

/** The sample Dockerfile plus a step standing in for dependency installation (a few seconds of work), for benchmarks. */
export const SAMPLE_DOCKERFILE_WITH_DEPENDENCIES = SAMPLE_DOCKERFILE.replace(
  'COPY app.txt /app.txt',
  'RUN head -c 800000000 /dev/zero | sha256sum > /dependencies.lock\nCOPY app.txt /app.txt',
);

export interface SampleRepository {
  /** The bare repository the SSH server serves. */
  readonly barePath: string;
  /** A working clone to commit and push from. */
  readonly workPath: string;
  /** Writes `app.txt`, commits and pushes to `main`; returns the new commit's full SHA. */
  pushAppChange(text: string, message: string): string;
}

/** Creates the bare repository and a working clone under `dir`, with the app's first commit pushed. */
export function createSampleRepository(
  dir: string,
  firstAppText = 'version 1\n',
): SampleRepository & {
  readonly firstCommit: string;
} {
  const barePath = join(dir, 'origin', 'app.git');
  const workPath = join(dir, 'work');
  mkdirSync(barePath, { recursive: true });
  git(barePath, ['init', '-q', '--bare', '--initial-branch', 'main']);
  git(dir, ['init', '-q', '--initial-branch', 'main', workPath]);
  git(workPath, ['config', 'user.email', 'dev@example.com']);
  git(workPath, ['config', 'user.name', 'pushline test']);
  git(workPath, ['remote', 'add', 'origin', barePath]);
  writeFileSync(join(workPath, 'Dockerfile'), SAMPLE_DOCKERFILE);
  copyFileSync(TOOL_PATHS.busybox, join(workPath, 'busybox'));
  const pushAppChange = (text: string, message: string): string => {
    writeFileSync(join(workPath, 'app.txt'), text);
    git(workPath, ['add', '-A']);
    git(workPath, ['commit', '-q', '-m', message]);
    git(workPath, ['push', '-q', 'origin', 'HEAD:refs/heads/main']);
    return git(workPath, ['rev-parse', 'HEAD']).trim();
  };
  const firstCommit = pushAppChange(firstAppText, 'First version');
  return { barePath, workPath, pushAppChange, firstCommit };
}

export function git(cwd: string, args: readonly string[]): string {
  return execFileSync(TOOL_PATHS.git, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
