#!/usr/bin/env bash
# A real single-node Kubernetes for the deploy tests, built from source and cached outside the clone.
#
#   scripts/kube.sh build        build kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
#                                kube-proxy and kubectl (if not built yet); print the bin directory
#   scripts/kube.sh path         print where the binaries are (or would be) cached, build nothing
#   scripts/kube.sh images       build the node's images (pause, busybox, logship from deploy/Dockerfile)
#   scripts/kube.sh logship-image   build them if needed; print the logship image's OCI archive
#   scripts/kube.sh up           build what is missing, start a single-node cluster in its own network
#                                namespace (and an OpenSearch in it); print the admin kubeconfig path
#   scripts/kube.sh down         stop everything `up` started, unmount, remove cgroups and the namespace
#   scripts/kube.sh status       exit 0 and describe the cluster if it runs, else exit 3
#   scripts/kube.sh exec CMD...  run CMD inside the cluster's network namespace with KUBECONFIG set
#   scripts/kube.sh import FILE  import an OCI archive into the node's containerd
#
# Several clusters can run at once (one per LOGSHIP_KUBE_NAME, default `default`): each has its own
# network namespace (node 10.250.0.1, pods 10.244.0.0/24, Services 10.96.0.0/24, all living only in
# that namespace), containerd, cgroup root, kubelet root and pod log directory
# (/var/log/logship-kube/NAME/pods; /var/log/containers is the host's, as on any node), and
# /var/lib/logship-kube/NAME for host directories its pods use (the shipper's checkpoints).
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

# --- the node's images, built without a registry -------------------------------------------------

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE_IMAGE=localhost/logship-kube/python:3.11-bookworm
PAUSE_IMAGE=localhost/logship-kube/pause:1
BUSYBOX_IMAGE=localhost/logship-kube/busybox:1
# what the chart's default values pull (image.repository `logship`, tag = appVersion)
LOGSHIP_IMAGE="docker.io/library/logship:$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$ROOT/deploy/helm/logship/Chart.yaml")"

say() { echo "kube.sh: $*" >&2; }
die() { echo "kube.sh: $*" >&2; exit 1; }

images_dir() { echo "$(kube_dir)/images"; }

bah() {
    local store
    store="$(kube_dir)/buildah"
    buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs "$@"
}

