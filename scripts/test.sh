#!/usr/bin/env bash
# `npm test`: starts the services the tests need, typechecks, runs every uvu test file under
# test/ (a process per folder, scripts/test-groups.sh), and ends with the line "N passed, N
# failed" (what CI reads). Both run on
# Node.js 24 (package.json's `engines`): the machine's own when it is 24.x, else the pinned one that
# scripts/node24.sh downloads once. Its folder goes first on PATH, so tsc, the scripts the tests
# run and the processes they spawn (process.execPath) are Node 24 as well.
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/services.sh || exit 1
if ! node24=$(bash scripts/node24.sh); then
  echo "no Node.js 24 to test with"
  echo "0 passed, 1 failed"
  exit 1
fi
export PATH="$(dirname "$node24"):$PATH"
echo "testing with Node.js $(node --version) ($node24)"
export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
export TEST_AMQP_URL=${TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}

if ! npx --no-install tsc --noEmit; then
  echo "typecheck failed"
  echo "0 passed, 1 failed"
  exit 1
fi

# Tests wait on events, never on sleeps; a bug that loses an event would hang, so the run is bounded.
exec bash scripts/test-groups.sh test "${TEST_TIMEOUT_S:-900}" node --import tsx node_modules/uvu/bin.js -- "$@"
