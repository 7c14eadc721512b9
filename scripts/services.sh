#!/usr/bin/env bash
# Start the servers the baked projects' tests talk to (Redis, PostgreSQL, memcached) unless they
# already answer, and install the headless Chromium the browser test drives unless one is there.
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
