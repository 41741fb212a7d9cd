#!/usr/bin/env bash
# Plans an environment's synthesized Terraform stack: `terraform plan -out tfplan` in infra/cdktf.out/stacks/itemgen-<env>, and the readable plan in ci-out/plan/<env>/plan.txt. With --review (pull requests): as the read-only planner account, without the state lock and without any secret, plan in ci-out/review/plan-<env>.txt; without: as the terraform account, with the database password from Secret Manager. Needs: terraform, gcloud, jq, node 24, a synthesized stack (synth-check.sh), the caller may impersonate the account (no key file); GATEWAY_IMAGE (only before the first apply: <gateway repository>@sha256:…, the image Cloud Run is created with; default: what push-images.sh recorded in ci-out/images/<env>.env). Usage: terraform-plan.sh <env> [--review]
source "$(dirname "$0")/lib.sh"
load_settings "${1:-}"
need_tools terraform jq
review=false
case "${2:-}" in
  '') ;;
  --review) review=true ;;
  *) die "usage: $0 <env> [--review]" ;;
esac
need_stack

lock=()
if [ "$review" = true ]; then
  # A pull request's code runs here unreviewed: the planner may read the state and every resource,
  # write nothing (no state lock either) and read no secret payload.
  use_identity planner
  lock=(-lock=false)
  out="$CI_OUT/review/plan-$ENV_NAME.txt"
else
  use_identity terraform
  lock=(-lock-timeout=10m)
  out="$CI_OUT/plan/$ENV_NAME/plan.txt"
  # The Cloud SQL user's password goes to its write-only argument (never into state or the plan).
  export_database_password
fi

# The image Cloud Run runs now: CI owns the service's image after the first apply (Terraform ignores
# changes to it), so this only matters, and GATEWAY_IMAGE only counts, while the service does not exist.
current=$(gcloud run services describe "$CLOUD_RUN_SERVICE" --project "$PROJECT" --region "$CLOUD_RUN_REGION" \
  --format='value(spec.template.spec.containers[0].image)' 2>/dev/null || true)
if [ -n "$current" ]; then
  gateway_image=$current
elif [ -n "${GATEWAY_IMAGE:-}" ]; then
  gateway_image=$GATEWAY_IMAGE
elif [ "$review" = false ] && [ -s "$(images_file "$ENV_NAME")" ]; then
  # The first apply of a pipeline run: the image push-images.sh has just pushed.
  # shellcheck disable=SC1090 # written by push-images.sh: KEY='value' lines only
  gateway_image=$(. "$(images_file "$ENV_NAME")" && printf '%s' "${GATEWAY_IMAGE:-}")
else
  die "$CLOUD_RUN_SERVICE does not exist yet: set GATEWAY_IMAGE=$GATEWAY_REPOSITORY@sha256:<digest> (or run push-images.sh $ENV_NAME first, which records it in $(images_file "$ENV_NAME"))"
fi
[[ $gateway_image =~ ^[^@[:space:]]+@sha256:[0-9a-f]{64}$ ]] \
  || die "the gateway image must be named by digest (<repository>@sha256:<64 hex>), got: $gateway_image"
export TF_VAR_gateway_image=$gateway_image
mkdir -p "$(dirname "$out")"

# The saved plan holds no secret (the password variable is ephemeral), but it is this build's
# reviewed change: it stays in the stack folder (ignored by git, never archived) until
# terraform-apply.sh applies and deletes it; a review plan is deleted at once.
terraform -chdir="$STACK_DIR" init -input=false -no-color >&2
terraform -chdir="$STACK_DIR" plan -input=false -no-color "${lock[@]}" -out=tfplan >&2
terraform -chdir="$STACK_DIR" show -no-color tfplan >"$out"
[ "$review" = false ] || rm -f "$STACK_DIR/tfplan"
summary=$(grep -E '^(Plan:|No changes\.)' "$out" | head -n 1 || true)
say "$STACK: ${summary:-see $out}"
