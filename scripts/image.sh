#!/usr/bin/env bash
# The jifen image: one image, the five service binaries (docs/images.md).
#
#   scripts/image.sh build               `make image`: release binaries, then the image
#   scripts/image.sh test                `make image-test` (run by `make test`): builds the same
#                                        recipe offline from target/debug and checks it
#   scripts/image.sh check-containerfile the Containerfile agrees with the layout below
#   scripts/image.sh layout              prints the layout
#
# Engines, in order: docker (when `docker info` reaches a daemon), podman, buildah, each building
# the Containerfile. When the base images cannot be pulled (no registry here), or with
# JIFEN_IMAGE_OFFLINE=1, the image is assembled offline with Debian's buildah from scratch: the
# binaries, the shared libraries they link (`ldd`), the loader, /etc/passwd and /etc/group with
# the nonroot user, CA certificates, the time zones and /tmp — what gcr.io/distroless/cc-debian12
# provides — and the same configuration as the Containerfile. buildah keeps its storage in the
# project (.tools/containers, vfs driver, chroot isolation: no daemon, no kernel overlay needed).
#
# Environment: IMAGE_PROFILE=release|debug (default release), JIFEN_IMAGE_OFFLINE=1,
# JIFEN_IMAGE_NAME (default localhost/jifen), JIFEN_IMAGE_SOURCE (the source label; default the
# git remote `origin`), CARGO.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD

# --- The layout, written once --------------------------------------------------------------------
# The Containerfile mirrors every line of this block (`check-containerfile` compares them).
BINARIES=(gateway members declarations evaluations grading)
BIN_DIR=/usr/local/bin
IMAGE_USER=65532:65532
IMAGE_WORKDIR=/tmp
IMAGE_ENV=(TZ=Asia/Shanghai JIFEN_JWT_KEYS_DIR=/etc/jifen/keys JIFEN_EVIDENCE_DIR=/var/lib/jifen/evidence)
IMAGE_CMD="$BIN_DIR/jifen-gateway"
LABEL_KEYS=(title description licenses version revision source)
RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
RUST_IMAGE=rust:1.95-bookworm
# What the runtime base provides, and what the offline build puts in (besides the libraries that
# `ldd` names and the binaries): the image test checks each path.
SYSTEM_PATHS=(
  /etc/passwd /etc/group /etc/nsswitch.conf
  /etc/ssl/certs/ca-certificates.crt
  /usr/share/zoneinfo/Asia/Shanghai /usr/share/zoneinfo/UTC
  /tmp /home/nonroot
)
# -------------------------------------------------------------------------------------------------

CARGO=${CARGO:-cargo}
PROFILE=${IMAGE_PROFILE:-release}
NAME=${JIFEN_IMAGE_NAME:-localhost/jifen}
VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE=${JIFEN_IMAGE_SOURCE:-$(git remote get-url origin 2>/dev/null || echo unknown)}
LICENSE=$(sed -n '/^\[workspace.package\]/,/^\[/s/^license = "\(.*\)"/\1/p' Cargo.toml)
TOOLS=$ROOT_DIR/.tools/containers
BUILDAH=(buildah --root "$TOOLS/storage" --runroot "$TOOLS/run" --storage-driver vfs)

CONTAINERS=()
IMAGES=()
# Whatever this run created in the buildah storage and still holds goes on exit (vfs storage is a
# full copy per layer and container: it grows fast).
cleanup() {
  local c
  for c in "${CONTAINERS[@]}"; do "${BUILDAH[@]}" rm "$c" >/dev/null 2>&1 || true; done
  for c in "${IMAGES[@]}"; do "${BUILDAH[@]}" rmi -f "$c" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

log() { printf 'image: %s\n' "$*" >&2; }
die() { printf 'image: FAIL: %s\n' "$*" >&2; exit 1; }

label_value() {
  case $1 in
    title) echo jifen ;;
    description)
      local names
      names=$(printf 'jifen-%s, ' "${BINARIES[@]}")
      echo "jifen party-member points services: ${names%, }"
      ;;
    licenses) echo "$LICENSE" ;;
    version) echo "$VERSION" ;;
    revision) echo "$REVISION" ;;
    source) echo "$SOURCE" ;;
  esac
}

apt_install() {
  command -v apt-get >/dev/null || die "$* missing and no apt-get to install it"
  log "installing $* (apt)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null; }
}

need_buildah() {
  command -v buildah >/dev/null || apt_install buildah
  command -v jq >/dev/null || apt_install jq
  [[ -f /etc/ssl/certs/ca-certificates.crt ]] || apt_install ca-certificates
  [[ -d /usr/share/zoneinfo/Asia ]] || apt_install tzdata
  mkdir -p "$TOOLS/storage" "$TOOLS/run"
}

