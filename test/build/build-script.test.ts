import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missingTools, TOOL_PATHS } from '../../local/daemons';
import { git } from '../../local/sample-repository';
import { BUILDSPEC_DIR } from './e2e-environment';

/**
 * The functions of buildspec/scripts/pushline-build.sh one by one, with no Docker and no network:
 * the script is sourced in bash and each function is called with the environment CodeBuild would give.
 */

const SCRIPT = join(BUILDSPEC_DIR, 'scripts', 'pushline-build.sh');
const SHA = 'a'.repeat(40);
const REPO_URI = '123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/shop-api';

const VALID_ENV: Record<string, string> = {
  COMMIT_SHA: SHA,
  GIT_REF: 'refs/heads/main',
  CLONE_URL: 'git@github.com:example/shop-api.git',
  IMAGE_REPOSITORY_URI: REPO_URI,
  ARTIFACT_BUCKET: 'artifact-bucket',
  ARTIFACT_KEY: 'artifacts/shop-api/deploy.zip',
};

let scratch: string;
beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), 'pl-script-'));
});
afterEach(() => rmSync(scratch, { recursive: true, force: true }));

function run(call: string, env: Record<string, string> = {}) {
  const result = spawnSync('/bin/bash', ['-c', `source "${SCRIPT}"\n${call}`], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: scratch, TMPDIR: scratch, ...env },
    encoding: 'utf8',
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('validate_inputs', () => {
  test('GIVEN every input a build needs WHEN checked THEN it passes', () => {
    expect(run('validate_inputs', VALID_ENV)).toMatchObject({ status: 0, stderr: '' });
  });

  test('GIVEN a short SHA, a bare branch name and no artifact bucket WHEN checked THEN each mistake is named at once', () => {
    const { status, stderr } = run('validate_inputs', {
      ...VALID_ENV,
      COMMIT_SHA: 'abc1234',
      GIT_REF: 'main',
      ARTIFACT_BUCKET: '',
    });
    expect(status).toBe(1);
    expect(stderr).toContain("COMMIT_SHA must be the full 40-hex commit id, got 'abc1234'");
    expect(stderr).toContain("GIT_REF must be refs/heads/<branch> or refs/tags/<tag>, got 'main'");
    expect(stderr).toContain('ARTIFACT_BUCKET is empty (or set ARTIFACT_DIR');
  });

  test('GIVEN a task definition template without an appspec WHEN checked THEN it fails, naming both', () => {
    const { status, stderr } = run('validate_inputs', { ...VALID_ENV, TASKDEF_TEMPLATE: '{}' });
    expect(status).toBe(1);
    expect(stderr).toContain('TASKDEF_TEMPLATE and APPSPEC_TEMPLATE come together');
  });

  test('GIVEN an image repository URI with a tag WHEN checked THEN it fails', () => {
    const { status, stderr } = run('validate_inputs', {
      ...VALID_ENV,
      IMAGE_REPOSITORY_URI: `${REPO_URI}:latest`,
    });
    expect(status).toBe(1);
    expect(stderr).toContain('must not carry a tag');
  });

  test('GIVEN a local registry with a port WHEN checked THEN the port is not mistaken for a tag', () => {
    expect(
      run('validate_inputs', { ...VALID_ENV, IMAGE_REPOSITORY_URI: '127.0.0.1:5000/shop-api' }).status,
    ).toBe(0);
  });
});

test('GIVEN a commit SHA WHEN shortened THEN it is the first 12 characters', () => {
  expect(run('short_sha 0123456789abcdef0123456789abcdef01234567').stdout.trim()).toBe('0123456789ab');
});

test('GIVEN REGISTRY_LOGIN=skip WHEN logging in THEN no aws call is made', () => {
  const result = run('registry_login', { ...VALID_ENV, REGISTRY_LOGIN: 'skip', PATH: '/nonexistent' });
  expect(result.status).toBe(0);
  expect(result.stderr).toContain('registry login skipped');
});

describe('compose_build_command', () => {
  const composed = (env: Record<string, string>) =>
    run(
      `mkdir -p "$TMPDIR/secrets"; compose_build_command /src "$TMPDIR/secrets"; printf '%s\\n' "\${BUILD_COMMAND[@]}"`,
      { ...VALID_ENV, BUILD_SECRET_IDS: 'npm_token', BUILD_SECRET_0: 'npm_SuperSecret', ...env },
    );

  test('GIVEN a client with buildx and two platforms WHEN composed THEN it builds one manifest list with the registry cache and pushes both tags', () => {
    const { status, stdout, stderr } = composed({
      BUILDER: 'buildx',
      DOCKER_PLATFORMS: 'linux/amd64,linux/arm64',
      CACHE_TAG: 'buildcache',
    });
    expect(stderr).toBe('');
    expect(status).toBe(0);
    const args = stdout.trim().split('\n');
    expect(args.slice(0, 3)).toEqual(['docker', 'buildx', 'build']);
    expect(args).toEqual(
      expect.arrayContaining([
        '--platform',
        'linux/amd64,linux/arm64',
        '--cache-from',
        `type=registry,ref=${REPO_URI}:buildcache`,
        '--cache-to',
        `type=registry,ref=${REPO_URI}:buildcache,mode=max,image-manifest=true,oci-mediatypes=true`,
        '--push',
        '--ssh',
        'default',
        '--label',
        `org.opencontainers.image.revision=${SHA}`,
      ]),
    );
    const tags = args.flatMap((arg, i) => (args[i - 1] === '--tag' ? [arg] : []));
    expect(tags).toEqual([`${REPO_URI}:${SHA}`, `${REPO_URI}:${SHA.slice(0, 12)}`]);
    expect(args.at(-1)).toBe('/src/.');
  });

  test('GIVEN buildx and one platform WHEN composed THEN the Docker engine’s own BuildKit builds, with no builder image to pull, and the image is pushed as the inline cache', () => {
    const { status, stdout } = composed({ BUILDER: 'buildx', DOCKER_PLATFORMS: 'linux/amd64' });
    expect(status).toBe(0);
    const args = stdout.trim().split('\n');
    expect(args.slice(0, 5)).toEqual(['docker', 'buildx', 'build', '--builder', 'default']);
    expect(args).toEqual(
      expect.arrayContaining(['--cache-to', 'type=inline', '--tag', `${REPO_URI}:buildcache`, '--push']),
    );
    expect(args.join(' ')).not.toContain('mode=max');
  });

  test('GIVEN buildx, one platform and a BuildKit image through the pull-through cache WHEN composed THEN the BuildKit container keeps the registry cache', () => {
    const { stdout } = composed({
      BUILDER: 'buildx',
      BUILDKIT_IMAGE:
        '111122223333.dkr.ecr.ap-northeast-1.amazonaws.com/docker-hub/moby/buildkit:buildx-stable-1',
    });
    const args = stdout.trim().split('\n');
    expect(args.slice(0, 5)).toEqual(['docker', 'buildx', 'build', '--builder', 'pushline']);
    expect(args.join(' ')).toContain('mode=max');
  });

  test('GIVEN the classic client WHEN composed THEN it uses the inline cache and tags the cache image', () => {
    const { status, stdout } = composed({ BUILDER: 'classic' });
    expect(status).toBe(0);
    const args = stdout.trim().split('\n');
    expect(args.slice(0, 2)).toEqual(['docker', 'build']);
    expect(args).toEqual(
      expect.arrayContaining(['BUILDKIT_INLINE_CACHE=1', '--cache-from', `${REPO_URI}:buildcache`]),
    );
    expect(args).not.toContain('--push');
  });

  test('GIVEN a build secret WHEN composed THEN it is mounted from a 0600 file and its value is in no argument', () => {
    const { stdout } = composed({ BUILDER: 'classic' });
    const args = stdout.trim().split('\n');
    const secretArg = args[args.indexOf('--secret') + 1] ?? '';
    expect(secretArg).toMatch(/^id=npm_token,src=.*\/secrets\/build-secret-0$/);
    expect(stdout).not.toContain('npm_SuperSecret');
    expect(args.filter((a) => a.startsWith('--build-arg') || a.includes('='))).not.toContain(
      'npm_SuperSecret',
    );
  });

  test('GIVEN build args, a target and a Dockerfile path WHEN composed THEN each reaches the build', () => {
    const { stdout } = composed({
      BUILDER: 'classic',
      DOCKER_CONTEXT: 'docker',
      DOCKERFILE: 'docker/Dockerfile.prod',
      DOCKER_TARGET: 'runtime',
      DOCKER_BUILD_ARGS: 'NODE_ENV=production\nAPP_PORT=80',
      PULL_THROUGH_REGISTRY: '123456789012.dkr.ecr.ap-northeast-1.amazonaws.com',
    });
    const args = stdout.trim().split('\n');
    expect(args).toEqual(
      expect.arrayContaining([
        '--file',
        '/src/docker/Dockerfile.prod',
        '--target',
        'runtime',
        'NODE_ENV=production',
        'APP_PORT=80',
        'PULL_THROUGH_REGISTRY=123456789012.dkr.ecr.ap-northeast-1.amazonaws.com',
      ]),
    );
    expect(args.at(-1)).toBe('/src/docker');
  });

  test('GIVEN two platforms but no buildx WHEN composed THEN it fails saying buildx is needed', () => {
    const { status, stderr } = composed({ BUILDER: 'classic', DOCKER_PLATFORMS: 'linux/amd64,linux/arm64' });
    expect(status).not.toBe(0);
    expect(stderr).toContain('needs docker buildx');
  });

  test('GIVEN an empty build secret WHEN composed THEN it fails naming the secret', () => {
    const { status, stderr } = composed({ BUILDER: 'classic', BUILD_SECRET_0: '' });
    expect(status).not.toBe(0);
    expect(stderr).toContain("build secret 'npm_token' (BUILD_SECRET_0) is empty");
  });
});

describe('ensure_buildx_builder and ensure_emulation', () => {
  /**
   * A docker client that records its arguments and knows no builder yet, on a host whose `uname -m`
   * says `machine` (CodeBuild's x86 image says x86_64, its ARM image aarch64).
   */
  const withRecordingDocker = (env: Record<string, string>, machine = 'x86_64') => {
    const calls = join(scratch, 'docker-calls');
    const docker = join(scratch, 'docker');
    const bin = join(scratch, 'bin');
    mkdirSync(bin);
    writeFileSync(
      docker,
      `#!/bin/bash\necho "$*" >>"${calls}"\n[[ "$1 $2" == "buildx inspect" ]] && exit 1\nexit 0\n`,
      { mode: 0o755 },
    );
    writeFileSync(join(bin, 'uname'), `#!/bin/sh\necho ${machine}\n`, { mode: 0o755 });
    const result = run('ensure_buildx_builder && ensure_emulation', {
      ...VALID_ENV,
      DOCKER_CLI: docker,
      PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      ...env,
    });
    return { ...result, calls: existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : [] };
  };
  const QEMU_FROM_ECR_PUBLIC =
    'run --privileged --rm public.ecr.aws/eks-distro-build-tooling/binfmt-misc:qemu-v7.0.0 --install all';

  test("GIVEN one platform, the host's WHEN the build is prepared THEN nothing is created or pulled", () => {
    const { status, calls } = withRecordingDocker({ DOCKER_PLATFORMS: 'linux/amd64' });
    expect(status).toBe(0);
    expect(calls).toEqual([]);
  });

  test('GIVEN no platforms WHEN the build is prepared THEN it builds for the host, with no QEMU', () => {
    const { status, calls } = withRecordingDocker({});
    expect(status).toBe(0);
    expect(calls).toEqual([]);
  });

  test('GIVEN linux/arm64 alone on an x86 host WHEN the build is prepared THEN QEMU is registered, so RUN steps can run', () => {
    const { status, calls, stderr } = withRecordingDocker({ DOCKER_PLATFORMS: 'linux/arm64' });
    expect(status).toBe(0);
    expect(calls).toEqual([QEMU_FROM_ECR_PUBLIC]);
    expect(stderr).toContain('registering QEMU for linux/arm64 on this amd64 host');
  });

  test('GIVEN linux/arm64 alone on a Graviton host (build.arch: arm64) WHEN the build is prepared THEN it is native: no QEMU', () => {
    const { status, calls } = withRecordingDocker({ DOCKER_PLATFORMS: 'linux/arm64' }, 'aarch64');
    expect(status).toBe(0);
    expect(calls).toEqual([]);
  });

  test('GIVEN two platforms WHEN the build is prepared THEN QEMU comes from ECR Public, and the Docker Hub pull of BuildKit is named in the log', () => {
    const { status, calls, stderr } = withRecordingDocker({ DOCKER_PLATFORMS: 'linux/amd64,linux/arm64' });
    expect(status).toBe(0);
    expect(calls).toContain('buildx create --name pushline --driver docker-container');
    expect(calls).toContain(QEMU_FROM_ECR_PUBLIC);
    expect(stderr).toContain('moby/buildkit) comes from Docker Hub without a login');
  });

  test('GIVEN two platforms and pull-through images WHEN the build is prepared THEN both images come through the cache', () => {
    const registry = '111122223333.dkr.ecr.ap-northeast-1.amazonaws.com/docker-hub';
    const { calls, stderr } = withRecordingDocker({
      DOCKER_PLATFORMS: 'linux/amd64,linux/arm64',
      BUILDKIT_IMAGE: `${registry}/moby/buildkit:buildx-stable-1`,
      BINFMT_IMAGE: `${registry}/tonistiigi/binfmt:latest`,
    });
    expect(calls).toContain(
      `buildx create --name pushline --driver docker-container --driver-opt image=${registry}/moby/buildkit:buildx-stable-1`,
    );
    expect(calls).toContain(`run --privileged --rm ${registry}/tonistiigi/binfmt:latest --install all`);
    expect(stderr).not.toContain('Docker Hub');
  });
});

test('GIVEN a build secret WHEN written THEN its file is readable by its owner only', () => {
  const { status } = run(`mkdir -p "$TMPDIR/s"; secret_flags "$TMPDIR/s" >/dev/null`, {
    BUILD_SECRET_IDS: 'npm_token',
    BUILD_SECRET_0: 'token-value',
  });
  expect(status).toBe(0);
  const file = join(scratch, 's', 'build-secret-0');
  expect(readFileSync(file, 'utf8')).toBe('token-value');
  expect(statSync(file).mode & 0o777).toBe(0o600);
});

describe('start_ssh / stop_ssh', () => {
  const keyPair = () => {
    execFileSync(TOOL_PATHS['ssh-keygen'], ['-q', '-t', 'ed25519', '-N', '', '-f', join(scratch, 'k')]);
    return readFileSync(join(scratch, 'k'), 'utf8');
  };

  test('GIVEN a deploy key WHEN ssh starts THEN only the agent holds it, host keys are pinned, and stop removes everything', () => {
    const { status, stdout, stderr } = run(
      [
        'start_ssh',
        'echo "dir=$SSH_DIR"',
        'ls "$SSH_DIR"',
        'ssh-add -l | wc -l',
        'echo "cmd=$GIT_SSH_COMMAND"',
        'pid=$SSH_AGENT_PID; dir=$SSH_DIR',
        'stop_ssh',
        // An exited agent may linger as a zombie until something reaps it; it holds no key then.
        'state=$(cut -d" " -f3 /proc/$pid/stat 2>/dev/null); [[ -z $state || $state == Z ]] && echo agent-gone || echo agent-alive',
        'test -e "$dir" && echo dir-left || echo dir-gone',
      ].join('\n'),
      { GIT_SSH_KEY: keyPair(), GIT_KNOWN_HOSTS: 'github.com ssh-ed25519 AAAAC3Nza' },
    );
    expect(stderr).toBe('');
    expect(status).toBe(0);
    expect(stdout).not.toContain('deploy-key');
    expect(stdout).toContain('known_hosts');
    expect(stdout).toMatch(/^1$/m);
    expect(stdout).toContain('StrictHostKeyChecking=yes');
    expect(stdout).toContain('GlobalKnownHostsFile=/dev/null');
    expect(stdout).toContain('agent-gone');
    expect(stdout).toContain('dir-gone');
  });

  test('GIVEN a secret that still holds the generated placeholder WHEN ssh starts THEN it says what to put there', () => {
    const { status, stderr } = run('start_ssh', {
      GIT_SSH_KEY: 'x7Gq!placeholder-from-secrets-manager',
      GIT_KNOWN_HOSTS: 'github.com ssh-ed25519 AAAAC3Nza',
    });
    expect(status).toBe(1);
    expect(stderr).toContain('GIT_SSH_KEY is not an unencrypted SSH private key');
    expect(existsSync(join(scratch, 'deploy-key'))).toBe(false);
  });

  test('GIVEN no pinned host key WHEN ssh starts THEN it refuses instead of trusting on first use', () => {
    const { status, stderr } = run('start_ssh', { GIT_SSH_KEY: keyPair(), GIT_KNOWN_HOSTS: '' });
    expect(status).toBe(1);
    expect(stderr).toContain('no pinned host key');
  });
});

describe('fetch_commit', () => {
  let origin: string;
  let first: string;
  let tip: string;

  beforeEach(() => {
    if (missingTools(['git']).length > 0) throw new Error('git is not installed: apt-get install -y git');
    origin = join(scratch, 'origin.git');
    const work = join(scratch, 'work');
    git(scratch, ['init', '-q', '--bare', '--initial-branch', 'main', origin]);
    git(scratch, ['init', '-q', '--initial-branch', 'main', work]);
    git(work, ['config', 'user.email', 't@example.com']);
    git(work, ['config', 'user.name', 't']);
    for (const text of ['one', 'two', 'three']) {
      writeFileSync(join(work, 'file.txt'), text);
      git(work, ['add', '.']);
      git(work, ['commit', '-q', '-m', text]);
      if (text === 'one') first = git(work, ['rev-parse', 'HEAD']).trim();
    }
    tip = git(work, ['rev-parse', 'HEAD']).trim();
    git(work, ['push', '-q', origin, 'HEAD:refs/heads/main']);
  });

  const fetch = (sha: string, extraEnv: Record<string, string> = {}) =>
    run(
      `fetch_commit "$TMPDIR/checkout"; git -C "$TMPDIR/checkout" rev-parse HEAD; cat "$TMPDIR/checkout/file.txt"`,
      {
        COMMIT_SHA: sha,
        GIT_REF: 'refs/heads/main',
        CLONE_URL: `file://${origin}`,
        ...extraEnv,
      },
    );

  test('GIVEN a commit behind the tip WHEN fetched by id THEN exactly that commit is checked out, shallow', () => {
    const { status, stdout, stderr } = fetch(first);
    expect(stderr).toContain(`fetched ${first} by id`);
    expect(status).toBe(0);
    expect(stdout).toBe(`${first}\none`);
    expect(git(join(scratch, 'checkout'), ['rev-list', '--count', 'HEAD']).trim()).toBe('1');
    expect(tip).not.toBe(first);
  });

  test('GIVEN a server that refuses fetch by id WHEN fetched THEN the ref is fetched and the commit checked out', () => {
    const refusing = {
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'protocol.version',
      GIT_CONFIG_VALUE_0: '0',
    };
    const { status, stdout, stderr } = fetch(first, refusing);
    expect(stderr).toContain('did not hand out');
    expect(status).toBe(0);
    expect(stdout).toBe(`${first}\none`);
  });

  test('GIVEN a commit that is no longer on the branch (force push) WHEN fetched THEN it fails saying so', () => {
    const gone = 'b'.repeat(40);
    const { status, stderr } = fetch(gone, {
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'protocol.version',
      GIT_CONFIG_VALUE_0: '0',
    });
    expect(status).toBe(1);
    expect(stderr).toContain(`commit ${gone} is no longer in refs/heads/main`);
    expect(stderr).toContain('force-pushed');
  });
});

describe('write_artifact / upload_artifact', () => {
  const unzipList = (zip: string) =>
    execFileSync(TOOL_PATHS.unzip, ['-Z1', zip], { encoding: 'utf8' }).trim().split('\n').sort();

  test('GIVEN a repository without deploy WHEN the artifact is made THEN the zip holds imageDetail.json only, at ARTIFACT_DIR', () => {
    const { status, stderr } = run('upload_artifact "$(write_artifact)"', {
      ...VALID_ENV,
      PUSHLINE_WORK_DIR: join(scratch, 'work'),
      ARTIFACT_DIR: join(scratch, 'out'),
    });
    expect(status).toBe(0);
    expect(stderr).toContain('ARTIFACT_DIR');
    const zip = join(scratch, 'out', 'artifacts/shop-api/deploy.zip');
    expect(unzipList(zip)).toEqual(['imageDetail.json']);
    const detail = execFileSync(TOOL_PATHS.unzip, ['-p', zip, 'imageDetail.json'], { encoding: 'utf8' });
    expect(JSON.parse(detail)).toEqual({ ImageURI: `${REPO_URI}:${SHA}` });
  });

  test('GIVEN deploy templates WHEN the artifact is made THEN they are in the zip verbatim', () => {
    const taskdef = '{"family":"shop-api","containerDefinitions":[{"image":"<IMAGE1_NAME>"}]}';
    const appspec = 'version: 0.0\n';
    const { status, stdout } = run('write_artifact', {
      ...VALID_ENV,
      PUSHLINE_WORK_DIR: join(scratch, 'work'),
      TASKDEF_TEMPLATE: taskdef,
      APPSPEC_TEMPLATE: appspec,
    });
    expect(status).toBe(0);
    const zip = stdout.trim();
    expect(unzipList(zip)).toEqual(['appspec.yaml', 'imageDetail.json', 'taskdef.json']);
    expect(execFileSync(TOOL_PATHS.unzip, ['-p', zip, 'taskdef.json'], { encoding: 'utf8' })).toBe(taskdef);
  });

  test('GIVEN deploy environments staging and production WHEN the artifact is made THEN each gets its own templates next to the one imageDetail.json', () => {
    const environments = {
      DEPLOY_ENVIRONMENTS: 'staging production',
      TASKDEF_TEMPLATE_0: '{"family":"shop-api-staging"}',
      APPSPEC_TEMPLATE_0: 'version: 0.0\n# staging\n',
      TASKDEF_TEMPLATE_1: '{"family":"shop-api-production"}',
      APPSPEC_TEMPLATE_1: 'version: 0.0\n# production\n',
    };
    expect(run('validate_inputs', { ...VALID_ENV, ...environments })).toMatchObject({ status: 0 });
    const { status, stdout } = run('write_artifact', {
      ...VALID_ENV,
      ...environments,
      PUSHLINE_WORK_DIR: join(scratch, 'work'),
    });
    expect(status).toBe(0);
    const zip = stdout.trim();
    expect(unzipList(zip)).toEqual([
      'appspec-production.yaml',
      'appspec-staging.yaml',
      'imageDetail.json',
      'taskdef-production.json',
      'taskdef-staging.json',
    ]);
    const read = (file: string) => execFileSync(TOOL_PATHS.unzip, ['-p', zip, file], { encoding: 'utf8' });
    expect(read('taskdef-production.json')).toBe(environments.TASKDEF_TEMPLATE_1);
    expect(read('appspec-staging.yaml')).toBe(environments.APPSPEC_TEMPLATE_0);
  });

  test('GIVEN an environment whose templates are missing WHEN checked THEN the check names the variables and the environment', () => {
    const { status, stderr } = run('validate_inputs', {
      ...VALID_ENV,
      DEPLOY_ENVIRONMENTS: 'staging production',
      TASKDEF_TEMPLATE_0: '{}',
      APPSPEC_TEMPLATE_0: 'version: 0.0',
    });
    expect(status).toBe(1);
    expect(stderr).toContain(
      'TASKDEF_TEMPLATE_1 and APPSPEC_TEMPLATE_1 (environment production) must both be set',
    );
  });

  test('GIVEN a failed build WHEN the artifact step runs THEN no artifact is written, so nothing deploys', () => {
    const out = join(scratch, 'out');
    mkdirSync(out);
    const { status, stderr } = run('main artifact', {
      ...VALID_ENV,
      CODEBUILD_BUILD_SUCCEEDING: '0',
      PUSHLINE_WORK_DIR: join(scratch, 'work'),
      ARTIFACT_DIR: out,
    });
    expect(status).toBe(0);
    expect(stderr).toContain('no artifact');
    expect(existsSync(join(out, 'artifacts'))).toBe(false);
  });
});

/**
 * A stand-in for `aws s3api head-object` / `put-object` on one versionless store in a directory, with
 * S3's conditional-write answers: `If-None-Match: *` fails when the key exists, `If-Match` when its
 * ETag differs, both with PreconditionFailed (412), as the S3 User Guide's "Conditional write
 * behavior" describes. `FAKE_S3_INTERLOPER=<zip> <time> <commit>` makes another build write first,
 * between this build's read and its write.
 */
const FAKE_AWS = `#!/bin/bash
set -u
store=$FAKE_S3_DIR
command=$2
shift 2
key="" body="" metadata="" if_match="" if_none_match=""
while (($#)); do
  case $1 in
  --key) key=$2 ;;
  --body) body=$2 ;;
  --metadata) metadata=$2 ;;
  --if-match) if_match=$2 ;;
  --if-none-match) if_none_match=$2 ;;
  esac
  shift 2
done
object="$store/objects/$key"
etag() { printf '"%s"' "$(md5sum <"$object" | cut -c1-32)"; }
store_object() {
  mkdir -p "$(dirname "$object")"
  cp "$1" "$object"
  printf '%s\\n%s\\n' "$2" "$3" >"$object.meta"
}
case $command in
head-object)
  if [[ ! -f "$object" ]]; then
    # What the build role gets for a missing key: it may not list the bucket (S3 API Reference, HeadObject).
    echo "An error occurred (403) when calling the HeadObject operation: Forbidden" >&2
    exit 254
  fi
  printf '%s\\t%s\\t%s\\n' "$(etag)" "$(sed -n 1p "$object.meta")" "$(sed -n 2p "$object.meta")"
  ;;
put-object)
  if [[ -n "\${FAKE_S3_INTERLOPER:-}" && ! -f "$store/interloped" ]]; then
    touch "$store/interloped"
    read -r zip time commit <<<"$FAKE_S3_INTERLOPER"
    store_object "$zip" "$time" "$commit"
  fi
  if { [[ -n "$if_none_match" ]] && [[ -f "$object" ]]; } ||
    { [[ -n "$if_match" ]] && { [[ ! -f "$object" ]] || [[ "$if_match" != "$(etag)" ]]; }; }; then
    echo "An error occurred (PreconditionFailed) when calling the PutObject operation: At least one of the pre-conditions you specified did not hold" >&2
    exit 254
  fi
  time=\${metadata#pushline-push-received-at=}
  store_object "$body" "\${time%%,*}" "\${metadata#*pushline-commit=}"
  echo "put-object $key \${time%%,*}" >>"$store/puts.log"
  ;;
esac
`;

describe('which push an artifact holds when builds finish out of order', () => {
  const OLDER = { sha: 'a'.repeat(40), time: '1764000000000' };
  const NEWER = { sha: 'b'.repeat(40), time: '1764000005000' };
  let store: string;
  let bin: string;

  beforeEach(() => {
    store = join(scratch, 's3');
    bin = join(scratch, 'bin');
    mkdirSync(store, { recursive: true });
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'aws'), FAKE_AWS, { mode: 0o755 });
  });

  const finish = (push: { sha: string; time: string }, env: Record<string, string> = {}) =>
    run('upload_artifact "$(write_artifact)"', {
      ...VALID_ENV,
      COMMIT_SHA: push.sha,
      PUSH_RECEIVED_AT: push.time,
      PUSHLINE_WORK_DIR: join(scratch, `work-${push.sha[0]}`),
      PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      FAKE_S3_DIR: store,
      ...env,
    });
  const deployedImage = () => {
    const zip = join(store, 'objects', VALID_ENV.ARTIFACT_KEY as string);
    return JSON.parse(execFileSync(TOOL_PATHS.unzip, ['-p', zip, 'imageDetail.json'], { encoding: 'utf8' }))
      .ImageURI as string;
  };

  test('GIVEN two pushes WHEN the newer build finishes first THEN the older build leaves the artifact alone, says so, and succeeds', () => {
    expect(finish(NEWER).status).toBe(0);
    const older = finish(OLDER);
    expect(older.status).toBe(0);
    expect(older.stderr).toContain('not writing the artifact: it already holds a newer push');
    expect(older.stderr).toContain(`commit ${OLDER.sha} is built but not deployed`);
    expect(deployedImage()).toBe(`${REPO_URI}:${NEWER.sha}`);
    expect(readFileSync(join(store, 'puts.log'), 'utf8').trim().split('\n')).toHaveLength(1);
  });

  test('GIVEN two pushes WHEN they finish in push order THEN the newer replaces the older', () => {
    expect(finish(OLDER).status).toBe(0);
    expect(finish(NEWER).status).toBe(0);
    expect(deployedImage()).toBe(`${REPO_URI}:${NEWER.sha}`);
  });

  test('GIVEN a newer build writes between this build reading the artifact and writing it WHEN the conditional write fails THEN it reads again and yields', () => {
    const newerZip = join(scratch, 'newer.zip');
    expect(finish(NEWER).status).toBe(0);
    execFileSync('cp', [join(store, 'objects', VALID_ENV.ARTIFACT_KEY as string), newerZip]);
    rmSync(join(store, 'objects'), { recursive: true });
    const older = finish(OLDER, { FAKE_S3_INTERLOPER: `${newerZip} ${NEWER.time} ${NEWER.sha}` });
    expect(older.status).toBe(0);
    expect(older.stderr).toContain('another build wrote');
    expect(older.stderr).toContain('not writing the artifact');
    expect(deployedImage()).toBe(`${REPO_URI}:${NEWER.sha}`);
  });

  test('GIVEN a build started at once (no PUSH_RECEIVED_AT) and a newer queued one WHEN the older finishes last THEN CodeBuild’s start time orders it, and it yields', () => {
    expect(finish(NEWER).status).toBe(0);
    const older = finish(OLDER, { PUSH_RECEIVED_AT: '', CODEBUILD_START_TIME: OLDER.time });
    expect(older.stderr).toContain(`received at ${NEWER.time}; this build's push: ${OLDER.time}`);
    expect(deployedImage()).toBe(`${REPO_URI}:${NEWER.sha}`);
  });

  test('GIVEN the same push built again (a retried build) WHEN it finishes THEN it may rewrite its own artifact', () => {
    expect(finish(NEWER).status).toBe(0);
    expect(finish(NEWER).status).toBe(0);
    expect(readFileSync(join(store, 'puts.log'), 'utf8').trim().split('\n')).toHaveLength(2);
  });

  describe('with the branch head read from the Git host', () => {
    let origin: string;
    let older: string;
    let head: string;

    beforeEach(() => {
      origin = join(scratch, 'origin.git');
      const work = join(scratch, 'work');
      git(scratch, ['init', '-q', '--bare', '--initial-branch', 'main', origin]);
      git(scratch, ['init', '-q', '--initial-branch', 'main', work]);
      git(work, ['config', 'user.email', 't@example.com']);
      git(work, ['config', 'user.name', 't']);
      for (const text of ['older', 'head']) {
        writeFileSync(join(work, 'file.txt'), text);
        git(work, ['add', '.']);
        git(work, ['commit', '-q', '-m', text]);
        if (text === 'older') older = git(work, ['rev-parse', 'HEAD']).trim();
      }
      head = git(work, ['rev-parse', 'HEAD']).trim();
      git(work, ['push', '-q', origin, 'HEAD:refs/heads/main']);
    });

    const finishFrom = (sha: string, time: string) =>
      finish(
        { sha, time },
        { CLONE_URL: `file://${origin}`, PUSHLINE_WORK_DIR: join(scratch, `work-${time}`) },
      );

    test('GIVEN the head is deployed WHEN an older push is built later (a late redelivery) THEN it leaves the artifact alone, though its push time is newer', () => {
      expect(finishFrom(head, '1764000005000').status).toBe(0);
      const late = finishFrom(older, '1764000900000');
      expect(late.status).toBe(0);
      expect(late.stderr).toContain(`refs/heads/main has moved on to ${head}, which is already deployed`);
      expect(deployedImage()).toBe(`${REPO_URI}:${head}`);
    });

    test('GIVEN a late build of an older push wrote first WHEN the head’s build finishes THEN the head deploys, though its push time is older', () => {
      expect(finishFrom(older, '1764000900000').status).toBe(0);
      expect(finishFrom(head, '1764000005000').status).toBe(0);
      expect(deployedImage()).toBe(`${REPO_URI}:${head}`);
    });
  });

  test('GIVEN ARTIFACT_DIR WHEN the newer build finishes first THEN the older one leaves the artifact alone too', () => {
    const out = join(scratch, 'out');
    const local = { ARTIFACT_DIR: out, PATH: process.env.PATH ?? '/usr/bin:/bin' };
    expect(finish(NEWER, local).status).toBe(0);
    expect(finish(OLDER, local).stderr).toContain('not writing the artifact');
    const zip = join(out, VALID_ENV.ARTIFACT_KEY as string);
    const detail = execFileSync(TOOL_PATHS.unzip, ['-p', zip, 'imageDetail.json'], { encoding: 'utf8' });
    expect(JSON.parse(detail)).toEqual({ ImageURI: `${REPO_URI}:${NEWER.sha}` });
  });
});

