import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fetchImageManifest, summarizeUploads } from '../local/registry-uploads';
import { createSampleRepository, git, SAMPLE_APP_FILES } from '../local/sample-repository';
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
 * 1. cold build vs rebuild after a one-line source change of an application-shaped Dockerfile
 *    (dependencies installed, then the source copied; SAMPLE_APP_DOCKERFILE), each on an engine
 *    with an empty data root (a fresh CodeBuild host), so every reused layer comes from the registry
 *    cache; the bytes each build uploads (a counting proxy in front of the registry) against the
 *    changed layers' compressed sizes in the pushed manifest, and where each build's time goes;
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

function bytes(count: number): string {
  if (count >= 1024 * 1024) return `${(count / 1024 / 1024).toFixed(1)} MiB`;
  if (count >= 1024) return `${(count / 1024).toFixed(1)} KiB`;
  return `${count} B`;
}

/**
 * Where a build's time went, from the arrival time of its log lines: each segment ends at the first
 * line matching its pattern (BuildKit's plain progress prints a step when it starts).
 */
const MILESTONES: readonly [string, RegExp][] = [
  ['check+login', /^\[Container\] Entering phase BUILD/],
  ['tag lookup+fetch', /^pushline: fetched /],
  ['cache pull', /^pushline: (pulled the layer cache|no layer cache)/],
  ['client+cache manifest+context', /^#\d+ \[\d+\/\d+\] /],
  ['steps', /^#\d+ exporting to image/],
  ['export', /^The push refers to repository/],
  ['push', /^pushline: pushed /],
];

function buildShares(lines: readonly { at: number; line: string }[], elapsed: number): string {
  const parts: string[] = [];
  let from = 0;
  for (const [name, pattern] of MILESTONES) {
    const hit = lines.find((entry) => entry.at >= from && pattern.test(entry.line));
    if (!hit) continue;
    parts.push(`${name} ${seconds(hit.at - from)} (${((100 * (hit.at - from)) / elapsed).toFixed(0)}%)`);
    from = hit.at;
  }
  parts.push(`artifact ${seconds(elapsed - from)} (${((100 * (elapsed - from)) / elapsed).toFixed(0)}%)`);
  return parts.join(', ');
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
    for (const [path, text] of Object.entries(SAMPLE_APP_FILES))
      writeFileSync(join(repo.workPath, path), text);
    const first = repo.pushAppChange('version 1\nline two\n ', 'Application-shaped Dockerfile');
    const second = repo.pushAppChange('version 2\nline two\n ', 'One-line change');
    const third = repo.pushAppChange('version 3\nline two\n ', 'Another one-line change');
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
      world.registryProxy.reset();
      const lines: { at: number; line: string }[] = [];
      const started = performance.now();
      const result = await runLocalBuild(env(commit), (line) =>
        lines.push({ at: performance.now() - started, line }),
      );
      const elapsed = performance.now() - started;
      if (!result.succeeded) throw new Error(`build of ${commit} failed:\n${result.log.join('\n')}`);
      const steps = new Set(result.log.filter((line) => /^#\d+ \[\d+\/\d+\] /.test(line))).size;
      return {
        elapsed,
        cached: cachedSteps(result.log).length,
        steps,
        shares: buildShares(lines, elapsed),
        registry: summarizeUploads(world.registryProxy.requests()),
        manifest: await fetchImageManifest(world.registry.address, 'bench-app', commit),
      };
    };

    // Every build starts on an engine with an empty data root, as each CodeBuild build starts on a
    // fresh host: a rebuild's cache comes from the registry alone. The measured rebuild is the
    // second one, whose cache a rebuild wrote: what every push after the first one sees.
    const cold = await timedBuild(first);
    const engineStartMs = await world.freshDockerd();
    const firstRebuild = await timedBuild(second);
    await world.freshDockerd();
    const warm = await timedBuild(third);

    const previousLayers = new Set(firstRebuild.manifest.layers.map((layer) => layer.digest));
    const changed = warm.manifest.layers.filter((layer) => !previousLayers.has(layer.digest));
    const changedBytes = changed.reduce((sum, layer) => sum + layer.size, 0) + warm.manifest.config.size;
    const unchangedUploaded = warm.registry.uploadedDigests.filter((digest) => previousLayers.has(digest));
    const imageBytes = warm.manifest.layers.reduce((sum, layer) => sum + layer.size, 0);

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
      [
        '  blob bytes uploaded',
        bytes(cold.registry.blobBytes),
        bytes(warm.registry.blobBytes),
        `${(warm.registry.blobBytes / cold.registry.blobBytes).toFixed(4)}x`,
      ],
      [
        '  manifest bytes uploaded',
        `${bytes(cold.registry.manifestBytes)} (${cold.registry.manifestPuts} PUTs)`,
        `${bytes(warm.registry.manifestBytes)} (${warm.registry.manifestPuts} PUTs)`,
        '',
      ],
      [
        '  blob bytes pulled (cache reused)',
        bytes(cold.registry.pulledBytes),
        bytes(warm.registry.pulledBytes),
        '',
      ],
      ['  registry requests', String(cold.registry.requests), String(warm.registry.requests), ''],
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
    process.stdout.write(
      `rebuild uploaded ${bytes(warm.registry.blobBytes)} of blobs + ${bytes(warm.registry.manifestBytes)} of manifests; ` +
        `changed layers + config per the pushed manifest: ${bytes(changedBytes)} ` +
        `(${changed.length} of ${warm.manifest.layers.length} layers; image ${bytes(imageBytes)}); ` +
        `unchanged layers uploaded: ${unchangedUploaded.length}\n`,
    );
    process.stdout.write(
      `first rebuild (cache written by the cold build): ${seconds(firstRebuild.elapsed)}, ` +
        `${firstRebuild.cached}/${firstRebuild.steps} steps from cache, ${bytes(firstRebuild.registry.blobBytes)} of blobs uploaded\n`,
    );
    process.stdout.write(`where the time goes, cold:    ${cold.shares}\n`);
    process.stdout.write(`where the time goes, rebuild: ${warm.shares}\n`);
    process.stdout.write(
      `not in either: a fresh engine's start ${seconds(engineStartMs)} (on CodeBuild, before the first phase)\n`,
    );
    process.stdout.write('aims: rebuild <= 0.30x cold; shallow fetch <= 0.20x full clone\n');
  } finally {
    await world.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
