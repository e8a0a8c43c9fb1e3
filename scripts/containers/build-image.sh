#!/usr/bin/env bash
# Build the serving image of the workspace's model with podman: `bentoml build`, then
# `bentoml containerize --backend podman`. Prints the image reference on the last line.
#
# Usage (from the repository root, after `make container-setup`):
#   bash scripts/containers/build-image.sh [bentofile.yaml|bentofile.gpu.yaml]
#
# The image is named localhost/textclf[-gpu]:<release tag of the workspace> (`textclf release tag
# --no-status`: the content address of what the bento ships, so a rebuild of the same content
# reuses the name and podman's layer cache). It is a local build for tests and benchmarks: the
# release builds and pushes in CI (README "Release, deploy and roll back").
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

bentofile=${1:-bentofile.yaml}
[ -f "$bentofile" ] || die "$bentofile not found: run from the repository root"
env_file=$TEXTCLF_CONTAINERS/env
[ -f "$env_file" ] || die "$env_file is missing. Fix: run \`make container-setup\` first"
# shellcheck source=/dev/null
. "$env_file"
for file in artifacts/onnx/model.onnx artifacts/onnx/model.int8.onnx; do
  [ -f "$file" ] || die "$file is missing. Fix: run \`make repro\` (or \`dvc pull\`) first"
done

case $bentofile in
  *gpu*) name=localhost/textclf-gpu ;;
  *) name=localhost/textclf ;;
esac
tag=$(textclf release tag --no-status 2>/dev/null)
export BENTOML_HOME=$TEXTCLF_CONTAINERS/bentoml
work=$TEXTCLF_CONTAINERS/build
mkdir -p "$BENTOML_HOME" "$work/tmp"
logs=$TEXTCLF_CONTAINERS/logs
mkdir -p "$logs"

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
remove_empty_libpod_cgroups
echo "$name:$tag"