layout() {
  printf 'binaries   %s\n' "${BINARIES[@]/#/$BIN_DIR/jifen-}"
  printf 'user       %s\nworkdir    %s\ncmd        ["%s"]\nentrypoint []\n' "$IMAGE_USER" "$IMAGE_WORKDIR" "$IMAGE_CMD"
  printf 'env        %s\n' "${IMAGE_ENV[@]}"
  for k in "${LABEL_KEYS[@]}"; do printf 'label      org.opencontainers.image.%s=%s\n' "$k" "$(label_value "$k")"; done
  printf 'system     %s\n' "${SYSTEM_PATHS[@]}"
  printf 'libraries  what ldd names for the binaries, and the loader\n'
  printf 'base       %s (Containerfile) or scratch (offline)\n' "$RUNTIME_IMAGE"
}

# The Containerfile's instructions, one per line (continuations joined).
instructions() { sed -e ':a' -e '/\\$/N; s/\\\n//; ta' Containerfile | sed -E 's/[[:space:]]+/ /g'; }

check_containerfile() {
  local ins errors=0
  ins=$(instructions)
  expect() { grep -qxF -- "$1" <<<"$ins" || { log "Containerfile lacks: $1"; errors=$((errors + 1)); }; }
  expect "ARG RUST_IMAGE=$RUST_IMAGE"
  expect "ARG RUNTIME_IMAGE=$RUNTIME_IMAGE"
  expect "USER $IMAGE_USER"
  expect "WORKDIR $IMAGE_WORKDIR"
  expect "ENTRYPOINT []"
  expect "CMD [\"$IMAGE_CMD\"]"
  expect "ENV ${IMAGE_ENV[*]}"
  expect "COPY --from=build ${BINARIES[*]/#//out/jifen-} $BIN_DIR/"
  local labels
  labels=$(grep '^LABEL ' <<<"$ins" || true)
  for k in "${LABEL_KEYS[@]}"; do
    grep -q "org.opencontainers.image.$k=" <<<"$labels" || { log "Containerfile lacks the label $k"; errors=$((errors + 1)); }
  done
  for k in title description licenses; do
    grep -qF "org.opencontainers.image.$k=\"$(label_value "$k")\"" <<<"$labels" || { log "the label $k is not \"$(label_value "$k")\""; errors=$((errors + 1)); }
  done
  grep -q "cargo build --release --locked --workspace --bins" <<<"$ins" || { log "Containerfile does not build as make image does"; errors=$((errors + 1)); }
  [[ $(grep -c '^ENV ' <<<"$ins") == 1 && $(grep -c '^LABEL ' <<<"$ins") == 1 ]] || { log "one ENV and one LABEL instruction expected"; errors=$((errors + 1)); }
  ((errors == 0)) || die "the Containerfile and scripts/image.sh disagree ($errors)"
  log "Containerfile agrees with the layout"
}

cargo_build() {
  local args=(build --locked --workspace --bins)
  # The debug image is `make test`'s check of the recipe: its binaries are built with every
  # target's features, as nextest builds them next, so the dependencies compile once, not twice
  # (a build of `--bins` alone unifies other features and rebuilds nearly every crate).
  [[ $PROFILE == release ]] && args+=(--release) || args=(build --locked --workspace --all-targets)
  log "$CARGO ${args[*]}"
  "$CARGO" "${args[@]}"
}

# Copies $1 (a file on this host) into the root $2 at the same path, resolving symlinks: the real
# file at its real path, and the name that was asked for as a symlink to it.
copy_resolved() {
  local path=$1 root=$2 real canon
  real=$(realpath "$path")
  mkdir -p "$root$(dirname "$real")"
  cp --preserve=mode "$real" "$root$real"
  canon="$(realpath "$(dirname "$path")")/$(basename "$path")"
  if [[ $canon != "$real" && ! -e $root$canon ]]; then
    mkdir -p "$root$(dirname "$canon")"
    ln -s "$real" "$root$canon"
  fi
}

# Fills the mounted root $1 with the layout.
populate() {
  local root=$1 bindir=target/$PROFILE b lib
  [[ $PROFILE == release ]] || bindir=target/debug
  # Debian's merged /usr: /lib and /lib64 are links into /usr.
  mkdir -p "$root/usr/lib/x86_64-linux-gnu" "$root/usr/lib64" "$root$BIN_DIR" "$root/etc/ssl/certs" "$root/usr/share"
  ln -s usr/lib "$root/lib"
  ln -s usr/lib64 "$root/lib64"
  for b in "${BINARIES[@]}"; do
    [[ -x $bindir/jifen-$b ]] || die "$bindir/jifen-$b is missing"
    install -m 0755 "$bindir/jifen-$b" "$root$BIN_DIR/jifen-$b"
  done
  # Every library the binaries link, and the loader (the ELF interpreter).
  for lib in $(for b in "${BINARIES[@]}"; do ldd "$bindir/jifen-$b"; done | grep -oE '/[^ ]+' | sort -u); do
    copy_resolved "$lib" "$root"
  done
  cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat >"$root/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
EOF
  printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n' >"$root/etc/nsswitch.conf"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  cp -a /usr/share/zoneinfo "$root/usr/share/zoneinfo"
  install -d -m 1777 "$root/tmp"
  install -d -m 0700 -o 65532 -g 65532 "$root/home/nonroot"
}

