import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSampleRepository, git, SAMPLE_DOCKERFILE_WITH_DEPENDENCIES } from '../local/sample-repository';
import {
  cachedSteps,
  e2eUnavailableReason,
  localBuildEnv,
  runLocalBuild,
  startBuildWorld,
} from '../test/build/e2e-environment';

/**
 * The image build in the local end-to-end setting (sshd, docker-registry, Debian's dockerd; see
 * test/build/e2e-environment.ts), one run, printed as ratios against a baseline from the same run:
 *
 * 1. cold build vs rebuild after a one-line source change, with the engine's local cache wiped in
 *    between (a fresh CodeBuild host), so every reused layer comes from the registry cache;
 * 2. the build's shallow fetch of one commit vs a full `git clone`, time and bytes, on a generated
 *    repository of 2,000 commits.
 *
 *   npx tsx bench/build.ts        (root; needs the Debian packages the e2e test needs)
 */

const HISTORY_COMMITS = 2000;
const SCRIPT = join(__dirname, '..', 'buildspec', 'scripts', 'pushline-build.sh');

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

function directoryBytes(path: string): number {
  return Number(execFileSync('du', ['-sb', path], { encoding: 'utf8' }).split('\t')[0]);
}

/** A bare repository with `commits` commits, each rewriting one of 50 files with 16 KiB of fresh bytes. */
function generateHistory(barePath: string, commits: number): { tip: string } {
  git('/', ['init', '-q', '--bare', '--initial-branch', 'main', barePath]);
  const chunks: Buffer[] = [];
  for (let i = 1; i <= commits; i++) {
    const content = randomBytes(12288).toString('base64');
    const message = `change ${i}`;
    chunks.push(
      Buffer.from(
        [
          'commit refs/heads/main',
          `mark :${i}`,
          `committer bench <bench@example.com> ${1_700_000_000 + i} +0000`,
          `data ${Buffer.byteLength(message)}`,
          message,
          ...(i > 1 ? [`from :${i - 1}`] : []),
          `M 100644 inline src/file-${i % 50}.txt`,
          `data ${Buffer.byteLength(content)}`,
          content,
          '',
        ].join('\n'),
      ),
    );
  }
  execFileSync('git', ['fast-import', '--quiet'], { cwd: barePath, input: Buffer.concat(chunks) });
  git(barePath, ['gc', '-q']);
  return { tip: git(barePath, ['rev-parse', 'main']).trim() };
}

