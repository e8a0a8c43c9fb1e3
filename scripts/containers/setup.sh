#!/usr/bin/env bash
# Prepare rootful podman on this machine for the project's image builds and image tests.
#
#   sudo bash scripts/containers/setup.sh        (CI: as root on a fresh Debian bookworm machine)
#
# 1. installs podman, buildah, runc, catatonit, mmdebstrap, docker-registry and skopeo from Debian;
# 2. writes a project-local podman configuration under $TEXTCLF_CONTAINERS
#    (default /var/tmp/textclf-containers) and $TEXTCLF_CONTAINERS/env, which exports it;
# 3. builds the local base image python:3.11-slim (the bento's Dockerfile starts FROM it and no
#    container registry is reachable) from a Debian minbase rootfs made with mmdebstrap.
# Every step is skipped when already done; TEXTCLF_REBUILD_BASE=1 rebuilds the base image.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$HERE/common.sh"

# catatonit is podman's `--init` (a Recommends, which --no-install-recommends leaves out).
PACKAGES=(podman buildah runc catatonit mmdebstrap docker-registry skopeo)
SUITE=bookworm
DEBIAN_BASE=localhost/textclf-debian:$SUITE
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
STATE=$TEXTCLF_CONTAINERS
LOGS=$STATE/logs

[[ $EUID -eq 0 ]] || die "run as root (the project uses rootful podman): sudo bash $0"
command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian bookworm"
mkdir -p "$STATE" "$LOGS"
# One setup at a time per state directory (CI jobs may share a machine).
exec 9>"$STATE/.setup.lock"
flock 9

# --- 1. Debian packages ------------------------------------------------------------------------
install_packages() {
  local missing=() pkg
  for pkg in "${PACKAGES[@]}"; do
    if [[ $(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null) != installed ]]; then
      missing+=("$pkg")
    fi
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    PACKAGES_NOTE="already installed"
    return
  fi
  export DEBIAN_FRONTEND=noninteractive
  quietly "$LOGS/apt-update.log" apt-get update -q
  quietly "$LOGS/apt-install.log" apt-get install -y -q --no-install-recommends "${missing[@]}"
  PACKAGES_NOTE="installed ${missing[*]}"
  # Debian's docker-registry starts its own service on :5000 where systemd runs; the project
  # starts its registry with registry.sh instead, on the same port.
  if command -v systemctl >/dev/null && systemctl is-active --quiet docker-registry 2>/dev/null; then
    systemctl disable --now --quiet docker-registry
    PACKAGES_NOTE+="; stopped the docker-registry service (registry.sh runs the registry)"
  fi
}

# --- 2. configuration --------------------------------------------------------------------------
# Write stdin to FILE atomically (a temp file renamed over it).
write_file() {
  local file=$1 tmp
  tmp=$(mktemp "$file.XXXXXX")
  cat >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$file"
}

# containers.conf for podman; with an argument, the extra [containers] lines of the build copy.
containers_conf() {
  local extra=${1:-} nofile
  nofile=$(ulimit -Hn)
  cat <<EOF
# Written by scripts/containers/setup.sh; rerun it instead of editing this file.
[containers]
# The shell's limits cannot be raised inside containers: pass them explicitly.
default_ulimits = ["nofile=$nofile:$nofile", "nproc=32768:32768"]
# Containers (and build steps) share the host's network: services answer on its loopback.
netns = "host"
$extra
[engine]
# crun fails on this host's hybrid cgroups and rlimits; there is no systemd to manage cgroups.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$STATE/events.log"
EOF
}

write_config() {
  [[ -s $HOST_CA_BUNDLE ]] || die "$HOST_CA_BUNDLE is missing: install ca-certificates"
  mkdir -p "$STATE/storage" "$STATE/run" "$STATE/build"

  containers_conf | write_file "$STATE/containers.conf"
  # Builds only: TLS to the package registries is intercepted by a local CA, so build steps
  # see the host's CA bundle, and uv (BentoML's installer) is told to trust it. Kept out of
  # containers.conf so that running images do not get these mounts.
  printf '# Mounted at /etc/uv/uv.toml during image builds.\nsystem-certs = true\n' |
    write_file "$STATE/build/uv.toml"
  containers_conf "$(
    printf 'volumes = [\n  "%s:%s:ro",\n  "%s:/etc/uv/uv.toml:ro",\n]' \
      "$HOST_CA_BUNDLE" "$HOST_CA_BUNDLE" "$STATE/build/uv.toml"
  )" | write_file "$STATE/containers.build.conf"

  write_file "$STATE/storage.conf" <<EOF
# Written by scripts/containers/setup.sh. Images live here, not in /var/lib/containers.
[storage]
driver = "overlay"
graphroot = "$STATE/storage"
runroot = "$STATE/run"
EOF

  # TEXTCLF_PULL_REGISTRY (e.g. docker.io, where the GPU image's CUDA base lives): search it
  # for short names. Unset (the default, and on this project's offline machines): no search.
  local search=""
  [[ -z ${TEXTCLF_PULL_REGISTRY:-} ]] || search="\"$TEXTCLF_PULL_REGISTRY\""
  write_file "$STATE/registries.conf" <<EOF
# Written by scripts/containers/setup.sh. Short names (python:3.11-slim) resolve to the local
# images first; only TEXTCLF_PULL_REGISTRY, when set, is searched for the others.
unqualified-search-registries = [$search]

# The local OCI registry of scripts/containers/registry.sh (plain HTTP on loopback).
[[registry]]
location = "127.0.0.1:5000"
insecure = true
EOF

  local q
  q=$(printf %q "$STATE")
  write_file "$STATE/env" <<EOF