/**
 * The same against an S3 emulator with S3's conditional writes (moto's `moto_server`, with the AWS
 * CLI): two builds of one repository race for the artifact key many times, the newer push finishing
 * first, last or at the same moment; the artifact must always end up naming the newer push.
 */
const motoServer = spawnSync('bash', ['-c', 'command -v moto_server && command -v aws'], {
  encoding: 'utf8',
});
const s3EmulatorMissing =
  motoServer.status === 0 ? undefined : 'moto_server and the aws CLI (pip install moto awscli)';
if (s3EmulatorMissing) {
  process.stderr.write(
    `\n!!! SKIPPED: artifact write order against an S3 emulator: needs ${s3EmulatorMissing}\n\n`,
  );
}
(s3EmulatorMissing ? describe.skip : describe)('which push an artifact holds, against an S3 emulator', () => {
  let server: ChildProcess | undefined;
  let endpoint = '';
  const credentials = {
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_DEFAULT_REGION: 'us-east-1',
  };

  beforeAll(async () => {
    server = spawn('moto_server', ['-H', '127.0.0.1', '-p', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    endpoint = await new Promise<string>((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(() => reject(new Error(`moto_server did not start: ${seen}`)), 20_000);
      const read = (chunk: Buffer) => {
        seen += chunk.toString();
        const match = /Running on (http:\/\/127\.0\.0\.1:\d+)/.exec(seen);
        if (match?.[1]) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      };
      server?.stdout?.on('data', read);
      server?.stderr?.on('data', read);
    });
  }, 30_000);

  afterAll(() => {
    if (server?.pid) process.kill(server.pid);
  });

  const upload = (bucket: string, push: { sha: string; time: string }, work: string) =>
    new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const child = spawn('/bin/bash', ['-c', `source "${SCRIPT}"\nupload_artifact "$(write_artifact)"`], {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: scratch,
          TMPDIR: scratch,
          ...VALID_ENV,
          ...credentials,
          AWS_ENDPOINT_URL_S3: endpoint,
          ARTIFACT_BUCKET: bucket,
          COMMIT_SHA: push.sha,
          PUSH_RECEIVED_AT: push.time,
          PUSHLINE_WORK_DIR: join(scratch, work),
        },
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      child.on('close', (status) => resolve({ status, stderr }));
    });
  const aws = (args: string[]) =>
    execFileSync('aws', args, {
      encoding: 'utf8',
      env: { ...process.env, ...credentials, AWS_ENDPOINT_URL_S3: endpoint },
    });

  test('GIVEN two builds racing for the artifact, in every order, THEN the newer push always ends up in it and both builds succeed', async () => {
    const older = { sha: 'a'.repeat(40), time: '1764000000000' };
    const newer = { sha: 'b'.repeat(40), time: '1764000005000' };
    for (let round = 0; round < 3; round += 1) {
      const bucket = `pushline-artifacts-${round}`;
      aws(['s3api', 'create-bucket', '--bucket', bucket]);
      const olderFirst = round % 3 === 0;
      const together = round % 3 === 1;
      const results = together
        ? await Promise.all([upload(bucket, older, `o${round}`), upload(bucket, newer, `n${round}`)])
        : olderFirst
          ? [await upload(bucket, older, `o${round}`), await upload(bucket, newer, `n${round}`)]
          : [await upload(bucket, newer, `n${round}`), await upload(bucket, older, `o${round}`)];
      for (const result of results) expect(result).toMatchObject({ status: 0 });
      const commit = aws([
        's3api',
        'head-object',
        '--bucket',
        bucket,
        '--key',
        VALID_ENV.ARTIFACT_KEY as string,
        '--query',
        'Metadata."pushline-commit"',
        '--output',
        'text',
      ]).trim();
      expect(commit).toBe(newer.sha);
    }
  }, 120_000);
});

test('GIVEN the scripts WHEN shellcheck reads them THEN it finds nothing', () => {
  const shellcheck = spawnSync('shellcheck', ['--version']);
  if (shellcheck.error) {
    if (process.env.CI) throw new Error('shellcheck is not installed: apt-get install -y shellcheck');
    process.stderr.write('\n!!! SKIPPED shellcheck: not installed (apt-get install -y shellcheck)\n\n');
    return;
  }
  const result = spawnSync('shellcheck', ['--severity=style', SCRIPT], { encoding: 'utf8' });
  expect(result.stdout).toBe('');
  expect(result.status).toBe(0);
});