need_debs() {
    local missing=() pkg
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    ((${#missing[@]})) || return 0
    say "installing from Debian: ${missing[*]}"
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# A Debian bookworm rootfs with Python 3.11, standing in for python:3.11-slim-bookworm (same Debian
# release; Python from Debian in /usr instead of a source build in /usr/local).
build_base_image() {
    bah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1 && return 0
    need_debs mmdebstrap buildah
    local tmp t=$SECONDS ctr
    tmp="$(mktemp -d "$(images_dir)/base.XXXXXX")"
    say "building $BASE_IMAGE with mmdebstrap (once)..."
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates,passwd \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        bookworm "$tmp/rootfs.tar" >&2
    ctr="$(bah from scratch)"
    bah add "$ctr" "$tmp/rootfs.tar" / >&2
    bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --cmd python3 "$ctr" >&2
    bah commit --quiet --format oci "$ctr" "$BASE_IMAGE" >&2
    bah rm "$ctr" >/dev/null
    rm -rf "$tmp"
    say "built $BASE_IMAGE in $((SECONDS - t))s"
}

# image from a directory tree: archive_from_dir DIR NAME ARCHIVE [buildah config args...]
archive_from_dir() {
    local dir="$1" name="$2" archive="$3" ctr
    shift 3
    ctr="$(bah from scratch)"
    bah copy "$ctr" "$dir" / >&2
    (($#)) && bah config "$@" "$ctr" >&2
    bah commit --quiet --format oci "$ctr" "$name" >&2
    bah rm "$ctr" >/dev/null
    rm -f "$archive.tmp"
    bah push --quiet "$name" "oci-archive:$archive.tmp:$name" >&2
    mv "$archive.tmp" "$archive"
}

build_pause_image() {
    local archive tmp
    archive="$(images_dir)/pause-1.oci.tar"
    [[ -s "$archive" ]] && return 0
    need_debs gcc libc6-dev buildah
    tmp="$(mktemp -d "$(images_dir)/pause.XXXXXX")"
    # The sandbox process: sleeps until told to stop, reaps nothing else.
    cat >"$tmp/pause.c" <<'EOF'
#include <signal.h>
#include <unistd.h>
static void stop(int sig) { (void)sig; _exit(0); }
int main(void) {
    signal(SIGINT, stop);
    signal(SIGTERM, stop);
    for (;;) pause();
}
EOF
    mkdir -p "$tmp/root"
    gcc -static -Os -o "$tmp/root/pause" "$tmp/pause.c"
    archive_from_dir "$tmp/root" "$PAUSE_IMAGE" "$archive" --entrypoint '["/pause"]'
    rm -rf "$tmp"
}

# Test pods run Debian's static busybox: a shell, printf, date, sleep, head, tr, seq.
build_busybox_image() {
    local archive tmp a
    archive="$(images_dir)/busybox-1.oci.tar"
    [[ -s "$archive" ]] && return 0
    need_debs busybox-static buildah
    tmp="$(mktemp -d "$(images_dir)/busybox.XXXXXX")"
    mkdir -p "$tmp/root/bin" "$tmp/root/tmp" "$tmp/root/etc"
    cp /bin/busybox "$tmp/root/bin/busybox"
    for a in $(/bin/busybox --list); do [[ "$a" == busybox ]] || ln -s busybox "$tmp/root/bin/$a"; done
    echo 'root:x:0:0:root:/:/bin/sh' >"$tmp/root/etc/passwd"
    echo 'root:x:0:' >"$tmp/root/etc/group"
    chmod 1777 "$tmp/root/tmp"
    archive_from_dir "$tmp/root" "$BUSYBOX_IMAGE" "$archive" --env PATH=/bin --cmd '["/bin/sh"]'
    rm -rf "$tmp"
}

# Everything the logship image is built from (the Dockerfile's context after .dockerignore).
source_key() {
    (cd "$ROOT" && {
        sha256sum deploy/Dockerfile .dockerignore pyproject.toml README.md
        find logship shipper aggregator -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 |
            sort -z | xargs -0 sha256sum
    } | sha256sum | cut -c1-16)
}

logship_archive() { echo "$(images_dir)/logship-$(source_key).oci.tar"; }

# The user-facing deploy/Dockerfile itself, built by buildah (no BuildKit, no registry) on the
# Debian base above; cached per content of its build context.
build_logship_image() {
    local archive tag t=$SECONDS
    archive="$(logship_archive)"
    [[ -s "$archive" ]] && return 0
    tag="localhost/logship-kube/logship:$(source_key)"
    say "building $LOGSHIP_IMAGE from deploy/Dockerfile with buildah..."
    # The build's RUN steps see this machine's CA bundle (pip may have to trust a proxy's CA); it is
    # mounted for the build only and is not in the image.
    local cas=()
    [[ -f /etc/ssl/certs/ca-certificates.crt ]] &&
        cas=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
    bah bud --quiet --isolation chroot --layers=false --pull=never -f "$ROOT/deploy/Dockerfile" \
        "${cas[@]}" --build-arg "PYTHON_IMAGE=$BASE_IMAGE" -t "$tag" "$ROOT" >&2
    rm -f "$archive.tmp"
    bah push --quiet "$tag" "oci-archive:$archive.tmp:$LOGSHIP_IMAGE" >&2
    mv "$archive.tmp" "$archive"
    # keep the storage small: only the base stays in it
    bah rmi "$tag" >/dev/null 2>&1 || true
    find "$(images_dir)" -maxdepth 1 -name 'logship-*.oci.tar' ! -newer "$archive" ! -path "$archive" \
        -mmin +60 -delete 2>/dev/null || true
    say "built $LOGSHIP_IMAGE in $((SECONDS - t))s ($archive)"
}

build_images() {
    mkdir -p "$(images_dir)"
    exec 7>"$(images_dir)/.lock"
    if ! flock -n 7; then
        say "another image build is running; waiting for it..."
        flock 7
    fi
    build_base_image
    build_pause_image
    build_busybox_image
    build_logship_image
    exec 7>&-
    images_dir
}

# --- the cluster ----------------------------------------------------------------------------------

NAME="${LOGSHIP_KUBE_NAME:-default}"
[[ "$NAME" =~ ^[a-z0-9][a-z0-9-]{0,20}$ ]] || die "LOGSHIP_KUBE_NAME may hold up to 21 lowercase letters, digits and '-'"
NETNS="logship-kube-$NAME"
NODE_IP=10.250.0.1
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/24
NODE_NAME="logship-$NAME"
CGROUP_ROOT="/logship-kube-$NAME"
POD_LOGS="/var/log/logship-kube/$NAME/pods"
RUNDIR="/run/logship-kube/$NAME"

inst_dir() { echo "$(kube_dir)/instances/$NAME"; }

nsx() { nsenter --net="/run/netns/$NETNS" "$@"; }

# start NAME CMD...: a process in the network namespace, detached, output in logs/NAME.log
start_proc() {
    local name="$1" dir
    shift
    dir="$(inst_dir)"
    setsid nsenter --net="/run/netns/$NETNS" "$@" </dev/null >"$dir/logs/$name.log" 2>&1 &
    echo $! >"$RUNDIR/$name.pid"
}

wait_for() {
    local what="$1" timeout="$2" log="$3" t=$SECONDS
    shift 3
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS - t > timeout)); then
            [[ -n "$log" && -f "$log" ]] && tail -n 30 "$log" >&2
            die "$what not ready within ${timeout}s${log:+; see $log}"
        fi
        sleep 0.5
    done
}

proc_alive() { [[ -f "$RUNDIR/$1.pid" ]] && kill -0 "$(cat "$RUNDIR/$1.pid")" 2>/dev/null; }

kc() { nsx "$(bin_dir)/kubectl" --kubeconfig "$(inst_dir)/admin.kubeconfig" "$@"; }

write_kubeconfig() {
    local file="$1" user="$2" token="$3" dir
    dir="$(inst_dir)"
    cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: logship-$NAME
    cluster: {server: "https://$NODE_IP:6443", certificate-authority: "$dir/pki/ca.crt"}
users:
  - name: $user
    user: {token: "$token"}
contexts:
  - name: logship-$NAME
    context: {cluster: logship-$NAME, user: $user}
current-context: logship-$NAME
EOF
}

make_pki() {
    local pki="$1"
    mkdir -p "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=logship-kube-ca" \
        -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
    cert() {
        local n="$1" subj="$2" ext="$3"
        openssl req -newkey rsa:2048 -nodes -subj "$subj" -keyout "$pki/$n.key" -out "$pki/$n.csr" 2>/dev/null
        openssl x509 -req -in "$pki/$n.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
            -days 30 -extfile <(printf '%s\n' "$ext") -out "$pki/$n.crt" 2>/dev/null
    }
    cert apiserver "/CN=kube-apiserver" "subjectAltName=IP:$NODE_IP,IP:10.96.0.1,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
    cert kubelet "/CN=$NODE_NAME" "subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME"
    openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

# the v1 hierarchies the cluster's root is made in; `all` adds the v2 one (runc also makes its
# cgroups there on a hybrid host), for clean-up
cgroup_hierarchies() {
    local d
    for d in /sys/fs/cgroup/*; do
        [[ -d "$d" && ! -L "$d" ]] || continue
        [[ "$(basename "$d")" == unified && "${1:-}" != all ]] && continue
        echo "$d"
    done
}

make_cgroup_root() {
    local h
    for h in $(cgroup_hierarchies); do
        mkdir -p "$h$CGROUP_ROOT"
        if [[ -f "$h/cpuset.cpus" ]]; then
            cat "$h/cpuset.cpus" >"$h$CGROUP_ROOT/cpuset.cpus"
            cat "$h/cpuset.mems" >"$h$CGROUP_ROOT/cpuset.mems"
        fi
    done
}

write_configs() {
    local dir="$1"
    mkdir -p "$dir/cni/net.d"
    cat >"$dir/containerd.toml" <<EOF
version = 2
root = "$dir/containerd"
state = "$RUNDIR/containerd"
[grpc]
  address = "$RUNDIR/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # without it every pod fails: runc cannot lower oom_score_adj without CAP_SYS_RESOURCE
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$RUNDIR/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
EOF
    cat >"$dir/cni/net.d/10-logship.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "logship-$NAME",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$RUNDIR/cni-ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
    cat >"$dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$RUNDIR/containerd.sock
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $dir/pki/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $dir/pki/kubelet.crt
tlsPrivateKeyFile: $dir/pki/kubelet.key
makeIPTablesUtilChains: false
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
resolvConf: /etc/resolv.conf
clusterDNS: [$NODE_IP]
clusterDomain: cluster.local
podLogsDir: $POD_LOGS
containerLogMaxSize: ${LOGSHIP_KUBE_LOG_MAX_SIZE:-1Mi}
containerLogMaxFiles: ${LOGSHIP_KUBE_LOG_MAX_FILES:-3}
containerLogMonitorInterval: 3s
serializeImagePulls: false
maxPods: 60
shutdownGracePeriod: 0s
EOF
}

up() {
    local t0=$SECONDS dir bins
    if [[ -e "/run/netns/$NETNS" ]]; then
        status >/dev/null 2>&1 && { say "cluster '$NAME' already runs"; echo "$(inst_dir)/admin.kubeconfig"; return 0; }
        say "cluster '$NAME' left over from an earlier run; tearing it down first"
        down
    fi
    need_debs etcd-server containerd runc containernetworking-plugins iptables conntrack openssl
    bins="$(build_kube)"
    "$ROOT/scripts/tools.sh" helm >/dev/null
    build_images >/dev/null
    local tb=$SECONDS
    dir="$(inst_dir)"
    rm -rf "$dir" "$RUNDIR"
    mkdir -p "$dir/logs" "$dir/etcd" "$RUNDIR" "$POD_LOGS"
    # From here on, a failure (or an interrupt) tears down whatever was started.
    trap 'rc=$?; if ((rc)); then say "start-up failed; tearing down"; down; fi' EXIT
    trap 'exit 130' INT TERM
    make_pki "$dir/pki"
    local admin ctl sched node proxy
    admin="$(openssl rand -hex 16)" ctl="$(openssl rand -hex 16)" sched="$(openssl rand -hex 16)"
    node="$(openssl rand -hex 16)" proxy="$(openssl rand -hex 16)"
    cat >"$dir/pki/tokens.csv" <<EOF
$admin,admin,admin,"system:masters"
$ctl,system:kube-controller-manager,system:kube-controller-manager
$sched,system:kube-scheduler,system:kube-scheduler
$node,system:node:$NODE_NAME,system:node:$NODE_NAME,"system:nodes"
$proxy,system:kube-proxy,system:kube-proxy
EOF
    echo "$admin" >"$dir/pki/admin.token"
    write_kubeconfig "$dir/admin.kubeconfig" admin "$admin"
    write_kubeconfig "$dir/controller-manager.kubeconfig" system:kube-controller-manager "$ctl"
    write_kubeconfig "$dir/scheduler.kubeconfig" system:kube-scheduler "$sched"
    write_kubeconfig "$dir/kubelet.kubeconfig" "system:node:$NODE_NAME" "$node"
    write_kubeconfig "$dir/kube-proxy.kubeconfig" system:kube-proxy "$proxy"
    write_configs "$dir"
    make_cgroup_root

    ip netns add "$NETNS"
    nsx ip link set lo up
    nsx ip addr add "$NODE_IP/32" dev lo
    # Service addresses are routed to lo so that kube-proxy's DNAT applies to the node's own traffic.
    nsx ip route add "$SERVICE_CIDR" dev lo
    nsx sysctl -qw net.ipv4.ip_forward=1

    start_proc etcd etcd --name "$NODE_NAME" --data-dir "$dir/etcd" \
        --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
        --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
        --initial-cluster "$NODE_NAME=http://127.0.0.1:2380" --logger zap --log-level warn
    wait_for etcd 60 "$dir/logs/etcd.log" nsx curl -fsS http://127.0.0.1:2379/health

    start_proc kube-apiserver "$bins/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
        --advertise-address="$NODE_IP" --bind-address=0.0.0.0 --secure-port=6443 \
        --service-cluster-ip-range="$SERVICE_CIDR" --authorization-mode=Node,RBAC \
        --token-auth-file="$dir/pki/tokens.csv" --client-ca-file="$dir/pki/ca.crt" \
        --tls-cert-file="$dir/pki/apiserver.crt" --tls-private-key-file="$dir/pki/apiserver.key" \
        --kubelet-client-certificate="$dir/pki/apiserver-kubelet-client.crt" \
        --kubelet-client-key="$dir/pki/apiserver-kubelet-client.key" \
        --service-account-key-file="$dir/pki/sa.pub" --service-account-signing-key-file="$dir/pki/sa.key" \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --kubelet-preferred-address-types=InternalIP,Hostname \
        --allow-privileged=true --profiling=false --v=0
    wait_for kube-apiserver 180 "$dir/logs/kube-apiserver.log" kc get --raw /readyz

    start_proc kube-controller-manager "$bins/kube-controller-manager" \
        --kubeconfig="$dir/controller-manager.kubeconfig" --use-service-account-credentials \
        --root-ca-file="$dir/pki/ca.crt" --service-account-private-key-file="$dir/pki/sa.key" \
        --leader-elect=false --bind-address=127.0.0.1 --profiling=false
    start_proc kube-scheduler "$bins/kube-scheduler" --kubeconfig="$dir/scheduler.kubeconfig" \
        --leader-elect=false --bind-address=127.0.0.1 --profiling=false

    start_proc containerd containerd --config "$dir/containerd.toml"
    wait_for containerd 60 "$dir/logs/containerd.log" ctr -a "$RUNDIR/containerd.sock" version
    local img
    for img in pause-1 busybox-1; do
        ctr -a "$RUNDIR/containerd.sock" -n k8s.io images import "$(images_dir)/$img.oci.tar" >&2
    done
    ctr -a "$RUNDIR/containerd.sock" -n k8s.io images import "$(logship_archive)" >&2

    start_proc kubelet "$bins/kubelet" --config="$dir/kubelet.yaml" --kubeconfig="$dir/kubelet.kubeconfig" \
        --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --root-dir="$dir/kubelet" --v=0
    start_proc kube-proxy "$bins/kube-proxy" --kubeconfig="$dir/kube-proxy.kubeconfig" \
        --proxy-mode=iptables --masquerade-all --cluster-cidr="$POD_CIDR" --hostname-override="$NODE_NAME" \
        --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 \
        --metrics-bind-address=127.0.0.1:10249 --healthz-bind-address=127.0.0.1:10256
    start_proc dns /usr/bin/python3 "$ROOT/scripts/kube_dns.py" "$NODE_IP" "https://$NODE_IP:6443" \
        "$dir/pki/admin.token" "$dir/pki/ca.crt"
    wait_for "node $NODE_NAME" 120 "$dir/logs/kubelet.log" \
        kc wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s
    wait_for "default ServiceAccount" 60 "$dir/logs/kube-controller-manager.log" \
        kc get serviceaccount default -n default
    if [[ "${LOGSHIP_KUBE_OPENSEARCH:-1}" == 1 ]]; then
        nsx "$ROOT/scripts/opensearch.sh" start --name "kube-$NAME" --port 9200 --fresh --bind "$NODE_IP" >/dev/null
    fi
    trap - EXIT INT TERM
    echo "$((SECONDS - tb))" >"$dir/up-seconds"
    say "cluster '$NAME' up in $((SECONDS - tb))s (${SECONDS}s including builds): node $NODE_NAME at $NODE_IP in netns $NETNS"
    echo "$dir/admin.kubeconfig"
}

stop_pid() {
    local name="$1" sig="${2:-TERM}" pid i
    [[ -f "$RUNDIR/$name.pid" ]] || return 0
    pid="$(cat "$RUNDIR/$name.pid")"
    if kill -0 "$pid" 2>/dev/null; then
        kill "-$sig" "$pid" 2>/dev/null || true
        for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$RUNDIR/$name.pid"
}

down() {
    local dir sock h m
    dir="$(inst_dir)"
    sock="$RUNDIR/containerd.sock"
    trap - EXIT
    set +e
    if [[ -e "/run/netns/$NETNS" ]]; then
        nsx "$ROOT/scripts/opensearch.sh" stop --name "kube-$NAME" >/dev/null 2>&1
    fi
    stop_pid kubelet
    stop_pid kube-proxy
    stop_pid dns
    if proc_alive containerd; then
        local id
        for id in $(ctr -a "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
            ctr -a "$sock" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1
        done
        sleep 1
        for id in $(ctr -a "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
            ctr -a "$sock" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1
        done
        for id in $(ctr -a "$sock" -n k8s.io containers ls -q 2>/dev/null); do
            ctr -a "$sock" -n k8s.io containers delete "$id" >/dev/null 2>&1
        done
    fi
    stop_pid containerd
    stop_pid kube-scheduler
    stop_pid kube-controller-manager
    stop_pid kube-apiserver
    stop_pid etcd
    # whatever is left in the cluster's cgroups (shims, containers) is killed
    for h in $(cgroup_hierarchies all); do
        [[ -d "$h$CGROUP_ROOT" ]] || continue
        find "$h$CGROUP_ROOT" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    done
    # shims started by this containerd (their socket address names its state directory)
    local pid
    for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $sock" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    sleep 0.5
    # the pods' network namespaces (containerd made them in /run/netns): the veths in this cluster's
    # namespace name their peers' namespaces
    if [[ -e "/run/netns/$NETNS" ]]; then
        local podns
        for podns in $(ip -n "$NETNS" -o link show type veth 2>/dev/null | grep -o 'link-netns cni-[0-9a-f-]*' | awk '{print $2}' | sort -u); do
            ip netns del "$podns" 2>/dev/null
        done
    fi
    # mounts under the kubelet root, containerd's root and state, deepest first
    for m in $(awk '{print $5}' /proc/self/mountinfo | grep -E "^($dir|$RUNDIR)/" | sort -r); do
        umount -l "$m" 2>/dev/null
    done
    for h in $(cgroup_hierarchies all); do
        [[ -d "$h$CGROUP_ROOT" ]] || continue
        find "$h$CGROUP_ROOT" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    [[ -e "/run/netns/$NETNS" ]] && ip netns del "$NETNS"
    # the node's log symlinks that point into this cluster's pod log directory
    find /var/log/containers -maxdepth 1 -type l -lname "$POD_LOGS/*" -delete 2>/dev/null
    rm -rf "/var/log/logship-kube/$NAME" "/var/lib/logship-kube/$NAME" "$RUNDIR"
    [[ -d "$dir" ]] && rm -rf "$dir/etcd" "$dir/containerd" "$dir/kubelet"
    set -e
    say "cluster '$NAME' is down"
}

status() {
    [[ -e "/run/netns/$NETNS" ]] || { echo "cluster '$NAME': not running"; return 3; }
    local p bad=0
    for p in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy dns; do
        proc_alive "$p" || { echo "cluster '$NAME': $p is not running"; bad=1; }
    done
    ((bad == 0)) || return 3
    kc get nodes -o wide || return 3
    echo "kubeconfig: $(inst_dir)/admin.kubeconfig (use: $0 exec kubectl ...)"
}

kube_exec() {
    local bins
    bins="$(bin_dir)"
    [[ -e "/run/netns/$NETNS" ]] || die "cluster '$NAME' is not running; start it with: $0 up"
    nsx env KUBECONFIG="$(inst_dir)/admin.kubeconfig" PATH="$bins:$(dirname "$("$ROOT/scripts/tools.sh" path helm)"):$PATH" "$@"
}

usage() {
    echo "usage: $0 build | path | images | logship-image | up | down | status | exec CMD... | import FILE" >&2
    exit 64
}

case "${1:-}" in
    build) build_kube ;;
    path) bin_dir ;;
    images) build_images ;;
    logship-image)
        build_images >/dev/null
        logship_archive
        ;;
    up) up ;;
    down) down ;;
    status) status ;;
    exec)
        shift
        kube_exec "$@"
        ;;
    import)
        [[ -n "${2:-}" ]] || usage
        ctr -a "$RUNDIR/containerd.sock" -n k8s.io images import "$2"
        ;;
    *) usage ;;
esac
