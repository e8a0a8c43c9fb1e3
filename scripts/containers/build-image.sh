#!/usr/bin/env bash
# Build an image of the workspace's model with podman, as the release would. Prints the image
# reference on the last line.
#
# Usage (from the repository root, after `make container-setup`):
#   bash scripts/containers/build-image.sh [cpu|gpu|drift|runner] [--save <archive.tar>]
#
# --save also writes the image as an OCI archive (what the review's push job verifies and pushes).
# cpu/gpu: the serving bento (`bentoml build -f bentofile[.gpu].yaml`, then
# `bentoml containerize --backend podman`); drift: images/drift.Containerfile over exactly the
# files images/drift.yaml lists (`textclf release context`). The image is named
# localhost/textclf[-gpu|-drift]:<the workspace's release tag>: the content address of what it
# ships, so a rebuild of the same content reuses the name and podman's layer cache. A local build
# for tests and benchmarks: the review builds and pushes in CI (docs/release.md).
# runner: the review runners' image, images/review-runner.Containerfile over the lock
# (`textclf release runner-context`), named localhost/textclf-runner:<r- tag>; RUNNER_BASE
# overrides its BASE (GitHub's actions-runner image, which this machine may not reach).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

variant=${1:-cpu}
archive=
if [ "${2:-}" = --save ]; then
  archive=${3:?--save needs a path}
fi
env_file=$TEXTCLF_CONTAINERS/env
[ -f "$env_file" ] || die "$env_file is missing. Fix: run \`make container-setup\` first"
# shellcheck source=/dev/null
. "$env_file"
logs=$TEXTCLF_CONTAINERS/logs
work=$TEXTCLF_CONTAINERS/build
mkdir -p "$logs" "$work/tmp"

# Images built from a Containerfile over a staged context: how to stage it, and build options.
containerfile='' stage=() build_args=()
case $variant in
  cpu | gpu)
    name=localhost/textclf bentofile=bentofile.yaml tag_cmd=(textclf release tag --image serving)
    [ "$variant" = cpu ] || name=localhost/textclf-gpu bentofile=bentofile.gpu.yaml
    ;;
  drift)
    name=localhost/textclf-drift tag_cmd=(textclf release tag --image drift)
    containerfile=images/drift.Containerfile stage=(textclf release context --variant drift)
    ;;
  runner)
    name=localhost/textclf-runner tag_cmd=(textclf release runner-tag)
    containerfile=images/review-runner.Containerfile stage=(textclf release runner-context)
    [ -z "${RUNNER_BASE:-}" ] || build_args=(--build-arg "BASE=$RUNNER_BASE")
    ;;
  *) die "unknown variant '$variant': give cpu, gpu, drift or runner" ;;
esac
tag=$("${tag_cmd[@]}")

if [ -n "$containerfile" ]; then
  context=$(mktemp -d "$work/tmp/$variant.XXXXXX")
  trap 'rm -rf "$context"' EXIT
  start=$(now)
  quietly "$logs/$variant-context.log" "${stage[@]}" "$context"
  quietly "$logs/$variant-build.log" env CONTAINERS_CONF="$TEXTCLF_CONTAINERS_BUILD_CONF" \
    podman build "${build_args[@]}" --file "$context/$containerfile" --tag "$name:$tag" "$context"
  report_time "podman build" "$start"
else
  export BENTOML_HOME=$TEXTCLF_CONTAINERS/bentoml
  mkdir -p "$BENTOML_HOME"
  start=$(now)
  bentoml delete --yes "textclf:$tag" >/dev/null 2>&1 || true
  quietly "$logs/bentoml-build.log" bentoml build -f "$bentofile" --version "$tag" .
  report_time "bentoml build" "$start"
  # BentoML resolves the bento's dockerfile_template inside its temporary build context and
  # refuses any path outside the working directory: build from the state directory, with the
  # temporary context under it. The build-only containers.conf mounts the CA bundle and uv's
  # certificate setting (TLS to PyPI is intercepted here).
  start=$(now)
  (
    cd "$work"
    quietly "$logs/containerize.log" \
      env TMPDIR="$work/tmp" CONTAINERS_CONF="$TEXTCLF_CONTAINERS_BUILD_CONF" \
      bentoml containerize --backend podman "textclf:$tag" -t "$name:$tag"
  )
  report_time "bentoml containerize" "$start"
fi
if [ -n "$archive" ]; then
  start=$(now)
  rm -f "$archive"
  quietly "$logs/save.log" podman save --format oci-archive --output "$archive" "$name:$tag"
  report_time "podman save" "$start" "$archive"
fi
remove_empty_libpod_cgroups
echo "$name:$tag"
