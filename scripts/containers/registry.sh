#!/usr/bin/env bash
# A local OCI Distribution registry (Debian's docker-registry) on loopback, for image tests.
#
#   bash scripts/containers/registry.sh start|stop|status
#
# Listens on 127.0.0.1:$TEXTCLF_REGISTRY_PORT (default 5000), plain HTTP, no auth, manifest
# deletion enabled. Its storage is a temporary directory under $TEXTCLF_CONTAINERS that `stop`
# removes, so every start begins empty. Push to it with `podman push --tls-verify=false`.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$HERE/common.sh"

PORT=${TEXTCLF_REGISTRY_PORT:-5000}
if ! [[ $PORT =~ ^[0-9]{1,5}$ ]] || ((PORT < 1 || PORT > 65535)); then
  die "TEXTCLF_REGISTRY_PORT=$PORT is not a TCP port number (1-65535)"
fi
ADDRESS=127.0.0.1:$PORT
RUN_DIR=$TEXTCLF_CONTAINERS/registry
PID_FILE=$RUN_DIR/$PORT.pid
DIR_FILE=$RUN_DIR/$PORT.dir
START_TIMEOUT_S=20

usage() {
  echo "usage: $PROG start|stop|status   (port: TEXTCLF_REGISTRY_PORT, default 5000)" >&2
  exit 2
}

# The pid of the registry this script started on PORT, if it still runs.
running_pid() {
  local pid
  [[ -f $PID_FILE ]] || return 1
  pid=$(<"$PID_FILE")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == docker-regist* ]] || return 1
  echo "$pid"
}

# True when GET /v2/ on ADDRESS answers 200 (bash's /dev/tcp in a subshell: no curl needed).
answers() (
  exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
  printf 'GET /v2/ HTTP/1.0\r\nHost: %s\r\n\r\n' "$ADDRESS" >&3
  IFS= read -r -t 2 status <&3 || exit 1
  [[ $status == HTTP/1.?" 200"* ]]
) 2>/dev/null

start() {
  local pid dir deadline
  if pid=$(running_pid); then
    echo "$ADDRESS"
    return
  fi
  answers && die "$ADDRESS already answers, but not from a registry this script started: \
stop that process or pick another port (TEXTCLF_REGISTRY_PORT=...)"
  command -v docker-registry >/dev/null ||
    die "docker-registry is not installed: run \`make container-setup\` (scripts/containers/setup.sh)"

  mkdir -p "$RUN_DIR"
  cleanup_storage
  dir=$(mktemp -d "$RUN_DIR/$PORT.XXXXXX")
  echo "$dir" >"$DIR_FILE"
  mkdir "$dir/data"
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $ADDRESS
EOF
  setsid docker-registry serve "$dir/config.yml" </dev/null >"$dir/registry.log" 2>&1 &
  echo $! >"$PID_FILE"

  deadline=$((SECONDS + START_TIMEOUT_S))
  until answers; do
    if ! running_pid >/dev/null; then
      echo "$PROG: error: the registry exited; last lines of $dir/registry.log:" >&2
      tail -n 20 "$dir/registry.log" >&2
      rm -f "$PID_FILE"
      cleanup_storage
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      stop >/dev/null
      die "the registry did not answer on http://$ADDRESS/v2/ within ${START_TIMEOUT_S}s"
    fi
    sleep 0.2
  done
  echo "$ADDRESS"
}

cleanup_storage() {
  local dir
  [[ -f $DIR_FILE ]] || return 0
  dir=$(<"$DIR_FILE")
  # Only ever a directory this script made under RUN_DIR.
  [[ $dir == "$RUN_DIR/$PORT."* ]] && rm -rf -- "$dir"
  rm -f "$DIR_FILE"
}

stop() {
  local pid i
  if pid=$(running_pid); then
    kill "$pid"
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "stopped the registry on $ADDRESS"
  else
    echo "no registry of this script runs on $ADDRESS"
  fi
  rm -f "$PID_FILE"
  cleanup_storage
}

status() {
  local pid
  if pid=$(running_pid) && answers; then
    echo "running on $ADDRESS (pid $pid, storage $(<"$DIR_FILE"))"
  else
    echo "not running on $ADDRESS"
    return 1
  fi
}

[[ $# -eq 1 ]] || usage
case $1 in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) usage ;;
esac
