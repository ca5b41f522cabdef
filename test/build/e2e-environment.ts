import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type RunBuildspecResult, runBuildspec } from '../../local/buildspec-runner';
import {
  type DeployKey,
  type DockerDaemon,
  LOCAL_BUILD_TOOLS,
  type LocalTool,
  MissingToolError,
  makeDeployKey,
  missingTools,
  type RegistryDaemon,
  type SshDaemon,
  startDockerd,
  startRegistry,
  startSshd,
  stopAll,
  TOOL_PATHS,
} from '../../local/daemons';
import { type CountingProxy, startCountingProxy } from '../../local/registry-uploads';

export const BUILDSPEC_DIR = resolve(__dirname, '..', '..', 'buildspec');

export const E2E_TOOLS: readonly LocalTool[] = LOCAL_BUILD_TOOLS;

/**
 * Why the end-to-end build cannot run here, or undefined when it can. Outside CI a missing tool
 * skips it (with a loud message); in CI (`CI=true`, where .ci/run installs everything) it fails.
 */
export function e2eUnavailableReason(): string | undefined {
  const missing = missingTools(E2E_TOOLS);
  if (missing.length > 0) {
    return new MissingToolError(missing).message;
  }
  if (process.getuid?.() !== 0) return 'dockerd must run as root';
  return undefined;
}

/** The local world of one end-to-end run: Git over SSH, a registry and a Docker engine. */
export interface BuildWorld {
  readonly dir: string;
  readonly deployKey: DeployKey;
  readonly sshd: SshDaemon;
  readonly registry: RegistryDaemon;
  /** The current engine; `freshDockerd()` replaces it. */
  readonly dockerd: DockerDaemon;
  /**
   * Stops the engine and starts another on an empty data root: the next build starts as on a new
   * CodeBuild host, with no image, layer, build cache or pushed-layer record, so everything it reuses
   * comes from the registry. Resolves with the new engine's start-up time in ms.
   */
  freshDockerd(): Promise<number>;
  /** In front of the registry: the build pushes through it, so it counts what each push uploads. */
  readonly registryProxy: CountingProxy;
  /** `<proxy address>/<repository>`. */
  readonly imageRepositoryUri: string;
  stop(): Promise<void>;
}

export async function startBuildWorld(repositoryName = 'shop-api'): Promise<BuildWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'pl-e2e-'));
  const deployKey = makeDeployKey(dir, 'pushline-e2e');
  let sshd: SshDaemon | undefined;
  let registry: RegistryDaemon | undefined;
  let dockerd: DockerDaemon | undefined;
  let registryProxy: CountingProxy | undefined;
  try {
    sshd = await startSshd({ authorizedKeys: [deployKey.publicKey] });
    registry = await startRegistry();
    registryProxy = await startCountingProxy(registry.address);
    dockerd = await startDockerd();
  } catch (err) {
    await stopAll([sshd, registry, dockerd]);
    await registryProxy?.stop();
    throw err;
  }
  const proxy = registryProxy;
  let engine = dockerd;
  return {
    dir,
    deployKey,
    sshd,
    registry,
    get dockerd() {
      return engine;
    },
    freshDockerd: async () => {
      await engine.stop();
      const started = performance.now();
      engine = await startDockerd();
      return performance.now() - started;
    },
    registryProxy: proxy,
    imageRepositoryUri: `${proxy.address}/${repositoryName}`,
    stop: async () => {
      await stopAll([sshd, registry, engine]);
      await proxy.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The environment a CodeBuild project plus a webhook's overrides would give, pointed at the local world. */
export function localBuildEnv(
  world: BuildWorld,
  build: { commitSha: string; clonePath: string; deliveryId: string },
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    COMMIT_SHA: build.commitSha,
    GIT_REF: 'refs/heads/main',
    CLONE_URL: world.sshd.cloneUrl(build.clonePath),
    SOURCE_PROVIDER: 'github',
    SOURCE_REPOSITORY: 'example-org/shop-api',
    DELIVERY_ID: build.deliveryId,
    GIT_SSH_KEY: world.deployKey.privateKey,
    GIT_KNOWN_HOSTS: world.sshd.knownHostsLine,
    IMAGE_REPOSITORY_URI: world.imageRepositoryUri,
    ARTIFACT_KEY: 'artifacts/shop-api/deploy.zip',
    ARTIFACT_DIR: join(world.dir, 'artifacts'),
    PUSHLINE_WORK_DIR: join(world.dir, 'work'),
    REGISTRY_LOGIN: 'skip',
    REGISTRY_INSECURE: 'true',
    DOCKER_CLI: TOOL_PATHS.docker,
    DOCKER_HOST: world.dockerd.host,
    DOCKER_BUILD_NETWORK: 'host',
    ...extra,
  };
}

export function runLocalBuild(
  env: Record<string, string>,
  onLog?: (line: string) => void,
): Promise<RunBuildspecResult> {
  return runBuildspec({
    buildspecPath: join(BUILDSPEC_DIR, 'buildspec.yml'),
    cwd: BUILDSPEC_DIR,
    env,
    onLog,
  });
}

/** BuildKit's plain progress: the titles of the steps it answered from cache. */
export function cachedSteps(log: readonly string[]): string[] {
  const titles = new Map<string, string>();
  const cached: string[] = [];
  for (const line of log) {
    const title = /^#(\d+) (\[.*)$/.exec(line);
    if (title?.[1] && title[2]) titles.set(title[1], title[2]);
    const hit = /^#(\d+) CACHED$/.exec(line);
    if (hit?.[1]) cached.push(titles.get(hit[1]) ?? `#${hit[1]}`);
  }
  return cached;
}

/** The titles of the Dockerfile steps BuildKit executed (not cached). */
export function executedSteps(log: readonly string[]): string[] {
  const cached = new Set(cachedSteps(log));
  const titles = new Set<string>();
  for (const line of log) {
    const title = /^#\d+ (\[\d+\/\d+\] .*)$/.exec(line);
    if (title?.[1]) titles.add(title[1]);
  }
  return [...titles].filter((t) => !cached.has(t));
}
