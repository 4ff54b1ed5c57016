#!/usr/bin/env bash
# A real single-node OpenSearch on this machine, for tests, the demo and benchmarks.
#
#   scripts/opensearch.sh start  [--name NAME] [--port PORT] [--heap SIZE] [--fresh] [--bind ADDR]
#                                [--cluster CLUSTER --seeds PORT,PORT,... --managers NAME,NAME,...] [-E key=value ...]
#   scripts/opensearch.sh stop   [--name NAME]
#   scripts/opensearch.sh status [--name NAME]
#   scripts/opensearch.sh url    [--name NAME]
#   scripts/opensearch.sh pid    [--name NAME]
#   scripts/opensearch.sh fetch                  # download + verify the distribution only
#
# The integration-test distribution (no security plugin) is downloaded once from Maven Central,
# verified against its published SHA-1, and kept in $LOGSHIP_CACHE (default ~/.cache/logship, or
# /var/cache/logship for root so the unprivileged user can traverse it). Each named instance has its
# own config, data and logs under $LOGSHIP_CACHE/instances/NAME. OpenSearch refuses to run as root,
# so as root the node runs as the system user `logship-os`, created on first use.
#
# --cluster makes the instance one node of a multi-node cluster on loopback instead of a single node:
# it joins the cluster named CLUSTER, finds its peers at the transport ports of --seeds (their HTTP
# ports; transport = HTTP + 100, as for every instance here) and, on the cluster's first start, elects
# its first cluster-manager among --managers (node names). Start the nodes at the same time: each one
# waits until the cluster has formed and is at least yellow.
set -euo pipefail

# Supported and tested: 2.19 (the default) and 3.3; OPENSEARCH_VERSION=3.3.0 runs the 3.x line (Java 21+).
OPENSEARCH_VERSION="${OPENSEARCH_VERSION:-2.19.6}"   # newest 2.19 patch on Maven Central
OPENSEARCH_MAJOR="${OPENSEARCH_VERSION%%.*}"
MAVEN_BASE="${MAVEN_BASE:-https://repo1.maven.org/maven2}"
RUN_USER="${LOGSHIP_OS_USER:-logship-os}"
if [[ $(id -u) -eq 0 ]]; then
  CACHE="${LOGSHIP_CACHE:-/var/cache/logship}"
else
  CACHE="${LOGSHIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/logship}"
fi

NAME=default
PORT=9200
HEAP=512m
FRESH=0
BIND=""
CLUSTER=""
SEEDS=""
MANAGERS=""
EXTRA=()

die() { echo "opensearch.sh: $*" >&2; exit 1; }
say() { echo "opensearch.sh: $*" >&2; }

cmd="${1:-}"; [[ -n "$cmd" ]] || die "usage: $0 start|stop|status|url|pid|fetch [--name NAME] [--port PORT]"
shift
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) NAME="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --heap) HEAP="$2"; shift 2 ;;
    --fresh) FRESH=1; shift ;;
    # also listen on ADDR (an address of a network namespace the caller runs this in)
    --bind) BIND="$2"; shift 2 ;;
    --cluster) CLUSTER="$2"; shift 2 ;;
    --seeds) SEEDS="$2"; shift 2 ;;
    --managers) MANAGERS="$2"; shift 2 ;;
    -E) EXTRA+=("$2"); shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done
