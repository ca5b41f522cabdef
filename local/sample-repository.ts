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

/**
 * A Dockerfile shaped like a real application's, for benchmarks: the dependency manifest is copied
 * and the dependencies "installed" (a few seconds of work, 16 MB of incompressible output, standing
 * in for `COPY package*.json ./` then `npm ci`) before the source is copied, so a source change
 * re-executes only the last step. Goes with SAMPLE_APP_FILES.
 */
export const SAMPLE_APP_DOCKERFILE = [
  'FROM scratch',
  'COPY busybox /bin/busybox',
  'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
  'WORKDIR /app',
  'COPY dependencies.txt ./',
  'RUN --mount=type=secret,id=npm_token head -c 800000000 /dev/zero | sha256sum > dependencies.lock && head -c 16000000 /dev/urandom > dependencies.bin',
  'COPY app.txt ./',
  'CMD ["/bin/cat", "/app/app.txt"]',
  '',
].join('\n');

/** The files besides `app.txt` that SAMPLE_APP_DOCKERFILE builds from, by path in the repository. */
export const SAMPLE_APP_FILES: Readonly<Record<string, string>> = {
  Dockerfile: SAMPLE_APP_DOCKERFILE,
  'dependencies.txt': 'left-pad 1.3.0\n',
  '.dockerignore': '.git\n',
};

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