# Written by scripts/containers/setup.sh: \`source\` it to use the project's podman setup.
export CONTAINERS_CONF=$q/containers.conf CONTAINERS_STORAGE_CONF=$q/storage.conf CONTAINERS_REGISTRIES_CONF=$q/registries.conf
# For image builds: CONTAINERS_CONF=\$TEXTCLF_CONTAINERS_BUILD_CONF podman build ...
export TEXTCLF_CONTAINERS=$q TEXTCLF_CONTAINERS_BUILD_CONF=$q/containers.build.conf
EOF
}

# --- 3. base image -----------------------------------------------------------------------------
# The Debian mirror apt uses for SUITE here, from sources.list (one-line) or *.sources (deb822).
debian_mirror() {
  local files=() f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] && files+=("$f")
  done
  [[ ${#files[@]} -gt 0 ]] || return 0
  awk -v suite="$SUITE" '
    function has(list, word,   n, i, parts) {
      n = split(list, parts, /[ \t]+/)
      for (i = 1; i <= n; i++) if (parts[i] == word) return 1
      return 0
    }
    function flush() {
      if (types != "" && has(types, "deb") && has(suites, suite) && enabled != "no" && uris != "") {
        split(uris, u, /[ \t]+/); print u[1]; found = 1; exit
      }
      types = uris = suites = enabled = ""
    }
    FNR == 1 { flush() }
    /^[ \t]*#/ { next }
    FILENAME ~ /\.sources$/ {
      if ($0 ~ /^[ \t]*$/) { flush(); next }
      key = tolower($1); sub(/:$/, "", key); value = $0; sub(/^[^:]*:[ \t]*/, "", value)
      if (key == "types") types = value
      else if (key == "uris") uris = value
      else if (key == "suites") suites = value
      else if (key == "enabled") enabled = tolower(value)
      next
    }
    $1 == "deb" {
      line = $0; sub(/\[[^]]*\]/, "", line); split(line, f, /[ \t]+/)
      if (f[3] == suite) { print f[2]; found = 1; exit }
    }
    END { if (!found) flush() }
  ' "${files[@]}"
}

recipe_hash() {
  { cat "$HERE/python-base.Containerfile"; echo "$SUITE $1"; } | sha256sum | cut -c1-16
}

build_base_image() {
  local mirror recipe old_id current tmp
  # TEXTCLF_DEBIAN_MIRROR: for hosts whose apt is not Debian (GitHub's Ubuntu runners).
  mirror=${TEXTCLF_DEBIAN_MIRROR:-$(debian_mirror)}
  [[ -n $mirror ]] || die "no 'deb' source for $SUITE in /etc/apt/sources.list{,.d/*}: \
set TEXTCLF_DEBIAN_MIRROR to a Debian mirror, e.g. http://deb.debian.org/debian"
  recipe=$(recipe_hash "$mirror")
  read -r old_id current < <(podman image inspect \
    --format '{{.Id}} {{ index .Labels "org.textclf.base-recipe" }}' "$BASE_IMAGE" 2>/dev/null ||
    true) || true
  if [[ ${current:-} == "$recipe" && ${TEXTCLF_REBUILD_BASE:-0} != 1 ]]; then
    BASE_NOTE="$BASE_IMAGE up to date"
    return
  fi

  tmp=$(mktemp -d "$STATE/base.XXXXXX")
  # shellcheck disable=SC2064 # expand tmp now: it is local to this function
  trap "rm -rf '$tmp'" EXIT

  local start
  start=$(now)
  quietly "$LOGS/mmdebstrap.log" mmdebstrap --variant=minbase --include=ca-certificates \
    "$SUITE" "$tmp/rootfs.tar" "$mirror"
  report_time mmdebstrap "$start" "$mirror, $(du -m "$tmp/rootfs.tar" | cut -f1) MB"

  start=$(now)
  quietly "$LOGS/base-import.log" podman import --change 'CMD ["/bin/bash"]' \
    "$tmp/rootfs.tar" "$DEBIAN_BASE"
  report_time "podman import" "$start" "$DEBIAN_BASE"

  start=$(now)
  quietly "$LOGS/base-build.log" podman build --pull=never --network=host \
    --build-arg "DEBIAN_BASE=$DEBIAN_BASE" --label "org.textclf.base-recipe=$recipe" \
    --tag "$BASE_IMAGE" --file "$HERE/python-base.Containerfile" "$tmp"
  report_time "python image" "$start" "$BASE_IMAGE"
  # Only the python image is kept (its layers hold the rootfs), not the one it replaced.
  podman image rm --force "$DEBIAN_BASE" >/dev/null 2>&1 || true
  if [[ -n ${old_id:-} && $old_id != "$(podman image inspect --format '{{.Id}}' "$BASE_IMAGE")" ]]; then
    podman image rm "$old_id" >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
  trap - EXIT
  BASE_NOTE="built $BASE_IMAGE, $(podman image inspect --format '{{.Size}}' "$BASE_IMAGE" |
    awk '{ printf "%d MB", $1 / 1e6 }')"
}

# --- main --------------------------------------------------------------------------------------
echo "Container setup in $STATE"
total=$(now)

start=$(now)
PACKAGES_NOTE=
install_packages
report_time "apt packages" "$start" "$PACKAGES_NOTE"

start=$(now)
write_config
report_time "configuration" "$start"

# shellcheck source=/dev/null
source "$STATE/env"
start=$(now)
BASE_NOTE=
build_base_image
remove_empty_libpod_cgroups
report_time "base image" "$start" "$BASE_NOTE"

report_time total "$total"
echo "Use it: source $STATE/env"