async function main(): Promise<void> {
  const unavailable = e2eUnavailableReason();
  if (unavailable) {
    process.stderr.write(`bench/build.ts cannot run here: ${unavailable}\n`);
    process.exit(1);
  }
  const world = await startBuildWorld('bench-app');
  try {
    const repo = createSampleRepository(join(world.dir, 'git'), 'version 1\nline two\n');
    writeFileSync(join(repo.workPath, 'Dockerfile'), SAMPLE_DOCKERFILE_WITH_DEPENDENCIES);
    const first = repo.pushAppChange('version 1\nline two\n ', 'Bench Dockerfile');
    const second = repo.pushAppChange('version 2\nline two\n ', 'One-line change');
    const env = (commit: string) =>
      localBuildEnv(
        world,
        { commitSha: commit, clonePath: repo.barePath, deliveryId: `bench-${commit}` },
        {
          BUILD_SECRET_IDS: 'npm_token',
          BUILD_SECRET_0: 'bench-token',
          BUILDER: 'classic',
        },
      );

    const timedBuild = async (commit: string) => {
      const started = performance.now();
      const result = await runLocalBuild(env(commit));
      const elapsed = performance.now() - started;
      if (!result.succeeded) throw new Error(`build of ${commit} failed:\n${result.log.join('\n')}`);
      const steps = new Set(result.log.filter((line) => /^#\d+ \[\d+\/\d+\] /.test(line))).size;
      const phases = result.phases.map((p) => `${p.name} ${seconds(p.durationMs)}`).join(', ');
      return { elapsed, cached: cachedSteps(result.log).length, steps, phases };
    };

    const cold = await timedBuild(first);
    world.dockerd.docker(['system', 'prune', '--all', '--force']);
    world.dockerd.docker(['builder', 'prune', '--all', '--force']);
    const warm = await timedBuild(second);

    const history = join(world.dir, 'history.git');
    const { tip } = generateHistory(history, HISTORY_COMMITS);
    const sshEnv = {
      ...process.env,
      GIT_SSH_KEY: world.deployKey.privateKey,
      GIT_KNOWN_HOSTS: world.sshd.knownHostsLine,
      CLONE_URL: world.sshd.cloneUrl(history),
      COMMIT_SHA: tip,
      GIT_REF: 'refs/heads/main',
      TMPDIR: world.dir,
    };
    const timedShell = (script: string) => {
      const started = performance.now();
      const result = spawnSync('/bin/bash', ['-c', `source "${SCRIPT}"\nstart_ssh\n${script}\nstop_ssh`], {
        env: sshEnv,
        encoding: 'utf8',
      });
      if (result.status !== 0) throw new Error(`${script} failed: ${result.stderr}`);
      return performance.now() - started;
    };
    mkdirSync(join(world.dir, 'fetches'));
    const shallowDir = join(world.dir, 'fetches', 'shallow');
    const fullDir = join(world.dir, 'fetches', 'full');
    // The fixed cost both share: the agent and one SSH connection that runs nothing.
    const connectionMs = timedShell(
      `$GIT_SSH_COMMAND -p ${world.sshd.port} ${world.sshd.user}@127.0.0.1 true`,
    );
    const shallowMs = timedShell(`fetch_commit "${shallowDir}" 2>/dev/null`);
    const fullMs = timedShell(`git clone -q "$CLONE_URL" "${fullDir}"`);
    const shallowBytes = directoryBytes(join(shallowDir, '.git'));
    const fullBytes = directoryBytes(join(fullDir, '.git'));

    const rows: [string, string, string, string][] = [
      ['image build', 'cold (empty cache)', 'rebuild, one line changed', ''],
      [
        '  time',
        seconds(cold.elapsed),
        seconds(warm.elapsed),
        `${(warm.elapsed / cold.elapsed).toFixed(2)}x`,
      ],
      ['  Dockerfile steps from cache', `${cold.cached}/${cold.steps}`, `${warm.cached}/${warm.steps}`, ''],
      [`fetch, ${HISTORY_COMMITS} commits`, 'full git clone', 'shallow fetch of the SHA', ''],
      ['  time', seconds(fullMs), seconds(shallowMs), `${(shallowMs / fullMs).toFixed(2)}x`],
      [
        `  time beyond one connection (${seconds(connectionMs)})`,
        seconds(fullMs - connectionMs),
        seconds(shallowMs - connectionMs),
        `${((shallowMs - connectionMs) / (fullMs - connectionMs)).toFixed(2)}x`,
      ],
      [
        '  bytes in .git',
        `${(fullBytes / 1024).toFixed(0)} KiB`,
        `${(shallowBytes / 1024).toFixed(0)} KiB`,
        `${(shallowBytes / fullBytes).toFixed(2)}x`,
      ],
    ];
    process.stdout.write('\nbench/build.ts: local end-to-end setting (sshd, docker-registry, dockerd vfs)\n');
    for (const row of rows) {
      process.stdout.write(`${row[0].padEnd(40)}${row[1].padEnd(22)}${row[2].padEnd(28)}${row[3]}\n`);
    }
    process.stdout.write(`phases, cold:    ${cold.phases}\nphases, rebuild: ${warm.phases}\n`);
    process.stdout.write('aims: rebuild <= 0.30x cold; shallow fetch <= 0.20x full clone\n');
  } finally {
    await world.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
