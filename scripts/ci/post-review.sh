#!/usr/bin/env bash
# Pull requests: posts what k8s-diff.sh and terraform-plan.sh --review wrote to ci-out/review/ as one pull request comment, updated in place on later builds. Needs: curl, jq; GITHUB_TOKEN (may comment on pull requests), CHANGE_ID and CHANGE_URL (Jenkins sets them on pull requests) or GITHUB_REPOSITORY (owner/name); GITHUB_API_URL (optional, default https://api.github.com), BUILD_URL (optional: links to the full files).
source "$(dirname "$0")/lib.sh"
need_tools curl jq git
need_vars GITHUB_TOKEN
review="$CI_OUT/review"
[ -d "$review" ] || die "$review is missing: run scripts/ci/k8s-diff.sh and terraform-plan.sh <env> --review first"

pr=${CHANGE_ID:-}
repo=${GITHUB_REPOSITORY:-}
if [[ ${CHANGE_URL:-} =~ ^https?://[^/]+/([^/]+/[^/]+)/pull/([0-9]+) ]]; then
  repo=${repo:-${BASH_REMATCH[1]}}
  pr=${pr:-${BASH_REMATCH[2]}}
fi
[ -n "$repo" ] || die "cannot tell the repository: set GITHUB_REPOSITORY=owner/name (or CHANGE_URL)"
[[ $pr =~ ^[0-9]+$ ]] || die "cannot tell the pull request number: set CHANGE_ID"
api=${GITHUB_API_URL:-https://api.github.com}
marker='<!-- itemgen-delivery-review -->'
# GitHub refuses comments over 65,536 characters; each part gets a share and a link to the rest.
limit=18000
artifacts=${BUILD_URL:+${BUILD_URL%/}/artifact/ci-out/review}

# section <title> <file> <summary>
section() {
  local title=$1 file=$2 summary=$3
  printf '\n### %s\n\n%s\n\n' "$title" "$summary"
  [ -s "$file" ] || return 0
  printf '<details><summary>%s</summary>\n\n````diff\n' "$(basename "$file")"
  head -c "$limit" "$file"
  if [ "$(wc -c <"$file")" -gt "$limit" ]; then
    printf '\n… cut at %s characters%s\n' "$limit" "${artifacts:+; the whole file: $artifacts/$(basename "$file")}"
  fi
  printf '\n````\n\n</details>\n'
}

body="$CI_TMP/comment.md"
{
  printf '%s\n## Delivery review of %s\n' "$marker" "$(git rev-parse --short HEAD)"
  if [ -s "$review/k8s-dist.diff" ]; then
    k8s_summary="Manifests this pull request changes (against \`${CHANGE_TARGET:-the target branch}\`): $(tail -n 1 "$review/k8s-dist.stat")"
  else
    k8s_summary="No change to \`k8s/dist/\`."
  fi
  section 'k8s/dist' "$review/k8s-dist.diff" "$k8s_summary"
  for plan in "$review"/plan-*.txt; do
    [ -e "$plan" ] || continue
    env_name=$(basename "$plan" .txt)
    env_name=${env_name#plan-}
    summary=$(grep -E '^(Plan:|No changes\.)' "$plan" | head -n 1 || true)
    section "Terraform plan: $env_name (against its current state)" "$plan" "${summary:-See the plan.}"
  done
  [ -z "$artifacts" ] || printf '\nFiles: %s/\n' "$artifacts"
} >"$body"
cp "$body" "$review/comment.md"

headers="$CI_TMP/github-headers"
(umask 077 && printf 'Authorization: Bearer %s\nAccept: application/vnd.github+json\nX-GitHub-Api-Version: 2022-11-28\n' "$GITHUB_TOKEN" >"$headers")
github() { # <method> <path> [body file]
  local args=(-fsS --max-time 30 -X "$1" -H @"$headers")
  [ -z "${3:-}" ] || args+=(-H 'Content-Type: application/json' --data-binary @"$3")
  curl "${args[@]}" "$api$2"
}

payload="$CI_TMP/payload.json"
jq -Rs '{body: .}' "$body" >"$payload"
existing=''
for page in $(seq 1 20); do
  comments=$(github GET "/repos/$repo/issues/$pr/comments?per_page=100&page=$page") || die "cannot list the comments of $repo#$pr"
  [ "$(jq 'length' <<<"$comments")" -gt 0 ] || break
  existing=$(jq -r --arg m "$marker" '[.[] | select(.body | startswith($m))][0].id // empty' <<<"$comments")
  [ -z "$existing" ] || break
done
if [ -n "$existing" ] && github PATCH "/repos/$repo/issues/comments/$existing" "$payload" >/dev/null; then
  say "updated the review comment on $repo#$pr"
else
  github POST "/repos/$repo/issues/$pr/comments" "$payload" >/dev/null || die "cannot comment on $repo#$pr"
  say "posted the review comment on $repo#$pr"
fi
