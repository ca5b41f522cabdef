#!/usr/bin/env bash
# The steps of a pushline image build, called from buildspec.yml as
#   pushline-build.sh check|login|image|artifact
# and sourced by the tests (which then call the functions one by one).
#
# Inputs (environment):
#   COMMIT_SHA, GIT_REF, CLONE_URL          the pushed commit (StartBuild overrides)
#   GIT_SSH_KEY                             deploy key, private half (Secrets Manager)
#   GIT_KNOWN_HOSTS                         pinned host keys, known_hosts lines
#   IMAGE_REPOSITORY_URI                    <registry>/<repository>, no tag
#   CACHE_TAG                               registry cache tag (default buildcache)
#   DOCKER_CONTEXT, DOCKERFILE, DOCKER_TARGET, DOCKER_PLATFORMS (comma list),
#   DOCKER_BUILD_ARGS (KEY=VALUE lines)     what to build
#   BUILD_SECRET_IDS, BUILD_SECRET_<n>      BuildKit secret ids and their values, by position
#   PULL_THROUGH_REGISTRY                   ECR registry host of the pull-through caches
#   TASKDEF_TEMPLATE, APPSPEC_TEMPLATE      deploy templates (SSM), copied into the artifact
#   DEPLOY_ENVIRONMENTS (space list),       with deploy.environments instead: one pair per environment,
#   TASKDEF_TEMPLATE_<n>, APPSPEC_TEMPLATE_<n>  by position, written as taskdef-<name>.json, appspec-<name>.yaml
#   ARTIFACT_BUCKET, ARTIFACT_KEY           where the artifact zip goes
#   SOURCE_PROVIDER, SOURCE_REPOSITORY, DELIVERY_ID   only logged
#   PUSH_RECEIVED_AT                        when the webhook received the push (epoch ms), set on
#                                           builds that were queued; else CODEBUILD_START_TIME.
#                                           The artifact is written only if its push is the newest
#
# Switches for running outside CodeBuild (each replaces one AWS call or CodeBuild default):
#   REGISTRY_LOGIN=skip       do not log in to ECR (a local registry needs no login)
#   ARTIFACT_DIR=<dir>        copy the zip to <dir>/<ARTIFACT_KEY> instead of uploading it to S3
#                             (the push it came from is kept in <dir>/<ARTIFACT_KEY>.push)
#   REGISTRY_INSECURE=true    the registry speaks plain HTTP (manifest look-ups use --insecure)
#   DOCKER_CLI=<path>         the docker client to use (default: docker on PATH)
#   DOCKER_BUILD_NETWORK=host build steps use the host network (a daemon without a bridge)
#   BUILDER=auto|buildx|classic   force one build path (default: buildx when the client has it)
#   PUSHLINE_WORK_DIR=<dir>   where the checkout and the artifact are made (default /tmp/pushline)

set -euo pipefail

log() { printf 'pushline: %s\n' "$*" >&2; }
die() {
  printf 'pushline: error: %s\n' "$*" >&2
  exit 1
}

docker_cli() { "${DOCKER_CLI:-docker}" "$@"; }

work_dir() { printf '%s\n' "${PUSHLINE_WORK_DIR:-/tmp/pushline}"; }

short_sha() { printf '%s\n' "${1:0:12}"; }

registry_host() { printf '%s\n' "${1%%/*}"; }

