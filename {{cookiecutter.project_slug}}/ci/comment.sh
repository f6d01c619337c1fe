#!/usr/bin/env bash
# The comment job (CML image): post the report to the merge request, one comment updated per push.
set -euo pipefail
source "$(dirname "$0")/common.sh"

if is_fork_merge_request; then
  echo "Merge request from a fork: no comment is posted (fork pipelines get no REPO_TOKEN)."
  exit 0
fi
if [ ! -f report/report.md ]; then
  echo "No report was built in this pipeline (see the report job), so nothing is posted."
  exit 0
fi
[ -n "${REPO_TOKEN:-}" ] || fail "REPO_TOKEN is not set: create a project access token (role Developer, scopes api and write_repository) and add it as a masked, not protected CI/CD variable named REPO_TOKEN."

# Preflight: an invalid or expired token gets one clear line instead of CML's stack trace.
status=$(curl --silent --max-time 30 --output /dev/null --write-out '%{http_code}' \
  --header "PRIVATE-TOKEN: $REPO_TOKEN" "$CI_API_V4_URL/projects/$CI_PROJECT_ID") || status="no answer"
[ "$status" != "no answer" ] || fail "cannot reach the GitLab API at $CI_API_V4_URL to check REPO_TOKEN; retry the job, or check the runner's network."
[ "$status" = 200 ] || fail "REPO_TOKEN was refused by $CI_API_V4_URL (HTTP $status): it may be expired, revoked or lack the api scope; create a new one and update the CI/CD variable."

# --native keeps the images in GitLab (never a third-party host); --repo makes self-managed
# instances work whatever the git remote says.
cml comment update report/report.md \
  --driver gitlab \
  --repo "$CI_PROJECT_URL" \
  --target "pr/$CI_MERGE_REQUEST_IID" \
  --native \
  --watermark-title "DVC model report"
