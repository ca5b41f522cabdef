import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TOOL_PATHS } from '../../local/daemons';
import { fetchImageManifest, summarizeUploads, type UploadSummary } from '../../local/registry-uploads';
import { createSampleRepository, type SampleRepository } from '../../local/sample-repository';
import {
  type BuildWorld,
  cachedSteps,
  e2eUnavailableReason,
  executedSteps,
  localBuildEnv,
  runLocalBuild,
  startBuildWorld,
} from './e2e-environment';

/**
 * The whole build on this machine, no AWS: a Git repository served by sshd (real key pair, pinned
 * host key), Debian's docker-registry, Debian's Docker engine, and buildspec.yml run phase by phase
 * as CodeBuild runs it. Two pushes in a row; the build is asked for the first, which is no longer
 * the branch tip.
 */

const unavailable = e2eUnavailableReason();
if (unavailable && process.env.CI) {
  test('the end-to-end build has its tools (CI installs them in .ci/run)', () => {
    throw new Error(`end-to-end build cannot run in CI: ${unavailable}`);
  });
} else if (unavailable) {
  process.stderr.write(
    `\n!!!!!!!!!!\n!!! SKIPPED: end-to-end image build (test/build/image-build.e2e.test.ts): ${unavailable}\n!!!!!!!!!!\n\n`,
  );
}
const describeE2e = unavailable ? describe.skip : describe;

const NPM_TOKEN = 'npm_e2eSecretToken_9f3c1d7a2b';
const TASKDEF_TEMPLATE = JSON.stringify({
  family: 'shop-api',
  containerDefinitions: [{ name: 'app', image: '<IMAGE1_NAME>' }],
});
const APPSPEC_TEMPLATE = 'version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n';

