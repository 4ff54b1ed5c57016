#!/usr/bin/env bash
# Build a real Filebeat from the Go module proxy, once; later calls only print the binary path.
#   benchmarks/peers/build_filebeat.sh            -> prints the path of the cached binary
#   FILEBEAT_VERSION=v7.17.29 LOGSHIP_TOOLS=/var/cache/logship/tools  (defaults)
# The module is copied to a writable build dir and built inside it so its go.mod replace
# directives (forks of sarama, fsnotify, ...) apply exactly as in an upstream build.
set -euo pipefail
VERSION="${FILEBEAT_VERSION:-v7.17.29}"
TOOLS="${LOGSHIP_TOOLS:-/var/cache/logship/tools}"
BIN="$TOOLS/filebeat-${VERSION#v}"
if [[ -x "$BIN" ]]; then
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || { echo "build_filebeat: 'go' not found on PATH" >&2; exit 1; }
mkdir -p "$TOOLS"
BUILD="$TOOLS/build/beats-${VERSION#v}"
echo "build_filebeat: downloading github.com/elastic/beats/v7@$VERSION from the Go module proxy" >&2
DIR=$(go mod download -json "github.com/elastic/beats/v7@$VERSION" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error","no Dir")))')
if [[ ! -f "$BUILD/go.mod" ]]; then
  rm -rf "$BUILD"
  mkdir -p "$(dirname "$BUILD")"
  cp -r "$DIR" "$BUILD"
  chmod -R u+w "$BUILD"
fi
echo "build_filebeat: go build ./filebeat in $BUILD (several minutes on 2 cores)" >&2
cd "$BUILD"
export GOFLAGS="${GOFLAGS:-} -mod=mod -buildvcs=false"
nice -n 10 go build -p 1 -trimpath -ldflags "-s -w" -o "$BIN.tmp" ./filebeat
mv "$BIN.tmp" "$BIN"
echo "$BIN"