# Builds the image offline into the project's buildah storage; prints its name.
build_offline() {
  local tag=$1 ctr mnt e k
  need_buildah
  ctr=$("${BUILDAH[@]}" from --name "jifen-build-$$" scratch)
  CONTAINERS+=("$ctr")
  mnt=$("${BUILDAH[@]}" mount "$ctr")
  populate "$mnt"
  "${BUILDAH[@]}" umount "$ctr" >/dev/null
  local config=(--user "$IMAGE_USER" --workingdir "$IMAGE_WORKDIR" --entrypoint '[]' --cmd "[\"$IMAGE_CMD\"]" --os linux --arch amd64)
  for e in "${IMAGE_ENV[@]}"; do config+=(--env "$e"); done
  for k in "${LABEL_KEYS[@]}"; do config+=(--label "org.opencontainers.image.$k=$(label_value "$k")"); done
  "${BUILDAH[@]}" config "${config[@]}" "$ctr"
  "${BUILDAH[@]}" commit --quiet --rm "$ctr" "$tag" >/dev/null
  log "built $tag offline (buildah, $PROFILE binaries)"
}

# docker, podman or buildah building the Containerfile; fails when the bases cannot be pulled.
build_containerfile() {
  local tag=$1 engine
  local args=(-f Containerfile --build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" --build-arg "SOURCE=$SOURCE" -t "$tag" .)
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    engine=(docker)
    export DOCKER_BUILDKIT=1
  elif command -v podman >/dev/null; then
    engine=(podman)
  elif command -v buildah >/dev/null; then
    engine=("${BUILDAH[@]}")
    mkdir -p "$TOOLS/storage" "$TOOLS/run"
  else
    log "no docker daemon, podman or buildah"
    return 1
  fi
  log "${engine[0]}: pulling $RUNTIME_IMAGE"
  timeout 60 "${engine[@]}" pull "$RUNTIME_IMAGE" >/dev/null 2>&1 || { log "cannot pull $RUNTIME_IMAGE"; return 1; }
  timeout 60 "${engine[@]}" pull "$RUST_IMAGE" >/dev/null 2>&1 || { log "cannot pull $RUST_IMAGE"; return 1; }
  if [[ ${engine[0]} == buildah ]]; then
    "${engine[@]}" bud --layers "${args[@]}"
  else
    "${engine[@]}" build "${args[@]}"
  fi
}

build() {
  local tag="$NAME:$VERSION-${REVISION:0:12}"
  if [[ ${JIFEN_IMAGE_OFFLINE:-0} != 1 ]] && build_containerfile "$tag"; then
    log "built $tag from the Containerfile"
    return
  fi
  log "building offline (JIFEN_IMAGE_OFFLINE=${JIFEN_IMAGE_OFFLINE:-0})"
  cargo_build
  build_offline "$tag"
  "${BUILDAH[@]}" tag "$tag" "$NAME:latest"
  mkdir -p target/image
  rm -f target/image/jifen.tar
  "${BUILDAH[@]}" push --quiet "$tag" "docker-archive:target/image/jifen.tar:$tag" >/dev/null
  log "$tag is in .tools/containers (buildah ${BUILDAH[*]:1} images);"
  log "target/image/jifen.tar loads with 'docker load -i' or 'podman load -i'"
}

# --- The image test ------------------------------------------------------------------------------
# Runs a command in the container $1 (`buildah run`, chroot isolation: the image's user, environment
# and working directory, its root and nothing else) and prints its output. buildah 1.28 sometimes
# loses a short-lived process's output (exit status 0, nothing printed: seen 1 time in 9 here), so
# an empty output is tried again, twice at most.
run_in() {
  local ctr=$1 out status attempt
  shift
  for attempt in 1 2 3; do
    status=0
    out=$("${BUILDAH[@]}" run --isolation chroot "$ctr" -- "$@" 2>&1 </dev/null) || status=$?
    [[ -n $out || $status != 0 ]] && break
    log "empty output from $* (attempt $attempt)"
  done
  printf '%s\n' "$out"
  return "$status"
}

image_test() {
  local started=$SECONDS tag="localhost/jifen-test:$$" ctr mnt b k e out
  check_containerfile
  PROFILE=${IMAGE_PROFILE:-debug}
  need_buildah
  cargo_build
  IMAGES+=("$tag")
  build_offline "$tag"

  # The configuration.
  local config
  config=$("${BUILDAH[@]}" inspect --type image "$tag" | jq '.OCIv1.config')
  local user
  user=$(jq -r '.User' <<<"$config")
  [[ $user =~ ^[0-9]+:[0-9]+$ && ${user%%:*} != 0 && ${user##*:} != 0 ]] || die "user is '$user', not a numeric non-root user"
  [[ $user == "$IMAGE_USER" ]] || die "user $user, layout says $IMAGE_USER"
  log "config: User $user"
  for k in "${LABEL_KEYS[@]}"; do
    local v
    v=$(jq -r --arg k "org.opencontainers.image.$k" '.Labels[$k] // ""' <<<"$config")
    [[ -n $v ]] || die "label org.opencontainers.image.$k missing"
    log "config: label org.opencontainers.image.$k=$v"
  done
  [[ $(jq -c '.Entrypoint // []' <<<"$config") == '[]' ]] || die "an entrypoint is set: $(jq -c .Entrypoint <<<"$config")"
  [[ $(jq -c '.Cmd' <<<"$config") == "[\"$IMAGE_CMD\"]" ]] || die "Cmd is $(jq -c .Cmd <<<"$config")"
  [[ $(jq -r '.Cmd[0]' <<<"$config") == "$BIN_DIR"/jifen-* ]] || die "Cmd is not a jifen binary"
  log "config: Entrypoint [] Cmd $(jq -c .Cmd <<<"$config") WorkingDir $(jq -r .WorkingDir <<<"$config")"
  for e in "${IMAGE_ENV[@]}"; do
    jq -e --arg e "$e" '.Env | index($e)' <<<"$config" >/dev/null || die "Env lacks $e"
  done
  [[ $(jq -r .WorkingDir <<<"$config") == "$IMAGE_WORKDIR" ]] || die "WorkingDir"

  # The file system.
  ctr=$("${BUILDAH[@]}" from --name "jifen-test-$$" "$tag")
  CONTAINERS+=("$ctr")
  mnt=$("${BUILDAH[@]}" mount "$ctr")
  for b in sh bash dash ash zsh busybox; do
    [[ -z $(find "$mnt" -name "$b" \( -type f -o -type l \) -print -quit) ]] || die "the image holds a shell: $b"
  done
  [[ ! -e $mnt/bin/sh && ! -e $mnt/usr/bin/sh ]] || die "/bin/sh exists"
  for p in "${SYSTEM_PATHS[@]}" "${BINARIES[@]/#/$BIN_DIR/jifen-}"; do
    [[ -e $mnt$p ]] || die "$p is missing"
  done
  [[ $(stat -c %a "$mnt/tmp") == 1777 ]] || die "/tmp is not 1777"
  grep -q '^nonroot:x:65532:65532:' "$mnt/etc/passwd" || die "no nonroot user in /etc/passwd"
  log "files: no shell; ${#SYSTEM_PATHS[@]} system paths and ${#BINARIES[@]} binaries present; /tmp 1777"
  "${BUILDAH[@]}" umount "$ctr" >/dev/null

  # Each binary runs inside the image, as the image's user, with the image's libraries only.
  for b in "${BINARIES[@]}"; do
    out=$(run_in "$ctr" "$BIN_DIR/jifen-$b" --help) || die "jifen-$b --help failed in the image: $out"
    grep -q '^Usage: jifen-' <<<"$out" || die "jifen-$b --help printed: $out"
    log "run: jifen-$b --help: $(head -1 <<<"$out")"
  done
  # As uid 65532: /tmp is writable, the rest of the root is not.
  out=$(run_in "$ctr" "$BIN_DIR/jifen-gateway" gen-keys --dir /tmp/keys --kid t) || die "gen-keys into /tmp failed: $out"
  if out=$(run_in "$ctr" "$BIN_DIR/jifen-gateway" gen-keys --dir /etc/jifen/keys --kid t); then
    die "the image's user could write to /etc: the process does not run as 65532"
  fi
  mnt=$("${BUILDAH[@]}" mount "$ctr")
  [[ $(stat -c %u:%g "$mnt/tmp/keys/t.key.pem") == "$IMAGE_USER" ]] || die "a file written in /tmp is not owned by $IMAGE_USER"
  log "run: as $IMAGE_USER, gen-keys writes /tmp/keys and is refused /etc/jifen/keys"
  "${BUILDAH[@]}" umount "$ctr" >/dev/null
  log "OK in $((SECONDS - started)) s ($PROFILE binaries; image and container removed)"
}

case ${1:-build} in
  build) build ;;
  test) image_test ;;
  check-containerfile) check_containerfile ;;
  layout) layout ;;
  *) die "usage: $0 [build|test|check-containerfile|layout]" ;;
esac