describeE2e('GIVEN a repository pushed twice in a row over SSH', () => {
  let world: BuildWorld;
  let repo: SampleRepository;
  let first: string;
  let second: string;
  let env: (commit: string, delivery: string) => Record<string, string>;

  beforeAll(async () => {
    world = await startBuildWorld('shop-api');
    const sample = createSampleRepository(join(world.dir, 'git'), 'version 1\nline two\n');
    repo = sample;
    first = sample.firstCommit;
    second = repo.pushAppChange('version 2\nline two\n', 'One-line change');
    env = (commit, delivery) =>
      localBuildEnv(
        world,
        { commitSha: commit, clonePath: repo.barePath, deliveryId: delivery },
        {
          BUILD_SECRET_IDS: 'npm_token',
          BUILD_SECRET_0: NPM_TOKEN,
          TASKDEF_TEMPLATE,
          APPSPEC_TEMPLATE,
          BUILDER: 'classic',
        },
      );
  }, 180_000);

  afterAll(async () => {
    await world?.stop();
  }, 120_000);

  const skopeo = (args: readonly string[]) =>
    execFileSync(TOOL_PATHS.skopeo, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const inspect = (tag: string) =>
    JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${world.imageRepositoryUri}:${tag}`])) as {
      Digest: string;
      Labels: Record<string, string>;
    };
  const rawManifest = (tag: string) =>
    skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${world.imageRepositoryUri}:${tag}`]);

  describe('WHEN the build of the first push (no longer the tip) runs', () => {
    let log: string[];
    let succeeded: boolean;

    beforeAll(async () => {
      const result = await runLocalBuild(env(first, 'delivery-1'));
      log = [...result.log];
      succeeded = result.succeeded;
      if (!succeeded) process.stderr.write(`${log.join('\n')}\n`);
    }, 300_000);

    test('THEN every phase succeeds', () => {
      expect(succeeded).toBe(true);
    });

    test('THEN the registry holds that commit under its full and its 12-character SHA, one image', () => {
      expect(first).not.toBe(second);
      const full = inspect(first);
      const short = inspect(first.slice(0, 12));
      expect(short.Digest).toBe(full.Digest);
      expect(full.Labels['org.opencontainers.image.revision']).toBe(first);
      expect(full.Labels['org.opencontainers.image.source']).toBe(world.sshd.cloneUrl(repo.barePath));
    });

    test('THEN exactly the first commit was fetched, and the image holds its file, not the tip’s', () => {
      expect(log).toContain(`pushline: fetched ${first} by id (shallow)`);
      const files = saveImage(`${world.imageRepositoryUri}:${first}`, 'first');
      expect(files.fileContent('app.txt')).toBe('version 1\nline two\n');
    });

    test('THEN neither the SSH key nor the --secret token is in any layer or the log, though both were mounted', () => {
      const image = saveImage(`${world.imageRepositoryUri}:${first}`, 'secrets');
      const keyBody = world.deployKey.privateKey.split('\n').filter((l) => l && !l.startsWith('-----'));
      expect(image.layers.length).toBeGreaterThanOrEqual(3);
      for (const layer of [...image.layers, image.config, image.whole]) {
        expect(layer.includes(NPM_TOKEN)).toBe(false);
        for (const line of keyBody) expect(layer.includes(line)).toBe(false);
      }
      expect(image.fileContent('secret-length').trim()).toBe(String(NPM_TOKEN.length));
      expect(image.fileContent('ssh-agent').trim()).toBe('agent-forwarded');
      expect(log.join('\n')).not.toContain(NPM_TOKEN);
      for (const line of keyBody) expect(log.join('\n')).not.toContain(line);
    });

    test('THEN the artifact zip holds imageDetail.json and the deploy templates verbatim', () => {
      const zip = join(world.dir, 'artifacts', 'artifacts/shop-api/deploy.zip');
      const unzip = (name: string) => execFileSync(TOOL_PATHS.unzip, ['-p', zip, name], { encoding: 'utf8' });
      expect(JSON.parse(unzip('imageDetail.json'))).toEqual({
        ImageURI: `${world.imageRepositoryUri}:${first}`,
      });
      expect(unzip('taskdef.json')).toBe(TASKDEF_TEMPLATE);
      expect(unzip('appspec.yaml')).toBe(APPSPEC_TEMPLATE);
    });

    describe('AND WHEN the second push (one line changed) builds on a fresh engine, then a third on another', () => {
      const rebuilds: { commit: string; log: string[]; uploads: UploadSummary }[] = [];

      beforeAll(async () => {
        const third = repo.pushAppChange('version 3\nline two\n', 'Another one-line change');
        // Each build on an engine with an empty data root, as on a new CodeBuild host: whatever it
        // reuses comes from the registry. The third build reuses the cache the second one pushed.
        for (const [commit, delivery] of [
          [second, 'delivery-2'],
          [third, 'delivery-3'],
        ] as const) {
          await world.freshDockerd();
          world.registryProxy.reset();
          const result = await runLocalBuild(env(commit, delivery));
          if (!result.succeeded) process.stderr.write(`${result.log.join('\n')}\n`);
          expect(result.succeeded).toBe(true);
          rebuilds.push({
            commit,
            log: [...result.log],
            uploads: summarizeUploads(world.registryProxy.requests()),
          });
        }
      }, 300_000);

      test('THEN each rebuild takes the unchanged layers from the registry cache and re-executes only the changed file', () => {
        expect(rebuilds).toHaveLength(2);
        for (const rebuild of rebuilds) {
          expect(cachedSteps(rebuild.log)).toEqual(
            expect.arrayContaining([
              expect.stringContaining('COPY busybox'),
              expect.stringContaining('--install'),
              expect.stringContaining('--mount=type=secret'),
              expect.stringContaining('--mount=type=ssh'),
            ]),
          );
          expect(executedSteps(rebuild.log)).toEqual([expect.stringContaining('COPY app.txt')]);
          expect(inspect(rebuild.commit).Labels['org.opencontainers.image.revision']).toBe(rebuild.commit);
        }
      });

      test('THEN each rebuild uploads only its changed layer and config, and one manifest per tag', async () => {
        let previous = await fetchImageManifest(world.registry.address, 'shop-api', first);
        for (const rebuild of rebuilds) {
          const pushed = await fetchImageManifest(world.registry.address, 'shop-api', rebuild.commit);
          const before = new Set(previous.layers.map((layer) => layer.digest));
          const changed = pushed.layers.filter((layer) => !before.has(layer.digest));
          expect(changed).toHaveLength(1);
          expect(pushed.layers.length - changed.length).toBeGreaterThanOrEqual(4);
          expect(rebuild.uploads.uploadedDigests.filter((digest) => before.has(digest))).toEqual([]);
          expect(rebuild.uploads.blobBytes).toBe(
            changed.reduce((sum, layer) => sum + layer.size, 0) + pushed.config.size,
          );
          // :<sha>, :<short sha> and :buildcache.
          expect(rebuild.uploads.manifestPuts).toBe(3);
          expect(rebuild.uploads.manifestBytes).toBe(3 * pushed.bytes);
          previous = pushed;
        }
      });
    });

    describe('AND WHEN the first commit is built again (a redelivered webhook)', () => {
      let againLog: string[];
      let manifestBefore: string;

      beforeAll(async () => {
        manifestBefore = rawManifest(first);
        const result = await runLocalBuild(env(first, 'delivery-1-again'));
        againLog = [...result.log];
        expect(result.succeeded).toBe(true);
      }, 300_000);

      test('THEN it succeeds without building or pushing, and the image is unchanged', () => {
        const text = againLog.join('\n');
        expect(text).toContain('is already in the registry');
        expect(text).not.toMatch(/^#\d+ \[/m);
        expect(text).not.toContain('pushed ');
        expect(rawManifest(first)).toBe(manifestBefore);
      });
    });
  });

  function saveImage(ref: string, name: string) {
    const dir = join(world.dir, 'saved', name);
    mkdirSync(dir, { recursive: true });
    world.dockerd.docker(['pull', '-q', ref]);
    world.dockerd.docker(['save', '-o', join(dir, 'image.tar'), ref]);
    execFileSync('tar', ['-xf', join(dir, 'image.tar'), '-C', dir]);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
      Config: string;
      Layers: string[];
    }[];
    const entry = manifest[0];
    if (!entry)
      throw new Error(`docker save of ${ref} has no manifest entry: ${readdirSync(dir).join(', ')}`);
    const layerPaths = entry.Layers.map((layer) => join(dir, layer));
    return {
      layers: layerPaths.map((path) => readFileSync(path)),
      config: readFileSync(join(dir, entry.Config)),
      whole: readFileSync(join(dir, 'image.tar')),
      /** The file as the image's top-most layer that has it shows it. */
      fileContent(file: string): string {
        for (const path of [...layerPaths].reverse()) {
          try {
            return execFileSync('tar', ['-xOf', path, file], {
              encoding: 'utf8',
              stdio: ['ignore', 'pipe', 'ignore'],
            });
          } catch {
            // not in this layer
          }
        }
        throw new Error(`${file} is in no layer of ${ref}`);
      },
    };
  }
});
