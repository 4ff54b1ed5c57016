#!/usr/bin/env bash
# A real single-node Kubernetes for the deploy tests, built from source and cached outside the clone.
#
#   scripts/kube.sh build        build kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
#                                kube-proxy and kubectl (if not built yet); print the bin directory
#   scripts/kube.sh path         print where the binaries are (or would be) cached, build nothing
#
# The binaries come from k8s.io/kubernetes on the Go module proxy. Its go.mod points every k8s.io
# staging module at ./staging/src/..., which the module zip does not carry, so the source is copied to
# the cache and each such replace is pointed at the published module of the same release instead.
# Cache: $LOGSHIP_KUBE_DIR, default /var/cache/logship/kube when writable, else ~/.cache/logship/kube;
# binaries in <cache>/<version>/bin. Concurrent builds wait for the first one (flock); a marker file
# written last says the set is complete. Progress goes to stderr; stdout carries only the path.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.34.4}"
# the staging modules are published as v0.<minor>.<patch> of the same release
KUBE_STAGING_VERSION="v0.${KUBE_VERSION#v1.}"
KUBE_COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

for d in /usr/local/go/bin "$HOME/go/bin"; do [[ -d "$d" ]] && PATH="$d:$PATH"; done
export PATH

kube_dir() {
    if [[ -n "${LOGSHIP_KUBE_DIR:-}" ]]; then
        echo "$LOGSHIP_KUBE_DIR"
    elif mkdir -p /var/cache/logship/kube 2>/dev/null && [[ -w /var/cache/logship/kube ]]; then
        echo /var/cache/logship/kube
    else
        echo "${XDG_CACHE_HOME:-$HOME/.cache}/logship/kube"
    fi
}

bin_dir() { echo "$(kube_dir)/${KUBE_VERSION}/bin"; }

# Without the version stamped in, the binaries report v0.0.0-master and helm's kubeVersion checks fail.
kube_ldflags() {
    local minor="${KUBE_VERSION#v1.}"
    minor="${minor%%.*}"
    local flags="-s -w" pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        flags+=" -X ${pkg}.gitVersion=${KUBE_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
        flags+=" -X ${pkg}.gitTreeState=clean"
    done
    echo "$flags"
}

built_ok() {
    local dir="$1" cmd
    [[ "$(cat "$dir/.complete" 2>/dev/null)" == "$(kube_ldflags)" ]] || return 1
    for cmd in "${KUBE_COMMANDS[@]}"; do [[ -x "$dir/$cmd" ]] || return 1; done
}

build_kube() {
    local dir root src
    dir="$(bin_dir)"
    root="$(dirname "$dir")"
    if built_ok "$dir"; then
        echo "$dir"
        return 0
    fi
    mkdir -p "$root"
    # One build at a time: parallel test sessions or CI steps wait for the first one.
    exec 8>"$root/.lock"
    if ! flock -n 8; then
        echo "kube.sh: another build of Kubernetes ${KUBE_VERSION} is running; waiting for it..." >&2
        flock 8
    fi
    if built_ok "$dir"; then
        echo "$dir"
        return 0
    fi
    command -v go >/dev/null || { echo "kube.sh: 'go' not found; install Go >= 1.24 to build Kubernetes" >&2; exit 1; }
    local start=$SECONDS
    echo "kube.sh: building Kubernetes ${KUBE_VERSION} (once; cached in $dir; ~10 min cold on 2 cores)..." >&2
    local mod
    mod="$(GOWORK=off GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" |
        sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
    [[ -d "$mod" ]] || { echo "kube.sh: go mod download of k8s.io/kubernetes@${KUBE_VERSION} gave no source" >&2; exit 1; }
    src="$root/src"
    rm -rf "$src"
    cp -r "$mod" "$src"
    chmod -R u+w "$src"
    rm -f "$src/go.work" "$src/go.work.sum"
    # every `replace k8s.io/X => ./staging/src/k8s.io/X` becomes the published module of this release
    local edits=() name
    while read -r name; do
        edits+=("-replace=${name}=${name}@${KUBE_STAGING_VERSION}")
    done < <(sed -n 's#^\s*\(k8s\.io/[^ ]*\) => \./staging/src/.*#\1#p' "$src/go.mod")
    ((${#edits[@]})) || { echo "kube.sh: no staging replaces found in $src/go.mod; the recipe no longer applies" >&2; exit 1; }
    (cd "$src" && GOWORK=off go mod edit "${edits[@]}")
    echo "kube.sh: pointed ${#edits[@]} staging modules at ${KUBE_STAGING_VERSION}" >&2
    mkdir -p "$dir"
    rm -f "$dir/.complete"
    local cmd t
    for cmd in "${KUBE_COMMANDS[@]}"; do
        t=$SECONDS
        (cd "$src" && GOWORK=off GOFLAGS="-mod=mod -trimpath" CGO_ENABLED=0 \
            go build -ldflags "$(kube_ldflags)" -o "$dir/$cmd.tmp" "./cmd/$cmd") >&2
        mv "$dir/$cmd.tmp" "$dir/$cmd"
        echo "kube.sh: built $cmd in $((SECONDS - t))s" >&2
    done
    "$dir/kubectl" version --client 2>/dev/null | grep -q "${KUBE_VERSION}" ||
        { echo "kube.sh: built kubectl does not report ${KUBE_VERSION}" >&2; exit 1; }
    kube_ldflags >"$dir/.complete"
    rm -rf "$src"
    echo "kube.sh: Kubernetes ${KUBE_VERSION} built in $((SECONDS - start))s" >&2
    echo "$dir"
}

usage() {
    echo "usage: $0 build | path" >&2
    exit 64
}

case "${1:-}" in
    build) build_kube ;;
    path) bin_dir ;;
    *) usage ;;
esac