# Fails with one line per missing or malformed input, so a misconfigured project says everything at once.
validate_inputs() {
  local problems=()
  [[ "${COMMIT_SHA:-}" =~ ^[0-9a-f]{40}$ ]] ||
    problems+=("COMMIT_SHA must be the full 40-hex commit id, got '${COMMIT_SHA:-}'")
  [[ "${GIT_REF:-}" =~ ^refs/(heads|tags)/.+ ]] ||
    problems+=("GIT_REF must be refs/heads/<branch> or refs/tags/<tag>, got '${GIT_REF:-}'")
  [[ -n "${CLONE_URL:-}" ]] || problems+=("CLONE_URL is empty")
  [[ -n "${IMAGE_REPOSITORY_URI:-}" ]] || problems+=("IMAGE_REPOSITORY_URI is empty")
  [[ "${IMAGE_REPOSITORY_URI:-}" != *:* || "${IMAGE_REPOSITORY_URI%%/*}" == *:* ]] ||
    problems+=("IMAGE_REPOSITORY_URI must not carry a tag, got '${IMAGE_REPOSITORY_URI:-}'")
  if [[ -n "${TASKDEF_TEMPLATE:-}" && -z "${APPSPEC_TEMPLATE:-}" ]] ||
    [[ -z "${TASKDEF_TEMPLATE:-}" && -n "${APPSPEC_TEMPLATE:-}" ]]; then
    problems+=("TASKDEF_TEMPLATE and APPSPEC_TEMPLATE come together: set both (deployed repository) or neither")
  fi
  local environments index=0 environment
  read -r -a environments <<<"${DEPLOY_ENVIRONMENTS:-}"
  for environment in "${environments[@]}"; do
    [[ "$environment" =~ ^[a-z][a-z0-9-]*$ ]] ||
      problems+=("DEPLOY_ENVIRONMENTS: '$environment' is not an environment name")
    local taskdef="TASKDEF_TEMPLATE_$index" appspec="APPSPEC_TEMPLATE_$index"
    [[ -n "${!taskdef:-}" && -n "${!appspec:-}" ]] ||
      problems+=("$taskdef and $appspec (environment $environment) must both be set")
    index=$((index + 1))
  done
  if [[ -z "${ARTIFACT_DIR:-}" && -z "${ARTIFACT_BUCKET:-}" ]]; then
    problems+=("ARTIFACT_BUCKET is empty (or set ARTIFACT_DIR to keep the artifact on disk)")
  fi
  [[ -n "${ARTIFACT_KEY:-}" ]] || problems+=("ARTIFACT_KEY is empty")
  if ((${#problems[@]} > 0)); then
    printf 'pushline: error: %s\n' "${problems[@]}" >&2
    return 1
  fi
}

check_tools() {
  local tool missing=()
  for tool in git ssh ssh-agent ssh-add ssh-keygen zip "${DOCKER_CLI:-docker}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [[ "${REGISTRY_LOGIN:-}" != skip || -z "${ARTIFACT_DIR:-}" ]]; then
    command -v aws >/dev/null 2>&1 || missing+=("aws")
  fi
  ((${#missing[@]} == 0)) || die "missing tools on the build host: ${missing[*]}"
}

registry_login() {
  if [[ "${REGISTRY_LOGIN:-}" == skip ]]; then
    log "registry login skipped (REGISTRY_LOGIN=skip)"
    return 0
  fi
  local host
  host=$(registry_host "$IMAGE_REPOSITORY_URI")
  aws ecr get-login-password --region "${AWS_REGION:-${AWS_DEFAULT_REGION:-}}" |
    docker_cli login --username AWS --password-stdin "$host"
}

# True when the registry already holds <ref>: tags are immutable, so it is the image of that commit.
image_exists() {
  local flags=()
  [[ "${REGISTRY_INSECURE:-}" == true ]] && flags+=(--insecure)
  docker_cli manifest inspect "${flags[@]}" "$1" >/dev/null 2>&1
}

# Writes the deploy key (0600) into a fresh temporary directory, loads it into an ssh-agent whose
# socket lives there too, and deletes the key file again: from then on only the agent holds it.
# Sets SSH_DIR, SSH_AUTH_SOCK and SSH_AGENT_PID; stop_ssh undoes all of it.
start_ssh() {
  [[ -n "${GIT_SSH_KEY:-}" ]] ||
    die "GIT_SSH_KEY is empty: put the deploy key's private half into the repository's SSH key secret (README, Builds)"
  [[ -n "${GIT_KNOWN_HOSTS:-}" ]] ||
    die "no pinned host key (GIT_KNOWN_HOSTS is empty): set source.knownHosts in the config; pushline never trusts a host key on first use"
  SSH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pushline-ssh.XXXXXX")
  chmod 700 "$SSH_DIR"
  (
    umask 077
    printf '%s\n' "$GIT_SSH_KEY" >"$SSH_DIR/deploy-key"
  )
  printf '%s\n' "$GIT_KNOWN_HOSTS" >"$SSH_DIR/known_hosts"
  if ! ssh-keygen -y -f "$SSH_DIR/deploy-key" >/dev/null 2>&1; then
    rm -f "$SSH_DIR/deploy-key"
    die "GIT_SSH_KEY is not an unencrypted SSH private key: put the deploy key's private half (-----BEGIN OPENSSH PRIVATE KEY----- ...) into the secret"
  fi
  local agent_output
  agent_output=$(ssh-agent -s -a "$SSH_DIR/agent.sock")
  SSH_AGENT_PID=$(sed -n 's/^SSH_AGENT_PID=\([0-9]*\);.*/\1/p' <<<"$agent_output")
  export SSH_AUTH_SOCK="$SSH_DIR/agent.sock" SSH_AGENT_PID
  ssh-add -q "$SSH_DIR/deploy-key" 2>/dev/null
  rm -f "$SSH_DIR/deploy-key"
  export GIT_SSH_COMMAND="ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$SSH_DIR/known_hosts -o GlobalKnownHostsFile=/dev/null -o IdentityAgent=$SSH_DIR/agent.sock"
}

stop_ssh() {
  if [[ -n "${SSH_AGENT_PID:-}" ]]; then
    kill "$SSH_AGENT_PID" 2>/dev/null || true
    # Wait until the agent has exited (an unreaped zombie counts as exited: it holds no key).
    local _ state
    for _ in {1..50}; do
      state=$(cut -d' ' -f3 "/proc/$SSH_AGENT_PID/stat" 2>/dev/null) || break
      [[ "$state" != Z ]] || break
      sleep 0.05
    done
    unset SSH_AGENT_PID
  fi
  if [[ -n "${SSH_DIR:-}" ]]; then
    rm -rf "$SSH_DIR"
    unset SSH_DIR
  fi
}

# Fetches exactly COMMIT_SHA into <dir>, shallow. Servers that refuse to hand out a commit by id get
# asked for the ref instead; the commit must then be in its history, else it was force-pushed away.
fetch_commit() {
  local dir=$1
  rm -rf "$dir"
  git init -q "$dir"
  git -C "$dir" remote add origin "$CLONE_URL"
  if git -C "$dir" fetch -q --no-tags --depth 1 origin "$COMMIT_SHA" 2>"$dir/.git/fetch-by-id.log"; then
    log "fetched $COMMIT_SHA by id (shallow)"
  else
    log "the server did not hand out $COMMIT_SHA by id ($(tail -n 1 "$dir/.git/fetch-by-id.log")); fetching $GIT_REF"
    git -C "$dir" fetch -q --no-tags --depth "${FETCH_FALLBACK_DEPTH:-50}" origin "+$GIT_REF:refs/pushline/ref" ||
      die "cannot fetch $GIT_REF from $CLONE_URL: is the deploy key registered and the host key pinned?"
    if ! git -C "$dir" cat-file -e "$COMMIT_SHA^{commit}" 2>/dev/null; then
      git -C "$dir" fetch -q --no-tags --unshallow origin "+$GIT_REF:refs/pushline/ref" 2>/dev/null || true
    fi
    git -C "$dir" cat-file -e "$COMMIT_SHA^{commit}" 2>/dev/null ||
      die "commit $COMMIT_SHA is no longer in $GIT_REF of $CLONE_URL (force-pushed away?); push again to build the new head"
  fi
  git -C "$dir" -c advice.detachedHead=false checkout -q --detach "$COMMIT_SHA"
  [[ "$(git -C "$dir" rev-parse HEAD)" == "$COMMIT_SHA" ]] || die "checked out $(git -C "$dir" rev-parse HEAD), expected $COMMIT_SHA"
}

# buildx when the client has it (CodeBuild images), the classic BuildKit client otherwise.
builder_kind() {
  case "${BUILDER:-auto}" in
  buildx | classic) printf '%s\n' "$BUILDER" ;;
  auto) if docker_cli buildx version >/dev/null 2>&1; then echo buildx; else echo classic; fi ;;
  *) die "BUILDER must be auto, buildx or classic, got '$BUILDER'" ;;
  esac
}

# Which buildx driver builds: the Docker engine's own BuildKit (`docker`) unless the build needs a
# BuildKit container (`docker-container`): for several platforms at once, or when BUILDKIT_IMAGE names
# one that comes through the pull-through cache. The `docker` driver pulls no builder image at all,
# so a default build makes no anonymous Docker Hub pull (README, "Cache, base images and platforms").
buildx_driver() {
  if [[ "${DOCKER_PLATFORMS:-}" == *,* || -n "${BUILDKIT_IMAGE:-}" ]]; then
    echo docker-container
  else
    echo docker
  fi
}

# Writes each BuildKit secret into <dir> (0600) and prints one --secret flag per line.
secret_flags() {
  local dir=$1 ids index=0 id var
  read -r -a ids <<<"${BUILD_SECRET_IDS:-}"
  for id in "${ids[@]}"; do
    var="BUILD_SECRET_$index"
    [[ -n "${!var:-}" ]] || die "build secret '$id' ($var) is empty: fill its Secrets Manager secret"
    (
      umask 077
      printf '%s' "${!var}" >"$dir/build-secret-$index"
    )
    printf -- '--secret\nid=%s,src=%s\n' "$id" "$dir/build-secret-$index"
    index=$((index + 1))
  done
}

# Fills the global BUILD_COMMAND with the build (and, for buildx, push) of <source dir>.
# Secrets are passed as files in <secret dir>, never as build arguments.
compose_build_command() {
  local source_dir=$1 secret_dir=$2 kind repo sha short cache_ref line
  kind=$(builder_kind)
  repo=$IMAGE_REPOSITORY_URI
  sha=$COMMIT_SHA
  short=$(short_sha "$sha")
  cache_ref="$repo:${CACHE_TAG:-buildcache}"
  local context="$source_dir/${DOCKER_CONTEXT:-.}"
  local dockerfile="$source_dir/${DOCKERFILE:-${DOCKER_CONTEXT:-.}/Dockerfile}"

  local common=(--progress plain --ssh default --file "$dockerfile")
  local secret_text secret_lines=()
  secret_text=$(secret_flags "$secret_dir")
  [[ -z "$secret_text" ]] || mapfile -t secret_lines <<<"$secret_text"
  common+=("${secret_lines[@]}")
  common+=(--label "org.opencontainers.image.revision=$sha")
  common+=(--label "org.opencontainers.image.source=$CLONE_URL")
  common+=(--label "org.opencontainers.image.created=$(date -u +%Y-%m-%dT%H:%M:%SZ)")
  while IFS= read -r line; do
    [[ -n "$line" ]] && common+=(--build-arg "$line")
  done <<<"${DOCKER_BUILD_ARGS:-}"
  [[ -n "${PULL_THROUGH_REGISTRY:-}" ]] && common+=(--build-arg "PULL_THROUGH_REGISTRY=$PULL_THROUGH_REGISTRY")
  [[ -n "${DOCKER_TARGET:-}" ]] && common+=(--target "$DOCKER_TARGET")
  [[ -n "${DOCKER_BUILD_NETWORK:-}" ]] && common+=(--network "$DOCKER_BUILD_NETWORK")

  if [[ "$kind" == buildx && "$(buildx_driver)" == docker ]]; then
    # The docker driver cannot export a registry cache (Docker docs, "Registry cache": "not supported
    # with the default docker driver"); it exports the inline cache, so the image itself is pushed
    # as the cache tag too, as with the classic client.
    BUILD_COMMAND=("${DOCKER_CLI:-docker}" buildx build --builder default "${common[@]}")
    [[ -n "${DOCKER_PLATFORMS:-}" ]] && BUILD_COMMAND+=(--platform "$DOCKER_PLATFORMS")
    BUILD_COMMAND+=(
      --cache-from "type=registry,ref=$cache_ref" --cache-to type=inline
      --tag "$repo:$sha" --tag "$repo:$short" --tag "$cache_ref" --push "$context"
    )
  elif [[ "$kind" == buildx ]]; then
    BUILD_COMMAND=("${DOCKER_CLI:-docker}" buildx build --builder pushline "${common[@]}")
    [[ -n "${DOCKER_PLATFORMS:-}" ]] && BUILD_COMMAND+=(--platform "$DOCKER_PLATFORMS")
    BUILD_COMMAND+=(
      --cache-from "type=registry,ref=$cache_ref"
      --cache-to "type=registry,ref=$cache_ref,mode=max,image-manifest=true,oci-mediatypes=true"
      --tag "$repo:$sha" --tag "$repo:$short" --push "$context"
    )
  else
    [[ "${DOCKER_PLATFORMS:-}" != *,* ]] ||
      die "DOCKER_PLATFORMS=$DOCKER_PLATFORMS needs docker buildx, which this build host lacks"
    BUILD_COMMAND=("${DOCKER_CLI:-docker}" build "${common[@]}")
    [[ -n "${DOCKER_PLATFORMS:-}" ]] && BUILD_COMMAND+=(--platform "$DOCKER_PLATFORMS")
    BUILD_COMMAND+=(
      --build-arg BUILDKIT_INLINE_CACHE=1 --cache-from "$cache_ref"
      --tag "$repo:$sha" --tag "$repo:$short" --tag "$cache_ref" "$context"
    )
  fi
}

# QEMU's binfmt handlers for platforms the host cannot run, from ECR Public rather than Docker Hub: AWS's EKS
# Distro rebuild of tonistiigi/binfmt (https://github.com/aws/eks-distro-build-tooling,
# projects/tonistiigi/binfmt), pulled without a login and without Docker Hub's anonymous limit.
DEFAULT_BINFMT_IMAGE=public.ecr.aws/eks-distro-build-tooling/binfmt-misc:qemu-v7.0.0

# The docker driver needs no builder. A BuildKit container (several platforms, emulated with QEMU;
# README, Builds) runs BUILDKIT_IMAGE, through the pull-through cache when there is a docker-hub rule.
ensure_buildx_builder() {
  [[ "$(buildx_driver)" == docker-container ]] || return 0
  docker_cli buildx inspect pushline >/dev/null 2>&1 && return 0
  local opts=()
  if [[ -n "${BUILDKIT_IMAGE:-}" ]]; then
    opts+=(--driver-opt "image=$BUILDKIT_IMAGE")
  else
    log "warning: the BuildKit container image (moby/buildkit) comes from Docker Hub without a login; add a docker-hub pullThroughCache rule to avoid its pull limit (README, Builds)"
  fi
  docker_cli buildx create --name pushline --driver docker-container "${opts[@]}" >/dev/null
}

# The host's CPU architecture in Docker's platform terms (linux/<arch>).
host_arch() {
  local machine
  machine=$(uname -m)
  case "$machine" in
  x86_64) echo amd64 ;;
  aarch64) echo arm64 ;;
  *) printf '%s\n' "$machine" ;;
  esac
}

