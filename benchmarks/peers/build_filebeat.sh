#!/usr/bin/env bash
# Build a real Filebeat from the Go module proxy, once; later calls only print the binary path.
#   benchmarks/peers/build_filebeat.sh            -> prints the path of the cached binary
#   FILEBEAT_VERSION=v7.17.29 LOGSHIP_TOOLS=/var/cache/logship/tools  (defaults)
#   FILEBEAT_VERSION=v9.3.0   -> Filebeat 9.3.0 (see below)
# The module is copied to a writable build dir and built inside it so its go.mod replace
# directives (forks of sarama, fsnotify, ...) apply exactly as in an upstream build.
#
# Filebeat 9.x: the proxy serves the v9 sources of github.com/elastic/beats/v7 only as a pseudo-version
# (the v9 tags do not match the module path's major version), and the checksum database has no entry
# for it, so GONOSUMDB covers that one module; its go.mod pins a Go toolchain that links against
# runtime internals, which Go >= 1.23 allows only with -checklinkname=0.
set -euo pipefail
VERSION="${FILEBEAT_VERSION:-v7.17.29}"
TOOLS="${LOGSHIP_TOOLS:-/var/cache/logship/tools}"
BIN="$TOOLS/filebeat-${VERSION#v}"
if [[ -x "$BIN" ]]; then
  echo "$BIN"
  exit 0
fi
MODULE_VERSION="$VERSION"
LDFLAGS="-s -w"
case "$VERSION" in
  v9.3.0)
    MODULE_VERSION="v7.0.0-alpha2.0.20251031181001-be9871f5dab9"  # the commit tagged v9.3.0
    export GONOSUMDB="github.com/elastic/beats/v7${GONOSUMDB:+,$GONOSUMDB}"
    LDFLAGS="$LDFLAGS -checklinkname=0"
    ;;
esac
command -v go >/dev/null || { echo "build_filebeat: 'go' not found on PATH" >&2; exit 1; }
mkdir -p "$TOOLS"
BUILD="$TOOLS/build/beats-${VERSION#v}"
echo "build_filebeat: downloading github.com/elastic/beats/v7@$MODULE_VERSION from the Go module proxy" >&2
DIR=$(go mod download -json "github.com/elastic/beats/v7@$MODULE_VERSION" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error","no Dir")))')
if [[ ! -f "$BUILD/go.mod" ]]; then
  rm -rf "$BUILD"
  mkdir -p "$(dirname "$BUILD")"
  cp -r "$DIR" "$BUILD"
  chmod -R u+w "$BUILD"
fi
echo "build_filebeat: go build ./filebeat in $BUILD (several minutes on 2 cores)" >&2
cd "$BUILD"
export GOFLAGS="${GOFLAGS:-} -mod=mod -buildvcs=false"
# the module's go.mod may ask for a newer toolchain than the one installed; build with the local one
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
nice -n 10 go build -p 1 -trimpath -ldflags "$LDFLAGS" -o "$BIN.tmp" ./filebeat
mv "$BIN.tmp" "$BIN"
echo "$BIN"
