#!/usr/bin/env bash
# Refreshes images.lock.json: the current digest of every `name:tag` it lists (the base images of Dockerfile.gateway and Dockerfile.runner, RabbitMQ, the cloud CLI), then points the Dockerfiles' ARG defaults at them. The documented update step for third-party images: run it, build, test, review the diff, commit. Needs: docker (with buildx, reaching the registries), jq. Usage: pin-images.sh [name:tag …] (default: every entry)
source "$(dirname "$0")/lib.sh"
need_tools docker jq
lock=images.lock.json
[ -s "$lock" ] || die "$lock is missing"
if [ "$#" -eq 0 ]; then mapfile -t names < <(jq -r 'keys[]' "$lock"); else names=("$@"); fi
next="$CI_TMP/lock.json"
cp "$lock" "$next"
for name in "${names[@]}"; do
  jq -e --arg n "$name" 'has($n)' "$lock" >/dev/null || die "$name is not in $lock (add it there by hand first)"
  # The digest of what the tag names now: the index (every platform) when it is multi-platform.
  digest=$(docker buildx imagetools inspect "$name" --format '{{json .Manifest}}' | jq -r '.digest') \
    || die "cannot inspect $name"
  is_digest "$digest" || die "$name: no digest (got '$digest')"
  old=$(jq -r --arg n "$name" '.[$n]' "$lock")
  [ "$old" = "$digest" ] && say "$name unchanged" || say "$name: $old -> $digest"
  jq --arg n "$name" --arg d "$digest" '.[$n] = $d' "$next" >"$next.tmp" && mv "$next.tmp" "$next"
done
jq -S . "$next" >"$lock"
# ARG <X>=<name>@sha256:… in the Dockerfiles follows the lock.
for file in Dockerfile.gateway Dockerfile.runner; do
  while IFS=$'\t' read -r name digest; do
    sed -i -E "s#^(ARG [A-Z_]+=)$(printf '%s' "$name" | sed 's/[.[\*^$/]/\\&/g')@sha256:[0-9a-f]{64}\$#\\1$name@$digest#" "$file"
  done < <(jq -r 'to_entries[] | "\(.key)\t\(.value)"' "$lock")
done
say "$lock and the Dockerfiles updated; build the images, run npm test (test/delivery checks they agree), and commit"
