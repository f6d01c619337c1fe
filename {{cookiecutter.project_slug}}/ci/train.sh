#!/usr/bin/env bash
# The train job: restore or reproduce the pipeline, share the results through the S3 remote, and
# keep every commit's dvc.lock true to its params and code (so `git checkout X && dvc pull`
# brings back exactly the model of commit X).
set -euo pipefail
source "$(dirname "$0")/common.sh"

if ! has_s3_credentials; then
  is_fork_merge_request || fail "AWS_ACCESS_KEY_ID is not set: add AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY as masked, not protected CI/CD variables (Settings > CI/CD > Variables)."
  echo "Merge request from a fork: no S3 credentials here, so the remote is read anonymously."
fi
configure_remote

# Preflight: reading the raw data proves the remote is reachable and the credentials work. Two
# attempts, not botocore's five with back-off, so an unreachable endpoint fails within seconds.
if ! pulled=$(AWS_RETRY_MODE=standard AWS_MAX_ATTEMPTS=2 dvc pull data/raw/dataset.csv.dvc 2>&1); then
  if ! has_s3_credentials; then
    echo "The remote does not allow anonymous reads, so training is skipped (the tests ran)."
    echo "A maintainer can run this merge request's pipeline in the parent project, with its variables."
    exit 0
  fi
  echo "$pulled" >&2
  remote=$(dvc remote default)
  fail "cannot read the DVC remote '$remote' ($(dvc config "remote.$remote.url")): check the AWS_* CI/CD variables, the bucket name and endpoint, and that the data was pushed with 'dvc push'."
fi

# Stages whose deps and params were already run anywhere come back from the run-cache.
log=$(mktemp)
dvc repro --pull 2>&1 | tee "$log"

if ! grep -q "^Running stage" "$log"; then
  echo "No stage ran: every result came from the remote, so there is nothing to push."
elif is_fork_merge_request; then
  echo "Merge request from a fork: results are not pushed to the remote."
else
  dvc push --run-cache
fi

if [ -z "$(git status --porcelain -- dvc.lock)" ]; then
  echo "dvc.lock matches this commit."
  exit 0
fi

stale="dvc.lock does not match params.yaml and the code of this commit"
fix="run 'dvc repro --pull' (it restores these results from the remote) and commit dvc.lock"
if is_fork_merge_request; then
  # A fork's pipeline cannot push; the merge request must bring its dvc.lock before it is merged.
  echo "warning: $stale: $fix in this merge request before it is merged."
  exit 0
fi
if ! is_merge_request || [ -z "${REPO_TOKEN:-}" ]; then
  fail "$stale: $fix."
fi

# Same-project merge request: commit the reproduced dvc.lock to its branch. The next pipeline
# restores every stage from the run-cache, and the branch stays mergeable with a true dvc.lock.
branch="$CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"
push_url="${DVC_LOCK_PUSH_URL:-${CI_SERVER_PROTOCOL}://oauth2:${REPO_TOKEN}@${CI_REPOSITORY_URL#*@}}"
git -c user.name="${GITLAB_USER_NAME:-CI}" -c user.email="${GITLAB_USER_EMAIL:-ci@localhost}" \
  commit --quiet --no-verify --message "Update dvc.lock from pipeline ${CI_PIPELINE_ID:-local}" -- dvc.lock
# The lease refuses the push when the branch has moved on: its newer pipeline checks dvc.lock.
if git push --quiet --force-with-lease="refs/heads/$branch:$CI_COMMIT_SHA" "$push_url" "HEAD:refs/heads/$branch" 2>/dev/null; then
  echo "$stale: pushed the reproduced dvc.lock to '$branch' as $(git rev-parse --short HEAD)."
else
  echo "$stale, and '$branch' has moved on since $CI_COMMIT_SHA: its newer pipeline takes over."
fi
