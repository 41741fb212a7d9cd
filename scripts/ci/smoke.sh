#!/usr/bin/env bash
# Smoke test of a deployed gateway and its runners: /healthz, /readyz, one small generation submitted with an API key and polled until completed, its image fetched and checked to be a PNG (kept in ci-out/smoke/<env>/). Needs: curl, jq; SMOKE_API_KEY (an API key of that environment); SMOKE_URL (optional, default: the revision URL deploy-gateway.sh wrote), SMOKE_TIMEOUT_S (optional, default 1200). Usage: smoke.sh <env>
source "$(dirname "$0")/lib.sh"
[ "$#" -eq 1 ] && [ -n "$1" ] || die "usage: $0 <env>"
env_name=$1
need_vars SMOKE_API_KEY
need_tools curl jq
base=${SMOKE_URL:-}
if [ -z "$base" ]; then
  [ -s "$CI_OUT/deploy/$env_name/gateway-url" ] || die "set SMOKE_URL, or run scripts/ci/deploy-gateway.sh $env_name first"
  base=$(cat "$CI_OUT/deploy/$env_name/gateway-url")
fi
base=${base%/}
timeout_s=${SMOKE_TIMEOUT_S:-1200}
out="$CI_OUT/smoke/$env_name"
mkdir -p "$out"

# The key goes to curl in a header file, never on a command line that `ps` shows.
auth="$CI_TMP/auth-header"
(umask 077 && printf 'Authorization: Bearer %s\n' "$SMOKE_API_KEY" >"$auth")
# http <method> <url> [curl args…]: the body goes to $CI_TMP/body, the status code to stdout.
http() {
  local method=$1 url=$2
  shift 2
  local code
  code=$(curl -sS --max-time 30 -X "$method" -o "$CI_TMP/body" -w '%{http_code}' "$@" "$url") || true
  printf '%s\n' "${code:-000}"
}

status=$(http GET "$base/healthz")
[ "$status" = 200 ] || die "GET $base/healthz answered $status: $(head -c 500 "$CI_TMP/body")"
# A revision that just started may still be connecting to RabbitMQ.
for _ in $(seq 1 30); do
  status=$(http GET "$base/readyz")
  [ "$status" = 200 ] && break
  sleep 2
done
[ "$status" = 200 ] || die "GET $base/readyz answered $status: $(head -c 500 "$CI_TMP/body")"
say "$base is healthy and ready"

request='{"prompt": "tsuki_advtr, smoke test, a small wooden shield", "num_inference_steps": 4, "width": 256, "height": 256, "seed": 1}'
status=$(http POST "$base/v1/generations" -H @"$auth" -H 'Content-Type: application/json' \
  -H "Idempotency-Key: smoke-${BUILD_TAG:-local}-$env_name-$(date +%s)" --data-binary "$request")
[ "$status" = 202 ] || die "POST /v1/generations answered $status: $(head -c 500 "$CI_TMP/body")"
id=$(jq -r '.id' "$CI_TMP/body")
# Poll this revision by its own URL: the links in answers follow PUBLIC_URL, which may name another host.
self="$base/v1/generations/$id"
say "submitted generation $id"

deadline=$((SECONDS + timeout_s))
last=''
while :; do
  status=$(http GET "$self" -H @"$auth")
  [ "$status" = 200 ] || die "GET $self answered $status: $(head -c 500 "$CI_TMP/body")"
  state=$(jq -r '.status' "$CI_TMP/body")
  now="$state $(jq -r '"\(.progress.step)/\(.progress.total)"' "$CI_TMP/body")"
  [ "$now" = "$last" ] || say "generation $id: $now"
  last=$now
  case $state in
    completed) break ;;
    failed | canceled) die "generation $id $state: $(jq -c '.error // {}' "$CI_TMP/body")" ;;
  esac
  if [ "$SECONDS" -ge "$deadline" ]; then
    http POST "$self/cancel" -H @"$auth" >/dev/null
    die "generation $id still $state after ${timeout_s}s (canceled); are runners up? kubectl -n itemgen get pods"
  fi
  sleep 3
done
cp "$CI_TMP/body" "$out/generation.json"

image_url=$(jq -r '.images[0].url // empty' "$out/generation.json")
[ -n "$image_url" ] || die "generation $id completed without an image link"
# The gateway's own image route needs the key; a signed storage URL must not get it.
case $image_url in
  */v1/generations/"$id"/images/*) status=$(http GET "$self/images/0" -H @"$auth") ;;
  *) status=$(http GET "$image_url") ;;
esac
[ "$status" = 200 ] || die "GET image of $id answered $status"
cp "$CI_TMP/body" "$out/item.png"
signature=$(head -c 8 "$out/item.png" | od -An -tx1 | tr -d ' \n')
[ "$signature" = 89504e470d0a1a0a ] || die "the image of $id is not a PNG (starts with $signature)"
say "generation $id completed; its PNG ($(wc -c <"$out/item.png") bytes) is in $out/item.png"
