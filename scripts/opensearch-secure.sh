#!/usr/bin/env bash
# A real single-node OpenSearch WITH the security plugin (TLS on HTTP and transport, basic auth), for
# tests of HTTPS + credentials. The plain node of scripts/opensearch.sh stays untouched.
#
#   OPENSEARCH_SECURE_PASSWORD=... scripts/opensearch-secure.sh start --certs DIR [--name NAME] [--port PORT]
#                                       [--user USER] [--heap SIZE]
#   scripts/opensearch-secure.sh stop|purge|pid|status [--name NAME]   # purge: stop + delete its data
#   scripts/opensearch-secure.sh url [--name NAME]
#   scripts/opensearch-secure.sh fetch         # prepare the distribution with the plugin installed only
#
# --certs DIR must hold PEM files (keys in PKCS#8): ca.pem, node.pem, node-key.pem, admin.pem,
# admin-key.pem; the node certificate's subject must be CN=node,O=logship-test and the admin's
# CN=admin,O=logship-test unless NODE_DN / ADMIN_DN say otherwise. tests/faults/pki.py makes them.
# USER (default logship) gets the password from $OPENSEARCH_SECURE_PASSWORD (never on the command
# line), bcrypt-hashed with the plugin's own tools/hash.sh, and the backend role "admin" (all_access).
#
# Maven Central has no opensearch-security build for OpenSearch 2.19.6 (2.19.3.0 and 2.19.4.0 are the
# newest 2.19 builds there), and a plugin only loads into the exact OpenSearch version it was built
# for, so this node runs OpenSearch 2.19.4 with security 2.19.4.0: same 2.19 REST API as the plain node.
# The distribution is copied to $CACHE/opensearch-$VERSION-security before the plugin is installed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VERSION="${OPENSEARCH_SECURE_VERSION:-2.19.4}"
PLUGIN_VERSION="${OPENSEARCH_SECURITY_PLUGIN_VERSION:-$VERSION.0}"
MAVEN_BASE="${MAVEN_BASE:-https://repo1.maven.org/maven2}"
RUN_USER="${LOGSHIP_OS_USER:-logship-os}"
if [[ $(id -u) -eq 0 ]]; then
  CACHE="${LOGSHIP_CACHE:-/var/cache/logship}"
else
  CACHE="${LOGSHIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/logship}"
fi
NODE_DN="${NODE_DN:-CN=node,O=logship-test}"
ADMIN_DN="${ADMIN_DN:-CN=admin,O=logship-test}"

NAME=secure
PORT=9250
HEAP=512m
CERTS=""
USER_NAME=logship
die() { echo "opensearch-secure.sh: $*" >&2; exit 1; }
say() { echo "opensearch-secure.sh: $*" >&2; }

cmd="${1:-}"; [[ -n "$cmd" ]] || die "usage: $0 start|stop|status|url|pid|fetch [--name NAME] [--port PORT] [--certs DIR]"
shift
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) NAME="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --heap) HEAP="$2"; shift 2 ;;
    --certs) CERTS="$2"; shift 2 ;;
    --user) USER_NAME="$2"; shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done
[[ "$NAME" =~ ^[A-Za-z0-9_.-]+$ ]] || die "--name may only hold letters, digits, '.', '_' and '-'"
[[ "$USER_NAME" =~ ^[A-Za-z0-9_.-]+$ ]] || die "--user may only hold letters, digits, '.', '_' and '-'"

BASE_DIST="$CACHE/opensearch-$VERSION"
DIST="$CACHE/opensearch-$VERSION-security"
INST="$CACHE/instances/$NAME"
PIDFILE="$INST/opensearch.pid"

java_home() {
  if [[ -n "${OPENSEARCH_JAVA_HOME:-}" ]]; then echo "$OPENSEARCH_JAVA_HOME"; return; fi
  for d in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk-* /usr/lib/jvm/temurin-17*; do
    [[ -x "$d/bin/java" ]] && { echo "$d"; return; }
  done
  local j; j=$(command -v java) || die "no Java found: install a JDK 17 (apt-get install openjdk-17-jre-headless)"
  dirname "$(dirname "$(readlink -f "$j")")"
}

