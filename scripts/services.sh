#!/usr/bin/env bash
# Makes sure the services the tests talk to are running on this machine: PostgreSQL on
# 127.0.0.1:5432 with a database `test`, and RabbitMQ on 127.0.0.1:5672 (guest/guest), and that the
# tools they run are there (chromium, promtool). Starts the services when stopped and installs
# everything from Debian's packages when missing, so `npm test` works on a
# fresh machine. Point TEST_DATABASE_URL / TEST_AMQP_URL elsewhere to use other servers instead.
set -euo pipefail

PG_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
AMQP_URL=${TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}

say() { echo "services: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
wait_port() { # host port seconds
  for _ in $(seq 1 $(($3 * 4))); do port_open "$1" "$2" && return 0; sleep 0.25; done
  return 1
}
apt_install() {
  command -v apt-get >/dev/null || { say "cannot install $* (no apt-get); install it or set TEST_DATABASE_URL/TEST_AMQP_URL"; exit 1; }
  say "installing $* from Debian's packages"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  [ -n "${TEST_DATABASE_URL:-}" ] && return 0
  local installed_here=0
  if ! port_open 127.0.0.1 5432; then
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
      apt_install postgresql
      installed_here=1
    fi
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    say "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    wait_port 127.0.0.1 5432 30 || { say "PostgreSQL did not start"; exit 1; }
  fi
  if [ "$installed_here" = 1 ]; then
    # A package we just installed for the tests: let local TCP clients in as postgres without a
    # password, as on the development machines.
    local hba
    hba=$(as_root su postgres -c "psql -tAc 'SHOW hba_file'")
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    as_root su postgres -c "psql -qc 'SELECT pg_reload_conf()'" >/dev/null
  fi
  if ! psql "$PG_URL" -qtAc 'SELECT 1' >/dev/null 2>&1; then
    as_root su postgres -c "createdb test" 2>/dev/null || true
    psql "$PG_URL" -qtAc 'SELECT 1' >/dev/null 2>&1 || { say "cannot connect to $PG_URL"; exit 1; }
  fi
}

ensure_rabbitmq() {
  [ -n "${TEST_AMQP_URL:-}" ] && return 0
  port_open 127.0.0.1 5672 && return 0
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  say "starting RabbitMQ"
  as_root rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_port 127.0.0.1 5672 120 || { say "RabbitMQ did not start"; exit 1; }
}

# Tools the tests run: Chromium for the web app's browser test (driven by playwright-core, whose own
# browser download needs the internet) and promtool for the alerting rules' unit tests.
ensure_tool() { # command package
  command -v "$1" >/dev/null || apt_install "$2"
  command -v "$1" >/dev/null || { say "$2 installed no $1"; exit 1; }
}

ensure_postgres
ensure_rabbitmq
ensure_tool chromium chromium
ensure_tool promtool prometheus
say "PostgreSQL, RabbitMQ, Chromium and promtool are ready"
