#!/usr/bin/env bash
# Builds the gateway and runner images from Dockerfile.gateway and Dockerfile.runner as local images itemgen-gateway:<tag> and itemgen-runner:<tag>, tag = the commit sha; push-images.sh sends the same bytes to each environment. Needs: docker (with BuildKit), git; IMAGE_TAG (optional), MODEL_SOURCE (optional: a model folder in the repository to bake into the runner image).
source "$(dirname "$0")/lib.sh"
need_tools docker git
docker info >/dev/null 2>&1 || die "docker is installed but its daemon is not reachable"
tag=$(image_tag)
export DOCKER_BUILDKIT=1
created=$(git log -1 --format=%cI HEAD)
labels=(--label "org.opencontainers.image.revision=$tag" --label "org.opencontainers.image.created=$created")

say "building itemgen-gateway:$tag"
docker build --platform linux/amd64 -f Dockerfile.gateway -t "itemgen-gateway:$tag" "${labels[@]}" .

runner_args=()
if [ -n "${MODEL_SOURCE:-}" ]; then
  [ -f "$MODEL_SOURCE/model_index.json" ] || die "MODEL_SOURCE=$MODEL_SOURCE is not a model folder (no model_index.json)"
  runner_args=(--build-arg "MODEL_SOURCE=$MODEL_SOURCE")
  say "baking the model in $MODEL_SOURCE into the runner image"
fi
say "building itemgen-runner:$tag"
docker build --platform linux/amd64 -f Dockerfile.runner -t "itemgen-runner:$tag" "${labels[@]}" "${runner_args[@]}" .
say "built itemgen-gateway:$tag and itemgen-runner:$tag"