[[ "$NAME" =~ ^[A-Za-z0-9_.-]+$ ]] || die "--name may only hold letters, digits, '.', '_' and '-'"
if [[ -n "$CLUSTER" ]]; then
  [[ "$CLUSTER" =~ ^[A-Za-z0-9_.-]+$ ]] || die "--cluster may only hold letters, digits, '.', '_' and '-'"
  [[ "$SEEDS" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--cluster needs --seeds PORT,PORT,... (the nodes' HTTP ports)"
  [[ "$MANAGERS" =~ ^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$ ]] || die "--cluster needs --managers NAME,NAME,..."
elif [[ -n "$SEEDS$MANAGERS" ]]; then
  die "--seeds and --managers only make sense with --cluster"
fi

# "a,b" -> "[\"a\", \"b\"]" (a YAML list); each item gets PREFIX and SUFFIX
yaml_list() {
  local IFS=, out="" item
  for item in $1; do out+="${out:+, }\"$2$item$3\""; done
  echo "[$out]"
}

DIST="$CACHE/opensearch-$OPENSEARCH_VERSION"
INST="${LOGSHIP_OS_INSTANCES:-$CACHE/instances}/$NAME"   # LOGSHIP_OS_INSTANCES: keep a test's nodes apart
PIDFILE="$INST/opensearch.pid"
PORTFILE="$INST/port"

java_home() {
  if [[ -n "${OPENSEARCH_JAVA_HOME:-}" ]]; then echo "$OPENSEARCH_JAVA_HOME"; return; fi
  local candidates=(/usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk-* /usr/lib/jvm/temurin-17*)
  local need=17
  if (( OPENSEARCH_MAJOR >= 3 )); then   # OpenSearch 3.x runs on Java 21 or newer
    need=21
    candidates=(/usr/lib/jvm/temurin-2[1-9]* /usr/lib/jvm/java-2[1-9]-openjdk-* /usr/lib/jvm/jdk-2[1-9]*)
  fi
  local d
  for d in "${candidates[@]}"; do
    [[ -x "$d/bin/java" ]] && { echo "$d"; return; }
  done
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]] && java_major "$JAVA_HOME/bin/java" "$need"; then
    echo "$JAVA_HOME"; return
  fi
  local j; j=$(command -v java) || die "no Java found: OpenSearch $OPENSEARCH_VERSION needs a JDK $need or newer"
  java_major "$j" "$need" || die "OpenSearch $OPENSEARCH_VERSION needs Java $need or newer; set OPENSEARCH_JAVA_HOME"
  dirname "$(dirname "$(readlink -f "$j")")"
}

# java_major JAVA N: does JAVA run version N or newer?
java_major() {
  local v; v=$("$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
  [[ -n "$v" ]] && (( ${v%%.*} >= $2 ))
}

fetch() {
  [[ -x "$DIST/bin/opensearch" ]] && return 0
  mkdir -p "$CACHE/dl"
  # the nodes of a cluster start in parallel: one downloads and unpacks, the others wait for it
  local lock="$CACHE/dl/opensearch-$OPENSEARCH_VERSION.lock"
  exec {lockfd}>"$lock"
  flock "$lockfd" || die "cannot lock $lock"
  if [[ -x "$DIST/bin/opensearch" ]]; then exec {lockfd}>&-; return 0; fi
  local zip="$CACHE/dl/opensearch-$OPENSEARCH_VERSION.zip"
  local url="$MAVEN_BASE/org/opensearch/distribution/integ-test-zip/opensearch/$OPENSEARCH_VERSION/opensearch-$OPENSEARCH_VERSION.zip"
  if [[ ! -s "$zip" ]]; then
    say "downloading OpenSearch $OPENSEARCH_VERSION from $url"
    curl -fSL --retry 3 --progress-bar -o "$zip.part" "$url" || die "download failed: $url"
    mv "$zip.part" "$zip"
  fi
  local want got
  # Maven Central publishes no .sha1 for some releases (3.3.0); those are pinned here instead.
  case "$OPENSEARCH_VERSION" in
    3.3.0) want=53a0dc940f81c567dd9fa2df197203607cf11ec3 ;;
    *) want=$(curl -fsSL --retry 3 "$url.sha1" | tr -d ' \n\r' | cut -c1-40) \
         || die "cannot fetch $url.sha1 to verify the download" ;;
  esac
  got=$(sha1sum "$zip" | cut -c1-40)
  if [[ "$want" != "$got" ]]; then
    rm -f "$zip"
    die "checksum mismatch for $zip (want $want, got $got); removed it, run again to re-download"
  fi
  say "verified sha1 $got"
  local tmp; tmp=$(mktemp -d "$CACHE/extract.XXXXXX")
  (cd "$tmp" && unzip -q "$zip")
  chmod -R a+rX "$tmp"
  rm -rf "$DIST"
  mv "$tmp/opensearch-$OPENSEARCH_VERSION" "$DIST"
  rmdir "$tmp"
  exec {lockfd}>&-
}

ensure_user() {
  [[ $(id -u) -eq 0 ]] || return 0
  if ! id "$RUN_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$RUN_USER" \
      || die "cannot create user $RUN_USER (OpenSearch refuses to run as root)"
  fi
  # the node must traverse every parent of the cache
  local d="$CACHE"
  while [[ "$d" != "/" ]]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
}

as_user() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u "$RUN_USER" -- "$@"; else "$@"; fi
}

running_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid; pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -q opensearch "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

instance_url() {
  local p="$PORT"
  [[ -f "$PORTFILE" ]] && p=$(cat "$PORTFILE")
  echo "http://127.0.0.1:$p"
}

