#!/usr/bin/env bash
# The first terraform apply of an environment, run once by the person who bootstrapped it (with the 24-hour grant bootstrap.sh gives them to act as terraform): creates the image repository alone, builds and pushes both images into it as terraform, then plans the whole stack with that gateway image (by digest) and applies it after a yes. Later applies are the pipeline's. Needs: terraform, gcloud, docker (with BuildKit and buildx), jq, git, node 24, a synthesized stack; the caller may impersonate the terraform account (scripts/ci/bootstrap.sh). Usage: first-apply.sh <env> [--yes]
source "$(dirname "$0")/lib.sh"
load_settings "${1:-}"
need_tools terraform docker jq git
yes=false
case "${2:-}" in
  '') ;;
  --yes) yes=true ;;
  *) die "usage: $0 <env> [--yes]" ;;
esac
need_stack

# Why in three steps: the Cloud Run service is created with the gateway image by digest
# (the gateway_image variable), an image lives in the stack's own repository, and that repository
# does not exist before this apply. So the repository first, then the images, then everything.
use_identity terraform
export_database_password
repository=$(jq -r --arg id "$PREFIX-images" '.resource.google_artifact_registry_repository // {} | to_entries[]
  | select(.value.repository_id == $id) | "google_artifact_registry_repository.\(.key)"' "$STACK_DIR/cdk.tf.json")
[ -n "$repository" ] || die "the stack declares no google_artifact_registry_repository $PREFIX-images"
if gcloud run services describe "$CLOUD_RUN_SERVICE" --project "$PROJECT" --region "$CLOUD_RUN_REGION" --format='value(name)' >/dev/null 2>&1; then
  die "$CLOUD_RUN_SERVICE exists already: this is not a first apply; the pipeline applies (scripts/ci/terraform-plan.sh $ENV_NAME, terraform-apply.sh $ENV_NAME)"
fi

terraform -chdir="$STACK_DIR" init -input=false -no-color >&2
# Any well-formed digest: a targeted apply of the repository never reaches the service that uses it.
say "creating $repository"
TF_VAR_gateway_image="$GATEWAY_REPOSITORY@sha256:$(printf '0%.0s' {1..64})" \
  terraform -chdir="$STACK_DIR" apply -input=false -no-color -lock-timeout=10m -auto-approve -target="$repository" >&2

scripts/ci/build-images.sh
PUSH_AS=terraform scripts/ci/push-images.sh "$ENV_NAME"
# terraform-plan.sh takes the gateway image from push-images.sh's record while the service does not exist.
scripts/ci/terraform-plan.sh "$ENV_NAME"
if [ "$yes" = false ]; then
  read -r -p "Apply the plan in $CI_OUT/plan/$ENV_NAME/plan.txt to $PROJECT? Type yes: " answer
  [ "$answer" = yes ] || { rm -f "$STACK_DIR/tfplan"; die "not applied; the saved plan is removed"; }
fi
scripts/ci/terraform-apply.sh "$ENV_NAME"
say "$STACK is applied; next: k8s/README.md 'Before the first apply', then the first API key (README, Deploying)"
