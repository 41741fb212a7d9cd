#!/usr/bin/env bash
# Pushes the images build-images.sh built to an environment's Artifact Registry repository (${prefix}-images) as gateway:<sha> and runner:<sha> (and moves :latest to them), and records their digests in ci-out/deploy/<env>/images.txt. Needs: docker, gcloud, node 24, git; GOOGLE_APPLICATION_CREDENTIALS (optional: else gcloud's active account), IMAGE_TAG (optional). Usage: push-images.sh <env>
source "$(dirname "$0")/lib.sh"
load_settings "${1:-}"
need_tools docker git
gcp_login
tag=$(image_tag)
# A docker config private to this run: the registry token never stays on the agent.
export DOCKER_CONFIG="$CI_TMP/docker"
mkdir -p "$DOCKER_CONFIG"
gcloud auth print-access-token | docker login -u oauth2accesstoken --password-stdin "https://$REGISTRY_HOST" >/dev/null \
  || die "docker login to $REGISTRY_HOST failed"

out="$CI_OUT/deploy/$ENV_NAME"
mkdir -p "$out"
: >"$out/images.txt"
for image in gateway runner; do
  local_image="itemgen-$image:$tag"
  docker image inspect "$local_image" >/dev/null 2>&1 || die "$local_image is not built: run scripts/ci/build-images.sh first"
  case $image in gateway) remote="$GATEWAY_REPOSITORY:$tag" ;; runner) remote="$RUNNER_REPOSITORY:$tag" ;; esac
  docker tag "$local_image" "$remote"
  say "pushing $remote"
  docker push --quiet "$remote" >/dev/null
  # Terraform creates the Cloud Run service on :latest and leaves the image to CI afterwards
  # (infra/gateway-service.ts); keeping :latest at the last deployed build means a service that
  # Terraform has to create again starts on current code. Deploys themselves name the sha.
  docker tag "$local_image" "${remote%:*}:latest"
  docker push --quiet "${remote%:*}:latest" >/dev/null
  digest=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$remote" | grep -F "${remote%:*}@" | head -n 1)
  printf '%s %s\n' "$remote" "$digest" >>"$out/images.txt"
done
say "pushed gateway:$tag and runner:$tag to $REGISTRY_HOST; digests in $out/images.txt"
