import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildspecError, parseBuildspec, runBuildspec } from '../../local/buildspec-runner';
import { BUILDSPEC_DIR } from './e2e-environment';

/** The local runner behaves as CodeBuild does with a buildspec 0.2: phases, failures, environment. */

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pl-runner-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function runText(text: string, env: Record<string, string> = {}) {
  const path = join(dir, 'buildspec.yml');
  writeFileSync(path, text);
  return runBuildspec({ buildspecPath: path, cwd: dir, env });
}

const output = (log: readonly string[]) => log.filter((l) => !l.startsWith('[Container]'));

test('GIVEN variables in the buildspec and overrides WHEN run THEN overrides win and exports carry across phases', async () => {
  const result = await runText(
    [
      'version: 0.2',
      'env:',
      '  variables: { GREETING: from-buildspec, KEPT: buildspec-value }',
      'phases:',
      '  install:',
      '    commands:',
      '      - export LATER=exported-in-install',
      '      - mkdir sub && cd sub',
      '  build:',
      '    commands:',
      '      - echo "$GREETING $KEPT $LATER $(basename "$PWD") $CODEBUILD_SRC_DIR"',
    ].join('\n'),
    { GREETING: 'from-override' },
  );
  expect(result.succeeded).toBe(true);
  expect(output(result.log)).toEqual([`from-override buildspec-value exported-in-install sub ${dir}`]);
});

test('GIVEN a failing build phase WHEN run THEN the rest of the phase is skipped and post_build runs knowing it failed', async () => {
  const result = await runText(
    [
      'version: 0.2',
      'phases:',
      '  build:',
      '    commands:',
      '      - exit 3',
      '      - echo never',
      '  post_build:',
      '    commands:',
      '      - echo "succeeding=$CODEBUILD_BUILD_SUCCEEDING"',
    ].join('\n'),
  );
  expect(result.succeeded).toBe(false);
  expect(result.phases.map((p) => [p.name, p.status, p.exitCode])).toEqual([
    ['build', 'FAILED', 3],
    ['post_build', 'SUCCEEDED', 0],
  ]);
  expect(output(result.log)).toEqual(['succeeding=0']);
});

test('GIVEN a failing pre_build WHEN run THEN build and post_build are skipped, but its finally runs', async () => {
  const result = await runText(
    [
      'version: 0.2',
      'phases:',
      '  pre_build:',
      '    commands: [ "false" ]',
      '    finally: [ "echo cleaned up" ]',
      '  build:',
      '    commands: [ "echo building" ]',
      '  post_build:',
      '    commands: [ "echo posting" ]',
    ].join('\n'),
  );
  expect(result.phases.map((p) => p.status)).toEqual(['FAILED', 'SKIPPED', 'SKIPPED']);
  expect(output(result.log)).toEqual(['cleaned up']);
});

test('GIVEN on-failure ABORT on build WHEN the build fails THEN post_build does not run', async () => {
  const result = await runText(
    [
      'version: 0.2',
      'phases:',
      '  build:',
      '    on-failure: ABORT',
      '    commands: [ "false" ]',
      '  post_build:',
      '    commands: [ "echo posting" ]',
    ].join('\n'),
  );
  expect(result.phases.map((p) => p.status)).toEqual(['FAILED', 'SKIPPED']);
});

test('GIVEN a buildspec of another version or with an unknown phase WHEN parsed THEN the field is named', () => {
  expect(() => parseBuildspec('version: 0.1\nphases: {}\n')).toThrow(BuildspecError);
  expect(() => parseBuildspec('version: 0.2\nphases: { compile: { commands: [] } }\n')).toThrow(
    /phases.compile is not a CodeBuild phase/,
  );
});

test('GIVEN pushline’s buildspec and a build started without a commit WHEN run THEN install stops it, naming what is missing', async () => {
  const lines: string[] = [];
  const result = await runBuildspec({
    buildspecPath: join(BUILDSPEC_DIR, 'buildspec.yml'),
    cwd: BUILDSPEC_DIR,
    env: { GIT_REF: 'refs/heads/main', CLONE_URL: 'git@github.com:o/r.git', IMAGE_REPOSITORY_URI: 'r/x' },
    onLog: (line) => lines.push(line),
  });
  expect(result.succeeded).toBe(false);
  expect(result.phases.map((p) => [p.name, p.status])).toEqual([
    ['install', 'FAILED'],
    ['pre_build', 'SKIPPED'],
    ['build', 'SKIPPED'],
    ['post_build', 'SKIPPED'],
  ]);
  expect(lines).toContain("pushline: error: COMMIT_SHA must be the full 40-hex commit id, got ''");
  expect(lines).toEqual(result.log);
});
