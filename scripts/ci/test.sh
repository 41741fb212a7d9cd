#!/usr/bin/env bash
# Runs `npm test` against throwaway PostgreSQL 16 and RabbitMQ 3.13.7 (by digest) containers when docker is there, else against the services scripts/services.sh starts. Needs: node 24, dependencies installed; docker (optional); TEST_DATABASE_URL and TEST_AMQP_URL (optional: use those servers instead).
source "$(dirname "$0")/lib.sh"
need_node

if [ -n "${TEST_DATABASE_URL:-}" ] && [ -n "${TEST_AMQP_URL:-}" ]; then
  say "using TEST_DATABASE_URL and TEST_AMQP_URL as given"
elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  # One pair of containers per run, on ports docker picks, so parallel builds on one agent never meet.
  run_id=$(printf '%s' "${BUILD_TAG:-local}-$$" | tr -c 'a-zA-Z0-9_.-' '-')
  pg="itemgen-ci-pg-$run_id" mq="itemgen-ci-mq-$run_id"
  on_exit "docker rm -f '$pg' '$mq' >/dev/null 2>&1"
  # RabbitMQ by the digest the cluster runs (images.lock.json); postgres:16 stands in for Cloud SQL.
  mq_image="rabbitmq:3.13.7@$(node -p "require('./images.lock.json')['rabbitmq:3.13.7']")"
  say "starting postgres:16 and $mq_image"
  docker run -d --name "$pg" -p 127.0.0.1::5432 \
    -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:16 >/dev/null
  # guest may only log in from loopback, and the tests come in through docker's port mapping.
  docker run -d --name "$mq" -p 127.0.0.1::5672 \
    -e RABBITMQ_DEFAULT_USER=itemgen -e RABBITMQ_DEFAULT_PASS=itemgen "$mq_image" >/dev/null
  # docker's port proxy accepts connections before the server does; ask the servers themselves.
  for _ in $(seq 1 120); do
    docker exec "$pg" pg_isready -q -h 127.0.0.1 -U postgres -d test && break
    sleep 1
  done
  docker exec "$pg" pg_isready -q -h 127.0.0.1 -U postgres -d test || die "PostgreSQL did not become ready"
  for _ in $(seq 1 120); do
    docker exec "$mq" rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1 && break
    sleep 1
  done
  docker exec "$mq" rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1 || die "RabbitMQ did not become ready"
  pg_port=$(docker port "$pg" 5432/tcp | head -n 1 | sed 's/.*://')
  mq_port=$(docker port "$mq" 5672/tcp | head -n 1 | sed 's/.*://')
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/test"
  export TEST_AMQP_URL="amqp://itemgen:itemgen@127.0.0.1:$mq_port"
else
  say "no docker: npm test starts (or installs) PostgreSQL and RabbitMQ itself (scripts/services.sh)"
fi

npm test
