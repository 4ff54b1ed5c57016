#!/usr/bin/env bash
# Build Fluent Bit (a benchmark peer) once from the source tarball and build script in the shared
# peers folder; later calls only print the binary path.
#   benchmarks/peers/build_fluentbit.sh     -> prints the path of the cached binary
#   LOGSHIP_FLUENTBIT_SRC=../shared/peers/fluent-bit LOGSHIP_TOOLS=/var/cache/logship/tools  (defaults)
# The source tree is not on any package registry reachable here, so without that folder the
# benchmarks report Fluent Bit as "not measured" and this script says why.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VERSION="${FLUENTBIT_VERSION:-5.1.1}"
TOOLS="${LOGSHIP_TOOLS:-/var/cache/logship/tools}"
SRC="${LOGSHIP_FLUENTBIT_SRC:-$(cd "$HERE/../../.." && pwd)/shared/peers/fluent-bit}"
OUT="$TOOLS/fluent-bit-$VERSION"
BIN="$OUT/bin/fluent-bit"
if [[ -x "$BIN" ]]; then
  echo "$BIN"
  exit 0
fi
if [[ ! -f "$SRC/build.sh" ]]; then
  echo "build_fluentbit: $SRC/build.sh not found; Fluent Bit will be reported as not measured" >&2
  exit 1
fi
mkdir -p "$TOOLS"
echo "build_fluentbit: building Fluent Bit $VERSION into $OUT (about 5 minutes on 2 cores)" >&2
OUT="$OUT" nice -n 10 bash "$SRC/build.sh" >&2
[[ -x "$BIN" ]] || { echo "build_fluentbit: the build finished without $BIN" >&2; exit 1; }
echo "$BIN"
