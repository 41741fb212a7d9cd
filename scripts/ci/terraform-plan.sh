#!/usr/bin/env bash
# Plans an environment's synthesized Terraform stack: `terraform plan -out tfplan` in infra/cdktf.out/stacks/itemgen-<env>, and the readable plan in ci-out/plan/<env>/plan.txt (with --review: ci-out/review/plan-<env>.txt, without taking the state lock). Needs: terraform, node 24, a synthesized stack (synth-check.sh), GOOGLE_APPLICATION_CREDENTIALS (optional: else application default credentials). Usage: terraform-plan.sh <env> [--review]
source "$(dirname "$0")/lib.sh"
load_settings "${1:-}"
need_tools terraform
review=false
case "${2:-}" in
  '') ;;
  --review) review=true ;;
  *) die "usage: $0 <env> [--review]" ;;
esac
need_stack
[ -n "${GOOGLE_APPLICATION_CREDENTIALS:-}" ] || say "GOOGLE_APPLICATION_CREDENTIALS not set; terraform uses application default credentials"

lock=()
if [ "$review" = true ]; then
  # A pull request's plan only reads: its credentials may read the state bucket but not write the lock.
  lock=(-lock=false)
  out="$CI_OUT/review/plan-$ENV_NAME.txt"
else
  lock=(-lock-timeout=10m)
  out="$CI_OUT/plan/$ENV_NAME/plan.txt"
fi
mkdir -p "$(dirname "$out")"

# The saved plan holds secret values in the clear: it stays in the stack folder (ignored by git,
# never archived) until terraform-apply.sh applies and deletes it; a review plan is deleted at once.
terraform -chdir="$STACK_DIR" init -input=false -no-color >&2
terraform -chdir="$STACK_DIR" plan -input=false -no-color "${lock[@]}" -out=tfplan >&2
terraform -chdir="$STACK_DIR" show -no-color tfplan >"$out"
[ "$review" = false ] || rm -f "$STACK_DIR/tfplan"
summary=$(grep -E '^(Plan:|No changes\.)' "$out" | head -n 1 || true)
say "$STACK: ${summary:-see $out}"
