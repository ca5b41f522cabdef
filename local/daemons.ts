import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The local stand-ins for what a CodeBuild build talks to: a Docker engine, an OCI registry and a
 * Git server over SSH, each from Debian packages, each on its own free port or socket under a
 * temporary directory, each stopped by its own PID. Used by the end-to-end test, the bench and
 * `npm run local`.
 */

/** The Debian packages that provide the tools these daemons need. */
export const DEBIAN_PACKAGES = {
  dockerd: 'docker.io',
  docker: 'docker.io',
  'docker-registry': 'docker-registry',
  sshd: 'openssh-server',
  'ssh-keygen': 'openssh-client',
  git: 'git',
  busybox: 'busybox-static',
  skopeo: 'skopeo',
  zip: 'zip',
  unzip: 'unzip',
} as const;
export type LocalTool = keyof typeof DEBIAN_PACKAGES;

/** Every tool a local build needs: the end-to-end tests and `npm run local` check for all of them. */
export const LOCAL_BUILD_TOOLS = Object.keys(DEBIAN_PACKAGES) as LocalTool[];

/**
 * Debian's own binaries. The first `docker` on PATH may be another client (without BuildKit
 * support for `--ssh`/`--secret` on a classic daemon); these are the ones the build is tested with.
 */
export const TOOL_PATHS: Record<LocalTool, string> = {
  dockerd: '/usr/sbin/dockerd',
  docker: '/usr/bin/docker',
  'docker-registry': '/usr/bin/docker-registry',
  sshd: '/usr/sbin/sshd',
  'ssh-keygen': '/usr/bin/ssh-keygen',
  git: '/usr/bin/git',
  busybox: '/bin/busybox',
  skopeo: '/usr/bin/skopeo',
  zip: '/usr/bin/zip',
  unzip: '/usr/bin/unzip',
};

/** A tool is not installed; the message is the `apt-get install` line that fixes it. */
export class MissingToolError extends Error {
  override name = 'MissingToolError';
  constructor(readonly tools: readonly LocalTool[]) {
    const packages = [...new Set(tools.map((tool) => DEBIAN_PACKAGES[tool]))];
    super(
      `missing ${tools.map((tool) => TOOL_PATHS[tool]).join(', ')}: ` +
        `sudo apt-get update && sudo apt-get install -y ${packages.join(' ')}`,
    );
  }
}