fetch() {
  [[ -f "$DIST/plugins/opensearch-security/plugin-descriptor.properties" ]] && return 0
  mkdir -p "$CACHE/dl"
  exec 9>"$CACHE/dl/.secure-fetch.lock"
  flock 9   # two test runs preparing the same copy at once would trample each other
  [[ -f "$DIST/plugins/opensearch-security/plugin-descriptor.properties" ]] && return 0
  OPENSEARCH_VERSION="$VERSION" "$HERE/opensearch.sh" fetch >/dev/null
  local zip="$CACHE/dl/opensearch-security-$PLUGIN_VERSION.zip"
  local url="$MAVEN_BASE/org/opensearch/plugin/opensearch-security/$PLUGIN_VERSION/opensearch-security-$PLUGIN_VERSION.zip"
  if [[ ! -s "$zip" ]]; then
    say "downloading the security plugin $PLUGIN_VERSION from $url"
    curl -fSL --retry 3 --progress-bar -o "$zip.part" "$url" || die "download failed: $url"
    mv "$zip.part" "$zip"
  fi
  local want got
  want=$(curl -fsSL --retry 3 "$url.sha1" | tr -d ' \n\r' | cut -c1-40) || die "cannot fetch $url.sha1 to verify the download"
  got=$(sha1sum "$zip" | cut -c1-40)
  [[ "$want" == "$got" ]] || { rm -f "$zip"; die "checksum mismatch for $zip (want $want, got $got); removed it, run again"; }
  local tmp; tmp=$(mktemp -d "$CACHE/secure-dist.XXXXXX")
  cp -a "$BASE_DIST/." "$tmp/"
  OPENSEARCH_JAVA_HOME="$(java_home)" "$tmp/bin/opensearch-plugin" install --batch "file://$zip" >"$tmp/plugin-install.log" 2>&1 \
    || { tail -n 20 "$tmp/plugin-install.log" >&2; rm -rf "$tmp"; die "installing the security plugin failed"; }
  chmod -R a+rX "$tmp"
  rm -rf "$DIST"
  mv "$tmp" "$DIST"
  say "prepared $DIST (OpenSearch $VERSION + opensearch-security $PLUGIN_VERSION)"
}

running_pid() { "$HERE/opensearch.sh" pid --name "$NAME" 2>/dev/null; }