start() {
  local pid
  if pid=$(running_pid); then
    say "instance '$NAME' is already running at $(instance_url) (pid $pid); nothing to do"
    instance_url
    return 0
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "port $PORT is already in use by another process; pick another with --port"
  fi
  fetch
  ensure_user
  mkdir -p "$INST"
  [[ $FRESH -eq 1 ]] && rm -rf "$INST/data"
  rm -rf "$INST/config"
  cp -r "$DIST/config" "$INST/config"
  mkdir -p "$INST/data" "$INST/logs"
  # jvm.options names logs/ and data/ relative to the distribution, which the node user cannot write
  sed -i -e "s#file=logs/#file=$INST/logs/#" -e "s#ErrorFile=logs/#ErrorFile=$INST/logs/#" \
    -e "s#HeapDumpPath=data#HeapDumpPath=$INST/data#" "$INST/config/jvm.options"
  {
    echo "node.name: $NAME"
    if [[ -n "$BIND" ]]; then echo "network.host: [\"127.0.0.1\", \"$BIND\"]"; else echo "network.host: 127.0.0.1"; fi
    echo "http.port: $PORT"
    echo "transport.port: $((PORT + 100))"
    if [[ -n "$CLUSTER" ]]; then
      local seeds="" p
      for p in ${SEEDS//,/ }; do seeds+="${seeds:+,}$((p + 100))"; done
      echo "cluster.name: $CLUSTER"
      echo "discovery.seed_hosts: $(yaml_list "$seeds" 127.0.0.1: "")"
      echo "cluster.initial_cluster_manager_nodes: $(yaml_list "$MANAGERS" "" "")"
    else
      echo "cluster.name: logship-$NAME"
      echo "discovery.type: single-node"
    fi
    echo "path.data: $INST/data"
    echo "path.logs: $INST/logs"
    # a shared CI disk may be nearly full; the watermarks would otherwise make indices read-only
    echo "cluster.routing.allocation.disk.threshold_enabled: false"
    echo "action.destructive_requires_name: false"
    for kv in "${EXTRA[@]+"${EXTRA[@]}"}"; do echo "${kv%%=*}: ${kv#*=}"; done
  } >> "$INST/config/opensearch.yml"
  echo "$PORT" > "$PORTFILE"
  rm -f "$PIDFILE"
  if [[ $(id -u) -eq 0 ]]; then chown -R "$RUN_USER" "$INST"; fi

  say "starting OpenSearch $OPENSEARCH_VERSION '$NAME' on 127.0.0.1:$PORT (heap $HEAP)"
  as_user env OPENSEARCH_JAVA_HOME="$(java_home)" OPENSEARCH_PATH_CONF="$INST/config" \
    OPENSEARCH_JAVA_OPTS="-Xms$HEAP -Xmx$HEAP ${OPENSEARCH_JAVA_OPTS:-}" \
    "$DIST/bin/opensearch" -d -p "$PIDFILE" >"$INST/logs/stdout.log" 2>&1 \
    || { tail -n 40 "$INST/logs/stdout.log" >&2; die "OpenSearch failed to start; see $INST/logs"; }

  local url; url=$(instance_url)
  local started=$SECONDS
  local deadline=$((SECONDS + ${OPENSEARCH_START_TIMEOUT:-180}))
  while (( SECONDS < deadline )); do
    if curl -fsS "$url/_cluster/health?wait_for_status=yellow&timeout=2s" >/dev/null 2>&1; then
      say "ready: $url (pid $(cat "$PIDFILE"))"
      echo "$url"
      return 0
    fi
    if [[ ! -f "$PIDFILE" ]] && (( SECONDS > started + 60 )); then
      tail -n 40 "$INST/logs/stdout.log" >&2
      die "OpenSearch wrote no pid file within 60s; see $INST/logs"
    fi
    if [[ -f "$PIDFILE" ]] && ! running_pid >/dev/null; then
      tail -n 40 "$INST/logs/logship-$NAME.log" >&2 2>/dev/null || true
      die "OpenSearch exited during start-up; see $INST/logs"
    fi
    sleep 1
  done
  # a node that answers but stays red holds an index whose primary it cannot allocate (left by an earlier run)
  local health; health=$(curl -fsS "$url/_cluster/health?filter_path=status,unassigned_shards" 2>/dev/null) || health=""
  if [[ "$health" == *'"red"'* ]]; then
    die "OpenSearch '$NAME' answers but its cluster stays red ($health): an index in $INST/data has a primary it cannot allocate; start with --fresh, or delete that index ($url/_cat/indices?health=red)"
  fi
  die "OpenSearch did not become healthy within ${OPENSEARCH_START_TIMEOUT:-180}s; see $INST/logs"
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    say "instance '$NAME' is not running"
    rm -f "$PIDFILE"
    return 0
  fi
  kill -CONT "$pid" 2>/dev/null || true   # a paused node cannot handle SIGTERM
  kill -TERM "$pid"
  for _ in $(seq 1 120); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; say "stopped '$NAME' (pid $pid)"; return 0; }
    sleep 0.5
  done
  say "instance '$NAME' did not stop within 60s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status)
    if pid=$(running_pid); then echo "running: $(instance_url) (pid $pid)"; else echo "not running"; exit 3; fi ;;
  url) instance_url ;;
  pid) running_pid || exit 3 ;;
  fetch) fetch; echo "$DIST" ;;
  *) die "unknown command '$cmd'; use start, stop, status, url, pid or fetch" ;;
esac