/** The tools of the list that are not installed. */
export function missingTools(tools: readonly LocalTool[]): LocalTool[] {
  return tools.filter((tool) => {
    try {
      accessSync(TOOL_PATHS[tool], constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
}

/** Throws a MissingToolError naming every missing tool at once. */
export function requireTools(tools: readonly LocalTool[]): void {
  const missing = missingTools(tools);
  if (missing.length > 0) throw new MissingToolError(missing);
}

/** A port nobody listens on right now (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A started daemon. `stop()` ends it by its PID and removes its temporary directory. */
export interface Daemon {
  readonly pid: number;
  /** The daemon's temporary directory (state, logs, config). */
  readonly dir: string;
  /** Its log so far (stdout and stderr), for error messages. */
  log(): string;
  stop(): Promise<void>;
}

export interface DockerDaemon extends Daemon {
  /** `unix://…` socket; give it to clients as DOCKER_HOST. */
  readonly host: string;
  /** Runs Debian's docker client against this daemon. */
  docker(args: readonly string[], options?: { input?: string }): string;
}

export interface RegistryDaemon extends Daemon {
  /** `127.0.0.1:<port>`: plain HTTP, which Docker allows for loopback addresses. */
  readonly address: string;
}

export interface SshDaemon extends Daemon {
  readonly port: number;
  /** The user that may log in (the one running this process). */
  readonly user: string;
  /** `[127.0.0.1]:<port> <type> <key>`: the pinned host key line for known_hosts. */
  readonly knownHostsLine: string;
  /** `ssh://<user>@127.0.0.1:<port><path>`. */
  cloneUrl(absolutePath: string): string;
}

/**
 * Starts a Docker engine as Debian ships it, isolated from any other engine on the machine: its own
 * socket, data and exec roots, vfs storage (works inside containers), no iptables and no bridge
 * (builds use `--network host`). Needs root.
 */
export async function startDockerd(): Promise<DockerDaemon> {
  requireTools(['dockerd', 'docker']);
  if (process.getuid?.() !== 0) {
    throw new Error('dockerd needs root: run the end-to-end build as root (CI does), or use a rootful VM');
  }
  const dir = mkdtempSync(join('/tmp', 'pl-dockerd-'));
  const socket = join(dir, 'docker.sock');
  const host = `unix://${socket}`;
  const child = spawnLogged(
    TOOL_PATHS.dockerd,
    [
      '--storage-driver',
      'vfs',
      '--iptables=false',
      '--ip-masq=false',
      '--bridge',
      'none',
      '--host',
      host,
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      join(dir, 'exec'),
      '--pidfile',
      join(dir, 'docker.pid'),
    ],
    join(dir, 'dockerd.log'),
  );
  const docker = (args: readonly string[], options: { input?: string } = {}) =>
    execFileSync(TOOL_PATHS.docker, args, {
      env: { ...process.env, DOCKER_HOST: host },
      input: options.input,
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
      maxBuffer: 64 * 1024 * 1024,
    });
  const daemon = { ...daemonHandle(child, dir, join(dir, 'dockerd.log'), 'dockerd'), host, docker };
  await waitFor('dockerd', daemon, 60_000, () => {
    docker(['version', '--format', '{{.Server.Version}}']);
    return true;
  });
  return daemon;
}

/** Starts Debian's `docker-registry` (CNCF distribution) on a free loopback port, storage on disk. */
export async function startRegistry(): Promise<RegistryDaemon> {
  requireTools(['docker-registry']);
  const dir = mkdtempSync(join(tmpdir(), 'pl-registry-'));
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log: { level: warn }',
      'storage:',
      `  filesystem: { rootdirectory: ${join(dir, 'data')} }`,
      '  delete: { enabled: true }',
      `http: { addr: "${address}" }`,
      '',
    ].join('\n'),
  );
  const child = spawnLogged(TOOL_PATHS['docker-registry'], ['serve', config], join(dir, 'registry.log'));
  const daemon = { ...daemonHandle(child, dir, join(dir, 'registry.log'), 'docker-registry'), address };
  await waitFor('docker-registry', daemon, 20_000, async () => {
    const response = await fetch(`http://${address}/v2/`);
    return response.ok;
  });
  return daemon;
}

/** A deploy key pair, made as a user would with ssh-keygen; only the strings are kept, not the files. */
export interface DeployKey {
  readonly privateKey: string;
  readonly publicKey: string;
}

export function makeDeployKey(dir: string, comment: string): DeployKey {
  const file = join(dir, `${comment}-key`);
  execFileSync(TOOL_PATHS['ssh-keygen'], ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  const privateKey = readFileSync(file, 'utf8');
  const publicKey = readFileSync(`${file}.pub`, 'utf8').trim();
  rmSync(file);
  rmSync(`${file}.pub`);
  return { privateKey, publicKey };
}

export interface SshdOptions {
  /** Public keys (OpenSSH one-line form) allowed to log in. */
  readonly authorizedKeys: readonly string[];
}

/**
 * Starts OpenSSH's sshd on a free loopback port with a fresh ed25519 host key, allowing only the
 * given public keys, for the user running this process. Git over SSH then works with
 * `ssh://<user>@127.0.0.1:<port>/abs/path/repo.git`.
 */
export async function startSshd(options: SshdOptions): Promise<SshDaemon> {
  requireTools(['sshd', 'ssh-keygen', 'git']);
  const dir = mkdtempSync(join(tmpdir(), 'pl-sshd-'));
  const port = await freePort();
  const hostKey = join(dir, 'host_ed25519');
  execFileSync(TOOL_PATHS['ssh-keygen'], ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  const authorizedKeys = join(dir, 'authorized_keys');
  writeFileSync(authorizedKeys, `${options.authorizedKeys.join('\n')}\n`, { mode: 0o600 });
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorizedKeys}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'UsePAM no',
      // Git hosts speak protocol v2 over SSH, which (like GitHub and GitLab) hands out any reachable commit.
      'AcceptEnv GIT_PROTOCOL',
      `SetEnv PATH=${process.env.PATH ?? '/usr/bin:/bin'}`,
      '',
    ].join('\n'),
  );
  // sshd refuses to start without its privilege-separation directory.
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const child = spawnLogged(TOOL_PATHS.sshd, ['-D', '-e', '-f', config], join(dir, 'sshd.log'));
  const [type, key] = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/);
  const user = execFileSync('id', ['-un'], { encoding: 'utf8' }).trim();
  const daemon = {
    ...daemonHandle(child, dir, join(dir, 'sshd.log'), 'sshd'),
    port,
    user,
    knownHostsLine: `[127.0.0.1]:${port} ${type} ${key}`,
    cloneUrl: (absolutePath: string) => `ssh://${user}@127.0.0.1:${port}${absolutePath}`,
  };
  await waitFor('sshd', daemon, 20_000, () => canConnect(port));
  return daemon;
}

/** Stops every daemon given, in reverse order, even when one of them fails to stop. */
export async function stopAll(daemons: readonly (Daemon | undefined)[]): Promise<void> {
  for (const daemon of [...daemons].reverse()) {
    try {
      await daemon?.stop();
    } catch (err) {
      process.stderr.write(`could not stop pid ${daemon?.pid}: ${String(err)}\n`);
    }
  }
}

function spawnLogged(command: string, args: readonly string[], logFile: string): ChildProcess {
  writeFileSync(logFile, '');
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const append = (chunk: Buffer) => writeFileSync(logFile, chunk, { flag: 'a' });
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return child;
}

function daemonHandle(child: ChildProcess, dir: string, logFile: string, name: string): Daemon {
  if (child.pid === undefined) throw new Error(`${name} did not start (no pid)`);
  const pid = child.pid;
  let exited = child.exitCode !== null;
  const exit = new Promise<void>((resolve) => {
    if (exited) resolve();
    child.once('exit', () => {
      exited = true;
      resolve();
    });
  });
  return {
    pid,
    dir,
    log: () => readFileSync(logFile, 'utf8'),
    stop: async () => {
      if (!exited) {
        process.kill(pid, 'SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const killed = await Promise.race([
          exit.then(() => true),
          new Promise<boolean>((resolve) => {
            timer = setTimeout(() => resolve(false), 20_000);
          }),
        ]);
        clearTimeout(timer);
        if (!killed) {
          process.kill(pid, 'SIGKILL');
          await exit;
        }
      }
      // dockerd leaves root-owned state behind; vfs layers can be large.
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}

async function waitFor(
  name: string,
  daemon: Daemon,
  timeoutMs: number,
  ready: () => boolean | Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    try {
      if (await ready()) return;
    } catch (err) {
      lastError = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
    }
    await sleep(200);
  }
  const log = daemon.log().split('\n').slice(-15).join('\n');
  await daemon.stop().catch(() => undefined);
  throw new Error(
    `${name} did not become ready within ${timeoutMs / 1000}s (${lastError}). Its log:\n${log}`,
  );
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.connect(port, '127.0.0.1');
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