start() {
  local pid
  if pid=$(running_pid); then
    say "instance '$NAME' is already running (pid $pid); nothing to do"
    echo "https://127.0.0.1:$(cat "$INST/port")"
    return 0
  fi
  [[ -n "$CERTS" ]] || die "--certs DIR is required (ca.pem node.pem node-key.pem admin.pem admin-key.pem)"
  for f in ca.pem node.pem node-key.pem admin.pem admin-key.pem; do
    [[ -s "$CERTS/$f" ]] || die "--certs $CERTS: $f is missing (make the files with tests/faults/pki.py)"
  done
  [[ -n "${OPENSEARCH_SECURE_PASSWORD:-}" ]] || die "set OPENSEARCH_SECURE_PASSWORD to the password for user '$USER_NAME'"
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "port $PORT is already in use by another process; pick another with --port"
  fi
  fetch
  if [[ $(id -u) -eq 0 ]] && ! id "$RUN_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$RUN_USER" \
      || die "cannot create user $RUN_USER (OpenSearch refuses to run as root)"
  fi
  local d="$CACHE"
  while [[ "$d" != "/" ]]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done

  # Always fresh: the security index is seeded from the files below only when it does not exist yet.
  rm -rf "$INST"
  mkdir -p "$INST/data" "$INST/logs"
  cp -r "$DIST/config" "$INST/config"
  sed -i -e "s#file=logs/#file=$INST/logs/#" -e "s#ErrorFile=logs/#ErrorFile=$INST/logs/#" \
    -e "s#HeapDumpPath=data#HeapDumpPath=$INST/data#" "$INST/config/jvm.options"
  # the plugin only reads certificate files from inside the config directory
  cp "$CERTS"/{ca.pem,node.pem,node-key.pem,admin.pem,admin-key.pem} "$INST/config/"

  local hash
  hash=$(OPENSEARCH_JAVA_HOME="$(java_home)" bash "$DIST/plugins/opensearch-security/tools/hash.sh" \
           -env OPENSEARCH_SECURE_PASSWORD 2>/dev/null | grep -E '^\$2[aby]\$' | tail -n 1) \
    || die "hashing the password with the plugin's tools/hash.sh failed"
  [[ -n "$hash" ]] || die "tools/hash.sh printed no bcrypt hash"
  cat > "$INST/config/opensearch-security/internal_users.yml" <<EOF
_meta:
  type: "internalusers"
  config_version: 2
$USER_NAME:
  hash: "$hash"
  reserved: false
  backend_roles: ["admin"]
  description: "test user with all_access"
EOF
  cat >> "$INST/config/opensearch.yml" <<EOF
cluster.name: logship-$NAME
node.name: $NAME
network.host: 127.0.0.1
http.port: $PORT
transport.port: $((PORT + 100))
discovery.type: single-node
path.data: $INST/data
path.logs: $INST/logs
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
plugins.security.ssl.transport.pemcert_filepath: node.pem
plugins.security.ssl.transport.pemkey_filepath: node-key.pem
plugins.security.ssl.transport.pemtrustedcas_filepath: ca.pem
plugins.security.ssl.transport.enforce_hostname_verification: false
plugins.security.ssl.http.enabled: true
plugins.security.ssl.http.pemcert_filepath: node.pem
plugins.security.ssl.http.pemkey_filepath: node-key.pem
plugins.security.ssl.http.pemtrustedcas_filepath: ca.pem
plugins.security.allow_unsafe_democertificates: false
plugins.security.allow_default_init_securityindex: true
plugins.security.authcz.admin_dn: ["$ADMIN_DN"]
plugins.security.nodes_dn: ["$NODE_DN"]
plugins.security.audit.type: noop
plugins.security.enable_snapshot_restore_privilege: true
plugins.security.check_snapshot_restore_write_privileges: true
plugins.security.restapi.roles_enabled: ["all_access"]
EOF
  echo "$PORT" > "$INST/port"
  if [[ $(id -u) -eq 0 ]]; then chown -R "$RUN_USER" "$INST"; fi
  chmod 600 "$INST/config/node-key.pem" "$INST/config/admin-key.pem"

  say "starting OpenSearch $VERSION + security '$NAME' on https://127.0.0.1:$PORT (heap $HEAP)"
  local as=(); [[ $(id -u) -eq 0 ]] && as=(runuser -u "$RUN_USER" --)
  "${as[@]+"${as[@]}"}" env OPENSEARCH_JAVA_HOME="$(java_home)" OPENSEARCH_PATH_CONF="$INST/config" \
    OPENSEARCH_JAVA_OPTS="-Xms$HEAP -Xmx$HEAP ${OPENSEARCH_JAVA_OPTS:-}" \
    "$DIST/bin/opensearch" -d -p "$PIDFILE" >"$INST/logs/stdout.log" 2>&1 \
    || { tail -n 40 "$INST/logs/stdout.log" >&2; die "OpenSearch failed to start; see $INST/logs"; }

  local url="https://127.0.0.1:$PORT" started=$SECONDS
  local deadline=$((SECONDS + ${OPENSEARCH_START_TIMEOUT:-240}))
  while (( SECONDS < deadline )); do
    # unauthenticated endpoint: 200 + "UP" once the security index is initialised
    if curl -fsS --cacert "$CERTS/ca.pem" "$url/_plugins/_security/health" 2>/dev/null | grep -q '"UP"'; then
      say "ready: $url (pid $(cat "$PIDFILE"))"
      echo "$url"
      return 0
    fi
    if [[ -f "$PIDFILE" ]] && ! running_pid >/dev/null; then
      tail -n 60 "$INST/logs/logship-$NAME.log" >&2 2>/dev/null || true
      die "OpenSearch exited during start-up; see $INST/logs"
    fi
    if [[ ! -f "$PIDFILE" ]] && (( SECONDS > started + 60 )); then
      tail -n 40 "$INST/logs/stdout.log" >&2
      die "OpenSearch wrote no pid file within 60s; see $INST/logs"
    fi
    sleep 1
  done
  tail -n 60 "$INST/logs/logship-$NAME.log" >&2 2>/dev/null || true
  die "OpenSearch did not become ready within ${OPENSEARCH_START_TIMEOUT:-240}s; see $INST/logs"
}

case "$cmd" in
  start) start ;;
  stop) "$HERE/opensearch.sh" stop --name "$NAME" ;;
  purge) "$HERE/opensearch.sh" stop --name "$NAME"; rm -rf "$INST" ;;   # stop and delete its data
  pid) running_pid || exit 3 ;;
  status)
    if pid=$(running_pid); then echo "running: https://127.0.0.1:$(cat "$INST/port") (pid $pid)"; else echo "not running"; exit 3; fi ;;
  url) echo "https://127.0.0.1:$( [[ -f "$INST/port" ]] && cat "$INST/port" || echo "$PORT")" ;;
  fetch) fetch; echo "$DIST" ;;
  *) die "unknown command '$cmd'; use start, stop, purge, status, url, pid or fetch" ;;
esac
