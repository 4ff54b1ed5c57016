#!/usr/bin/env bash
# Build and cache the command-line tools the deploy checks need, outside the work tree.
#
#   scripts/tools.sh helm        build helm (if not built yet) and print its path
#   scripts/tools.sh path helm   print where helm is (or would be) cached, build nothing
#
# helm is built from source with `go install` from the Go module proxy: there is no other way to get
# a pinned helm binary here, and building it once (a few minutes on 2 cores) then reusing it keeps
# every later run instant. Cache: $LOGSHIP_TOOLS_DIR, default /var/cache/logship/tools when writable,
# else ~/.cache/logship/tools. Progress goes to stderr; stdout carries only the path.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
# What helm's own release build stamps in (from its client-go v0.37): the Kubernetes version that
# `helm template` and `helm lint` assume when no --kube-version is given. A bare `go install` would
# leave helm's fallback, 1.20, which fails every chart that declares kubeVersion >= 1.29.
HELM_K8S_MINOR="${HELM_K8S_MINOR:-37}"
HELM_LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    HELM_LDFLAGS+=" -X ${pkg}.k8sVersionMajor=1 -X ${pkg}.k8sVersionMinor=${HELM_K8S_MINOR}"
done

tools_dir() {
    if [[ -n "${LOGSHIP_TOOLS_DIR:-}" ]]; then
        echo "$LOGSHIP_TOOLS_DIR"
    elif mkdir -p /var/cache/logship/tools 2>/dev/null && [[ -w /var/cache/logship/tools ]]; then
        echo /var/cache/logship/tools
    else
        echo "${XDG_CACHE_HOME:-$HOME/.cache}/logship/tools"
    fi
}

helm_path() { echo "$(tools_dir)/helm-${HELM_VERSION}/bin/helm"; }

helm_ok() {
    local bin="$1"
    [[ -x "$bin" ]] && [[ "$(cat "$bin.ldflags" 2>/dev/null)" == "$HELM_LDFLAGS" ]] &&
        "$bin" version --short 2>/dev/null | grep -Eq "^${HELM_VERSION}(\+|$)"
}

build_helm() {
    local bin dir
    bin="$(helm_path)"
    dir="$(dirname "$bin")"
    if helm_ok "$bin"; then
        echo "$bin"
        return 0
    fi
    mkdir -p "$dir"
    # One build at a time: parallel test sessions or CI steps wait for the first one.
    exec 9>"$dir/.lock"
    flock 9
    if ! helm_ok "$bin"; then
        command -v go >/dev/null || { echo "tools.sh: 'go' not found; install Go >= 1.26 (helm v3.22 needs it) to build helm" >&2; exit 1; }
        echo "tools.sh: building helm ${HELM_VERSION} with go install (once; cached in $dir)..." >&2
        local start=$SECONDS
        GOBIN="$dir" GOFLAGS="${GOFLAGS:--trimpath}" CGO_ENABLED=0 \
            go install -ldflags "$HELM_LDFLAGS" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2
        printf '%s' "$HELM_LDFLAGS" >"$bin.ldflags"
        helm_ok "$bin" || { echo "tools.sh: built $bin but 'helm version' does not report ${HELM_VERSION}" >&2; exit 1; }
        echo "tools.sh: helm ${HELM_VERSION} built in $((SECONDS - start))s" >&2
    fi
    echo "$bin"
}

case "${1:-}" in
    helm) build_helm ;;
    path)
        [[ "${2:-}" == helm ]] || { echo "usage: $0 path helm" >&2; exit 64; }
        helm_path
        ;;
    *)
        echo "usage: $0 helm | path helm" >&2
        exit 64
        ;;
esac