# True when a platform the build targets is not the host's, so its RUN steps need QEMU: several
# platforms, or a single one of the other architecture (linux/arm64 on an x86 host).
needs_emulation() {
  local platforms platform arch host
  host=$(host_arch)
  IFS=, read -r -a platforms <<<"${DOCKER_PLATFORMS:-}"
  for platform in "${platforms[@]}"; do
    arch=${platform#*/}
    arch=${arch%%/*}
    [[ "$arch" == "$host" ]] || return 0
  done
  return 1
}

# Registers QEMU's binfmt handlers in the host's kernel when a target platform needs them; both the
# engine's own BuildKit and a BuildKit container then run foreign RUN steps through them.
ensure_emulation() {
  needs_emulation || return 0
  log "registering QEMU for ${DOCKER_PLATFORMS} on this $(host_arch) host"
  docker_cli run --privileged --rm "${BINFMT_IMAGE:-$DEFAULT_BINFMT_IMAGE}" --install all >/dev/null
}

push_classic() {
  local repo=$IMAGE_REPOSITORY_URI short
  short=$(short_sha "$COMMIT_SHA")
  docker_cli push "$repo:$COMMIT_SHA"
  docker_cli push "$repo:$short"
  # The cache tag must stay movable; if the registry refuses (tag immutability without an exclusion
  # for it) the next build is only slower, so this is a warning.
  docker_cli push "$repo:${CACHE_TAG:-buildcache}" ||
    log "warning: could not push the cache tag ${CACHE_TAG:-buildcache}; the next build starts cold"
}

# A commit whose full-SHA image exists is done; only a missing short tag is added.
complete_existing_image() {
  local repo=$IMAGE_REPOSITORY_URI short
  short=$(short_sha "$COMMIT_SHA")
  log "$repo:$COMMIT_SHA is already in the registry (tags are immutable): nothing to build or push"
  image_exists "$repo:$short" && return 0
  log "adding the missing tag $short"
  if [[ "$(builder_kind)" == buildx ]]; then
    docker_cli buildx imagetools create --tag "$repo:$short" "$repo:$COMMIT_SHA"
  else
    docker_cli pull -q "$repo:$COMMIT_SHA" >/dev/null
    docker_cli tag "$repo:$COMMIT_SHA" "$repo:$short"
    docker_cli push "$repo:$short"
  fi
}

# The engine's BuildKit reuses an inline cache it only reads from the registry for one build: the
# image it then pushes as the cache tag carries no cache record for the layers it took from there,
# so every second build starts cold (moby/buildkit#1981, "docker --cache-from with
# BUILDKIT_INLINE_CACHE does not work every second time"; reproduced by test/build/image-build.e2e.test.ts).
# Pulling the cache image into the engine first is the known remedy; its layers are the ones a
# cache hit downloads anyway. No cache image yet (the first build) is not an error.
pull_inline_cache() {
  local cache_ref="$IMAGE_REPOSITORY_URI:${CACHE_TAG:-buildcache}" flags=(-q)
  [[ -n "${DOCKER_PLATFORMS:-}" ]] && flags+=(--platform "$DOCKER_PLATFORMS")
  if docker_cli pull "${flags[@]}" "$cache_ref" >/dev/null 2>&1; then
    log "pulled the layer cache $cache_ref"
  else
    log "no layer cache at $cache_ref (none yet, or it cannot be pulled): this build starts cold"
  fi
}

build_image() {
  local repo=$IMAGE_REPOSITORY_URI
  log "building $COMMIT_SHA of ${SOURCE_REPOSITORY:-$CLONE_URL} (${GIT_REF}, provider ${SOURCE_PROVIDER:-?}, delivery ${DELIVERY_ID:-?})"
  if image_exists "$repo:$COMMIT_SHA"; then
    complete_existing_image
    return 0
  fi
  trap stop_ssh EXIT
  start_ssh
  local source_dir
  source_dir="$(work_dir)/source"
  mkdir -p "$(work_dir)"
  fetch_commit "$source_dir"
  compose_build_command "$source_dir" "$SSH_DIR"
  if [[ "$(builder_kind)" == buildx ]]; then log "builder: buildx, $(buildx_driver) driver"; else log "builder: classic"; fi
  ensure_emulation
  if [[ "$(builder_kind)" == buildx ]]; then
    ensure_buildx_builder
    [[ "$(buildx_driver)" == docker ]] && pull_inline_cache
    "${BUILD_COMMAND[@]}"
  else
    pull_inline_cache
    DOCKER_BUILDKIT=1 "${BUILD_COMMAND[@]}"
    push_classic
  fi
  log "pushed $repo:$COMMIT_SHA and $repo:$(short_sha "$COMMIT_SHA")"
}

# imageDetail.json always; taskdef.json and appspec.yaml verbatim for deployed repositories, or one
# taskdef-<environment>.json and appspec-<environment>.yaml per environment: one image for all.
write_artifact() {
  local dir
  dir="$(work_dir)/artifact"
  rm -rf "$dir"
  mkdir -p "$dir"
  printf '{"ImageURI":"%s:%s"}\n' "$IMAGE_REPOSITORY_URI" "$COMMIT_SHA" >"$dir/imageDetail.json"
  local files=(imageDetail.json)
  if [[ -n "${TASKDEF_TEMPLATE:-}" ]]; then
    printf '%s' "$TASKDEF_TEMPLATE" >"$dir/taskdef.json"
    printf '%s' "$APPSPEC_TEMPLATE" >"$dir/appspec.yaml"
    files+=(taskdef.json appspec.yaml)
  fi
  local environments index=0 environment taskdef appspec
  read -r -a environments <<<"${DEPLOY_ENVIRONMENTS:-}"
  for environment in "${environments[@]}"; do
    taskdef="TASKDEF_TEMPLATE_$index"
    appspec="APPSPEC_TEMPLATE_$index"
    printf '%s' "${!taskdef}" >"$dir/taskdef-$environment.json"
    printf '%s' "${!appspec}" >"$dir/appspec-$environment.yaml"
    files+=("taskdef-$environment.json" "appspec-$environment.yaml")
    index=$((index + 1))
  done
  (cd "$dir" && zip -q -X deploy.zip "${files[@]}")
  printf '%s\n' "$dir/deploy.zip"
}

# Epoch milliseconds of the push this build is for: PUSH_RECEIVED_AT for a build that waited in the
# retry queue, else when CodeBuild started it (the webhook starts builds as it receives pushes). A
# build started by hand counts as pushed when it started, so it deploys unless a newer push did.
push_time() {
  if [[ "${PUSH_RECEIVED_AT:-}" =~ ^[0-9]+$ ]]; then
    printf '%s\n' "$PUSH_RECEIVED_AT"
  elif [[ "${CODEBUILD_START_TIME:-}" =~ ^[0-9]+$ ]]; then
    printf '%s\n' "$CODEBUILD_START_TIME"
  else
    date +%s%3N
  fi
}

# The commit the pushed branch points at now, read from the Git host with the deploy key (empty for
# a tag, or when it cannot be read: then push times alone decide). A push time can mislead: a
# delivery redelivered long after a newer push (GitHub's redelivery, or a duplicate while the
# delivery table was down) starts a build of an older commit later than the newer one's.
branch_head() {
  [[ "${GIT_REF:-}" == refs/heads/* ]] || return 0
  local over_ssh=true
  [[ "$CLONE_URL" == file://* ]] && over_ssh=false
  if $over_ssh && [[ -z "${GIT_SSH_KEY:-}" || -z "${GIT_KNOWN_HOSTS:-}" ]]; then
    return 0
  fi
  local heads
  if ! heads=$(
    if $over_ssh; then
      start_ssh
      trap stop_ssh EXIT
      GIT_SSH_COMMAND="$GIT_SSH_COMMAND -o ConnectTimeout=10"
    fi
    timeout 60 git ls-remote "$CLONE_URL" "$GIT_REF"
  ); then
    log "could not read the head of $GIT_REF from $CLONE_URL; push times alone decide whether this build deploys"
    return 0
  fi
  awk -v ref="$GIT_REF" '$2 == ref { print $1 }' <<<"$heads"
}

# write or skip: may this build's push replace the artifact of the push recorded as <time> <commit>
# (both empty when there is no artifact yet)? The branch's head always deploys, and nothing replaces
# it once it is deployed (BRANCH_HEAD, from branch_head). Otherwise builds finish in any order and
# only a newer push wins; the same push again (a retried build) may rewrite its own artifact.
artifact_decision() {
  local recorded_time=$1 recorded_commit=$2 mine
  if [[ -n "${BRANCH_HEAD:-}" ]]; then
    if [[ "$BRANCH_HEAD" == "$COMMIT_SHA" ]]; then
      echo write
      return 0
    fi
    if [[ "$BRANCH_HEAD" == "$recorded_commit" ]]; then
      log "$GIT_REF has moved on to $BRANCH_HEAD, which is already deployed"
      echo skip
      return 0
    fi
  fi
  mine=$(push_time)
  if [[ -z "$recorded_time" ]] || ((mine > recorded_time)); then
    echo write
  elif ((mine == recorded_time)) && [[ "$recorded_commit" == "$COMMIT_SHA" ]]; then
    echo write
  else
    echo skip
  fi
}

log_skipped_artifact() {
  log "not writing the artifact: it already holds a newer push (commit ${2:-?}, received at $1; this build's push: $(push_time)); commit $COMMIT_SHA is built but not deployed"
}

# ARTIFACT_DIR: the same decision as on S3, the recorded push kept in a file next to the zip and the
# read-decide-write made atomic with a lock instead of S3's conditional write.
upload_artifact_to_dir() {
  local zip=$1 target="$ARTIFACT_DIR/$ARTIFACT_KEY"
  mkdir -p "$(dirname "$target")"
  (
    flock 9
    local recorded_time="" recorded_commit=""
    [[ -f "$target.push" ]] && read -r recorded_time recorded_commit <"$target.push"
    if [[ "$(artifact_decision "$recorded_time" "$recorded_commit")" == skip ]]; then
      log_skipped_artifact "$recorded_time" "$recorded_commit"
      exit 0
    fi
    cp "$zip" "$target.tmp"
    mv "$target.tmp" "$target"
    printf '%s %s\n' "$(push_time)" "$COMMIT_SHA" >"$target.push"
    log "artifact written to $target (ARTIFACT_DIR)"
  ) 9>"$target.lock"
}

# S3: read the current artifact's recorded push and ETag, decide, and write only if the object is
# still the one that was read (If-Match) or still absent (If-None-Match: *). Another build that wrote
# in between makes the write fail with 412 (or 409 while its write is in flight); then read again.
# Amazon S3 User Guide, "How to prevent object overwrites with conditional writes":
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html
upload_artifact_to_s3() {
  local zip=$1 attempt head etag recorded_time recorded_commit errors condition
  errors=$(mktemp "${TMPDIR:-/tmp}/pushline-s3.XXXXXX")
  for attempt in 1 2 3 4 5; do
    if head=$(aws s3api head-object --bucket "$ARTIFACT_BUCKET" --key "$ARTIFACT_KEY" \
      --query '[ETag, Metadata."pushline-push-received-at", Metadata."pushline-commit"]' --output text 2>"$errors"); then
      IFS=$'\t' read -r etag recorded_time recorded_commit <<<"$head"
      # An artifact without the metadata was written before pushline recorded pushes: any push is newer.
      [[ "$recorded_time" =~ ^[0-9]+$ ]] || recorded_time=0
      [[ "$recorded_commit" != None ]] || recorded_commit=""
      condition=(--if-match "$etag")
    elif grep -qE '\((404|403)\)|Not Found|Forbidden' "$errors"; then
      # No artifact yet. The build role may read its own key but not list the bucket, and then S3
      # answers a missing key with 403 rather than 404 (S3 API Reference, HeadObject). Were the key
      # there after all, the If-None-Match write below would fail and nothing would be overwritten.
      recorded_time="" recorded_commit=""
      condition=(--if-none-match '*')
    else
      die "cannot read s3://$ARTIFACT_BUCKET/$ARTIFACT_KEY: $(tail -n 1 "$errors")"
    fi
    if [[ "$(artifact_decision "$recorded_time" "$recorded_commit")" == skip ]]; then
      log_skipped_artifact "$recorded_time" "$recorded_commit"
      rm -f "$errors"
      return 0
    fi
    if aws s3api put-object --bucket "$ARTIFACT_BUCKET" --key "$ARTIFACT_KEY" --body "$zip" \
      --metadata "pushline-push-received-at=$(push_time),pushline-commit=$COMMIT_SHA" \
      "${condition[@]}" >/dev/null 2>"$errors"; then
      log "artifact uploaded to s3://$ARTIFACT_BUCKET/$ARTIFACT_KEY"
      rm -f "$errors"
      return 0
    fi
    grep -qE 'PreconditionFailed|ConditionalRequestConflict|\((412|409)\)' "$errors" ||
      die "cannot upload the artifact to s3://$ARTIFACT_BUCKET/$ARTIFACT_KEY: $(tail -n 1 "$errors")"
    log "another build wrote s3://$ARTIFACT_BUCKET/$ARTIFACT_KEY meanwhile (try $attempt); deciding again"
  done
  rm -f "$errors"
  die "s3://$ARTIFACT_BUCKET/$ARTIFACT_KEY kept changing while this build tried to write it"
}

upload_artifact() {
  BRANCH_HEAD=$(branch_head)
  if [[ -n "${ARTIFACT_DIR:-}" ]]; then
    upload_artifact_to_dir "$1"
  else
    upload_artifact_to_s3 "$1"
  fi
}

main() {
  case "${1:-}" in
  check)
    validate_inputs
    check_tools
    ;;
  login) registry_login ;;
  image) build_image ;;
  artifact)
    if [[ "${CODEBUILD_BUILD_SUCCEEDING:-1}" != 1 ]]; then
      log "the build failed: no artifact, so no deployment"
      return 0
    fi
    upload_artifact "$(write_artifact)"
    ;;
  *) die "usage: pushline-build.sh check|login|image|artifact" ;;
  esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
