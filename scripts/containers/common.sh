# shellcheck shell=bash
# Sourced by setup.sh and registry.sh: the state directory and small helpers.
#
# TEXTCLF_CONTAINERS is where podman's configuration, image storage and the local registry live.
# It is outside the repository on purpose: images take gigabytes.

TEXTCLF_CONTAINERS=${TEXTCLF_CONTAINERS:-/var/tmp/textclf-containers}
case $TEXTCLF_CONTAINERS in
  /*) ;;
  *) TEXTCLF_CONTAINERS=$PWD/$TEXTCLF_CONTAINERS ;;
esac
export TEXTCLF_CONTAINERS

# The name BentoML's generated Dockerfile starts FROM; built locally by setup.sh.
# shellcheck disable=SC2034 # used by the scripts that source this file
BASE_IMAGE=python:3.11-slim

PROG=${0##*/}

die() {
  echo "$PROG: error: $*" >&2
  exit 1
}

# Run "$@" with its output in LOG; on failure show the end of LOG and fail.
quietly() {
  local log=$1
  shift
  if ! "$@" >"$log" 2>&1; then
    echo "$PROG: error: '$*' failed; last lines of $log:" >&2
    tail -n 25 "$log" >&2
    exit 1
  fi
}

# Seconds since the epoch with microseconds (bash 5).
now() { echo "$EPOCHREALTIME"; }

# Print "LABEL  N.N s" for a part that started at START.
report_time() {
  local label=$1 start=$2 note=${3:-}
  awk -v l="$label" -v s="$start" -v e="$EPOCHREALTIME" -v n="$note" \
    'BEGIN { printf "  %-18s %6.1f s%s\n", l, e - s, (n == "" ? "" : "  (" n ")") }'
}

# Remove the empty cgroups podman's cgroupfs manager leaves behind (non-empty ones stay).
remove_empty_libpod_cgroups() {
  local dir
  for dir in /sys/fs/cgroup/*/libpod_parent; do
    [[ -d $dir ]] || continue
    find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}
