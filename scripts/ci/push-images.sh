#!/usr/bin/env bash
# Pushes the images build-images.sh built to an environment's Artifact Registry repository (${prefix}-images) as gateway:<sha> and runner:<sha> only (tags are immutable there; nothing moves, no latest tag), or with --from <env> copies the images that environment recorded, by digest, so both run the same bytes; records the digests in ci-out/images/<env>.env (GATEWAY_DIGEST, RUNNER_DIGEST, GATEWAY_IMAGE, RUNNER_IMAGE). Needs: docker (with buildx), gcloud, jq, node 24, git, the caller may impersonate the environment's deployer account (no key file); IMAGE_TAG (optional), PUSH_AS (optional: terraform, for the first apply only). Usage: push-images.sh <env> [--from <env>]
source "$(dirname "$0")/lib.sh"
load_settings "${1:-}"
need_tools docker git jq
from=''
case "${2:-}" in
  '') ;;
  --from) [ -n "${3:-}" ] && [ "$3" != "$ENV_NAME" ] || die "usage: $0 <env> [--from <another env>]"; from=$3 ;;
  *) die "usage: $0 <env> [--from <env>]" ;;
esac
tag=$(image_tag)
# The deployer pushes. PUSH_AS=terraform only for the first apply (first-apply.sh): the repository
# exists then, the deployer's grants and Jenkins not yet, and terraform administers the repository.
case ${PUSH_AS:-deployer} in
  deployer | terraform) use_identity "${PUSH_AS:-deployer}" ;;
  *) die "PUSH_AS must be deployer or terraform, not '${PUSH_AS}'" ;;
esac
docker_login

# registry_digest <ref>: the manifest digest the registry holds for a reference, empty when none.
registry_digest() {
  docker buildx imagetools inspect "$1" --format '{{json .Manifest}}' 2>/dev/null | jq -r '.digest // empty' 2>/dev/null || true
}

declare -A digest
if [ -z "$from" ]; then
  for image in gateway runner; do
    local_image="itemgen-$image:$tag"
    case $image in gateway) repo=$GATEWAY_REPOSITORY ;; runner) repo=$RUNNER_REPOSITORY ;; esac
    remote="$repo:$tag"
    existing=$(registry_digest "$remote")
    if [ -n "$existing" ]; then
      # The tag is immutable: a rerun of this commit's build reuses what was pushed for it.
      say "$remote exists already ($existing); not pushed again"
      digest[$image]=$existing
      continue
    fi
    docker image inspect "$local_image" >/dev/null 2>&1 || die "$local_image is not built: run scripts/ci/build-images.sh first"
    docker tag "$local_image" "$remote"
    say "pushing $remote"
    docker push --quiet "$remote" >/dev/null
    pushed=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$remote" | grep -F "$repo@" | head -n 1)
    digest[$image]=${pushed#"$repo@"}
  done
else
  # The other environment's record names what ran (and passed its smoke test) there.
  load_images "$from"
  src=$(node --import tsx scripts/ci/delivery.ts settings "$from") || die "cannot read the settings of environment '$from'"
  src_gateway=$(eval "$src"; printf '%s' "$GATEWAY_REPOSITORY")
  src_runner=$(eval "$src"; printf '%s' "$RUNNER_REPOSITORY")
  for image in gateway runner; do
    case $image in
      gateway) repo=$GATEWAY_REPOSITORY source_ref="$src_gateway@$GATEWAY_DIGEST" want=$GATEWAY_DIGEST ;;
      runner) repo=$RUNNER_REPOSITORY source_ref="$src_runner@$RUNNER_DIGEST" want=$RUNNER_DIGEST ;;
    esac
    remote="$repo:$tag"
    if [ -z "$(registry_digest "$remote")" ]; then
      # A carbon copy of the manifest (--prefer-index=false: a single-platform image stays one,
      # rather than being wrapped in a new index with a new digest); the registry copies the blobs.
      say "copying $source_ref to $remote"
      docker buildx imagetools create --prefer-index=false --tag "$remote" "$source_ref" >&2 \
        || die "cannot copy $source_ref to $remote (the $ENV_NAME deployer needs read access to the $from repository)"
    fi
    got=$(registry_digest "$remote")
    [ "$got" = "$want" ] || die "$remote has digest ${got:-none}, not $want as in $from: the copy is not the same bytes"
    digest[$image]=$got
  done
fi

for image in gateway runner; do
  is_digest "${digest[$image]:-}" || die "no digest for the $image image (got '${digest[$image]:-}')"
done
file=$(images_file "$ENV_NAME")
mkdir -p "$(dirname "$file")"
{
  printf "IMAGE_TAG='%s'\n" "$tag"
  printf "GATEWAY_DIGEST='%s'\nRUNNER_DIGEST='%s'\n" "${digest[gateway]}" "${digest[runner]}"
  printf "GATEWAY_IMAGE='%s@%s'\nRUNNER_IMAGE='%s@%s'\n" "$GATEWAY_REPOSITORY" "${digest[gateway]}" "$RUNNER_REPOSITORY" "${digest[runner]}"
} >"$file"
say "gateway and runner of $tag are in $REGISTRY_HOST for $ENV_NAME; digests in $file"
