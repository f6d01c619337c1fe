# Sourced by every job (`source ci/pipeline.sh`): which kind of pipeline this is, read from
# GitLab's predefined variables in this one place, and the steps the jobs call. Steps that decide
# something print it (`BASE=$(report_base)`); a guard prints one line and ends the job: `fail`
# with an error, `skip` successfully. An add-on's own steps are in its ci/*.sh (sweeps, registry).

fail() {
  echo "error: $*" >&2
  exit 1
}

skip() {
  echo "$*"
  exit 0
}

is_merge_request() {
  [ "${CI_PIPELINE_SOURCE:-}" = "merge_request_event" ]
}

# Tag pipelines run only for the model registry's tags (workflow rules; ci/registry.sh).
is_tag() {
  [ -n "${CI_COMMIT_TAG:-}" ]
}

# detached: the source branch's own commit. merged_result and merge_train (GitLab Premium): a
# merge commit of the source branch into the target that exists in neither branch.
merge_request_kind() {
  echo "${CI_MERGE_REQUEST_EVENT_TYPE:-detached}"
}

on_merge_commit() {
  is_merge_request && [ "$(merge_request_kind)" != "detached" ]
}

# A fork's merge request pipeline runs in the fork (the fork's variables; `origin` is the fork) or,
# when a maintainer runs it from the merge request, in the target project with its variables.
runs_in_fork() {
  is_merge_request && [ "${CI_PROJECT_ID:-}" != "${CI_MERGE_REQUEST_PROJECT_ID:-}" ]
}

source_in_fork() {
  is_merge_request && [ "${CI_MERGE_REQUEST_SOURCE_PROJECT_ID:-}" != "${CI_MERGE_REQUEST_PROJECT_ID:-}" ]
}

# Branches that must always carry a true dvc.lock.
on_default_or_protected_branch() {
  ! is_merge_request && {
    [ "${CI_COMMIT_BRANCH:-}" = "${CI_DEFAULT_BRANCH:-}" ] || [ "${CI_COMMIT_REF_PROTECTED:-}" = "true" ]
  }
}

describe_pipeline() {
  if is_tag; then
    echo "Pipeline: tag '$CI_COMMIT_TAG'."
    return
  fi
  if ! is_merge_request; then
    echo "Pipeline: branch '${CI_COMMIT_BRANCH:-${CI_COMMIT_REF_NAME:-?}}'."
    return
  fi
  local from="a branch of this project" where="the target project"
  if source_in_fork; then from="a fork"; fi
  if runs_in_fork; then where="the fork"; fi
  echo "Pipeline: merge request !$CI_MERGE_REQUEST_IID ($(merge_request_kind)) from $from into" \
    "'$CI_MERGE_REQUEST_TARGET_BRANCH_NAME', running in $where."
}

# The target project's repository: `origin`, unless this pipeline runs in the fork.
target_remote() {
  if runs_in_fork; then echo "$CI_MERGE_REQUEST_PROJECT_URL.git"; else echo origin; fi
}

# Commit $1 is here, or fetched by SHA from $2 (default origin): clones are shallow.
have_commit() {
  git cat-file -e "$1^{commit}" 2>/dev/null || git fetch --quiet --depth=1 "${2:-origin}" "$1"
}

has_s3_credentials() {
  [ -n "${AWS_ACCESS_KEY_ID:-}" ] || [ -n "${AWS_WEB_IDENTITY_TOKEN_FILE:-}" ]
}

# Pipelines running in a fork read the remote anonymously (where the bucket allows it) and never
# write to it or to the repository.
may_write() {
  ! runs_in_fork && has_s3_credentials
}

# The messages that ask for REPO_TOKEN say which token it can be (ci/gitlab_api.py has the same).
TOKEN_HELP="a project access token (role Developer, scopes api and write_repository; GitLab.com Premium/Ultimate or self-managed), or on GitLab.com Free a bot account's personal access token with those scopes, as a masked, not protected CI/CD variable (README, 'Tokens')"

# REPO_TOKEN's URL of this repository: the job token cannot push, and its pushes start no pipeline.
repo_token_url() {
  echo "${CI_SERVER_PROTOCOL:-https}://oauth2:${REPO_TOKEN}@${CI_REPOSITORY_URL#*@}"
}

# `git push` ("$@") as REPO_TOKEN's user; git's answer, without the token, on stderr if refused.
push_as_token_user() {
  local output
  output=$(git push --porcelain "$@" 2>&1) && return
  local status=$?
  echo "${output//"$REPO_TOKEN"/[MASKED]}" >&2
  return $status
}

# --- train ---------------------------------------------------------------------------------------

# DVC's remote as this pipeline can reach it, then a read of the raw data: it proves the remote is
# reachable and the credentials work, in two attempts rather than botocore's five with back-off.
prepare_remote() {
  if ! has_s3_credentials; then
    runs_in_fork || fail "AWS_ACCESS_KEY_ID is not set: add AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY as masked, not protected CI/CD variables (Settings > CI/CD > Variables)."
    echo "This pipeline runs in the fork, without the target project's S3 credentials: the remote is read anonymously."
  fi
  configure_remote
  local pulled
  if ! pulled=$(AWS_RETRY_MODE=standard AWS_MAX_ATTEMPTS=2 dvc pull data/raw/dataset.csv.dvc 2>&1); then
    if ! has_s3_credentials; then
      skip "The remote does not allow anonymous reads, so training is skipped (the tests ran). A maintainer can run this merge request's pipeline in the target project, with its variables."
    fi
    echo "$pulled" >&2
    local remote url bucket objects
    read -r remote url bucket objects <<<"$(remote_facts)"
    if refused "$pulled"; then
      fail "cannot read the DVC remote '$remote' ($url): access denied: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be a valid key whose policy allows s3:ListBucket on $bucket and s3:GetObject (and s3:PutObject) on $objects (README, 'The S3 remote')."
    fi
    fail "cannot read the DVC remote '$remote' ($url): check the AWS_* CI/CD variables, the bucket name and endpoint, and that the data was pushed with 'dvc push'."
  fi
}

# For messages: the default remote's name and URL, and the ARNs of the README's policy ('The S3
# remote'), the bucket's and its objects', on one line (none of them holds a space).
remote_facts() {
  local remote url path
  remote=$(dvc remote default)
  url=$(dvc config "remote.$remote.url")
  path="${url#s3://}"
  path="${path%/}"
  echo "$remote $url arn:aws:s3:::${path%%/*} arn:aws:s3:::$path/*"
}

# Whether DVC's output $1 says S3 refused the key (403: AccessDenied, or a bare Forbidden for HEAD).
refused() {
  grep -qE "AccessDenied|Forbidden|InvalidAccessKeyId|SignatureDoesNotMatch" <<<"$1"
}

# A `dvc push` ("$@") tried up to three times, 5 and 10 s apart; each attempt sends only what the
# remote lacks (S3 keeps no half-written object). DVC exits 0 when a run-cache entry failed to
# upload, so its ERROR lines count as a failure too. The train job pushes the outputs before the
# run-cache: DVC's own `dvc push --run-cache` sends the entries first, and cut short (a dropped
# connection, a cancelled job) leaves entries naming outputs the remote does not hold.
retry_push() {
  local attempt output
  for attempt in 1 2 3; do
    if output=$(AWS_RETRY_MODE=standard AWS_MAX_ATTEMPTS=3 "$@" 2>&1) && ! grep -q "^ERROR" <<<"$output"; then
      echo "$output"
      return
    fi
    if refused "$output"; then break; fi
    echo "'$*', attempt $attempt of 3: $(grep -m1 "^ERROR" <<<"$output")"
    if [ "$attempt" -lt 3 ]; then sleep $((5 * attempt)); fi # a network blip may pass meanwhile
  done
  echo "$output" >&2
  local remote url bucket objects
  read -r remote url bucket objects <<<"$(remote_facts)"
  if refused "$output"; then
    fail "'$*' was refused by the DVC remote '$remote' ($url): the CI key needs s3:PutObject on $objects, besides s3:GetObject there and s3:ListBucket on $bucket (README, 'The S3 remote')."
  fi
  fail "'$*' failed 3 times against the DVC remote '$remote' ($url) (DVC's errors are above): run the job again; it sends only what is missing, and no run-cache entry went up before its outputs."
}

# The CI's endpoint override (a committed endpointurl would win over AWS_ENDPOINT_URL_S3; the local
# config wins over both), and anonymous reads without credentials.
configure_remote() {
  local override=false anonymous=false remote
  if [ -n "${AWS_ENDPOINT_URL_S3:-}" ] && grep -q endpointurl .dvc/config; then override=true; fi
  if ! has_s3_credentials; then anonymous=true; fi
  if $override || $anonymous; then
    remote=$(dvc remote default) # one DVC start-up, and none when nothing needs changing
    if $override; then dvc remote modify --local "$remote" endpointurl "$AWS_ENDPOINT_URL_S3"; fi
    if $anonymous; then dvc remote modify --local "$remote" allow_anonymous_login true; fi
  fi
}

# Whether `dvc repro` (its output in $1) ran a stage whose results this pipeline may push.
results_to_push() {
  if ! grep -q "^Running stage" "$1"; then
    echo "No stage ran: every result came from the remote, so there is nothing to push."
    return 1
  fi
  if ! may_write; then
    echo "This pipeline runs in the fork: its results are not pushed to the remote."
    return 1
  fi
}

# Every commit keeps a dvc.lock true to its params and code, so `git checkout X && dvc pull` brings
# back exactly the model of commit X. A merge request of this project gets the reproduced dvc.lock
# committed to its branch (never on anything but that branch's own tip); elsewhere the job says
# what to commit, and fails where a stale dvc.lock would land on a kept branch.
commit_dvc_lock_if_stale() {
  if [ -z "$(git status --porcelain -- dvc.lock)" ]; then
    echo "dvc.lock matches this commit."
    return
  fi
  local stale="dvc.lock does not match params.yaml and the code of this commit"
  local fix="run 'dvc repro --pull' (it restores these results from the remote) and commit dvc.lock"
  if ! is_merge_request; then
    if on_default_or_protected_branch; then fail "$stale: $fix."; fi
    echo "warning: $stale: $fix, or open a merge request, whose pipeline commits it to the branch."
    return
  fi
  local branch="$CI_MERGE_REQUEST_SOURCE_BRANCH_NAME" target="$CI_MERGE_REQUEST_TARGET_BRANCH_NAME"
  if source_in_fork; then
    echo "warning: $stale. The branch '$branch' lives in a fork, so no pipeline can commit to it: its author must $fix before this merge request is merged."
    return
  fi
  local tip="$CI_COMMIT_SHA"
  case "$(merge_request_kind)" in
    merge_train)
      fail "$stale (the merge train's merge of '$branch' into '$target'): rebase '$branch' onto '$target', $fix, then add the merge request to the train again." ;;
    merged_result)
      tip="$CI_MERGE_REQUEST_SOURCE_BRANCH_SHA"
      dvc_lock_holds_on "$tip" ||
        fail "$stale: the merge result's dvc.lock differs from what '$branch' alone reproduces, as '$target' changed what the pipeline depends on: rebase '$branch' onto '$target' (or merge it in), $fix." ;;
  esac
  [ -n "${REPO_TOKEN:-}" ] ||
    fail "$stale, and REPO_TOKEN is not set, so it cannot be committed for you: $fix, or add REPO_TOKEN: $TOKEN_HELP."
  push_dvc_lock "$branch" "$tip"
}

# Whether the dvc.lock reproduced on the merge commit is also true on commit $1 (the source
# branch's tip): check out that commit's files, keep the reproduced dvc.lock and outputs, and ask
# DVC whether anything would change.
dvc_lock_holds_on() {
  local reproduced
  reproduced=$(mktemp)
  cp dvc.lock "$reproduced" &&
    have_commit "$1" &&
    git checkout --quiet --force --detach "$1" &&
    cp "$reproduced" dvc.lock &&
    dvc status --quiet
}

# Commit dvc.lock on top of $2 and push it to branch $1, only if the branch still points at $2
# (the lease). A moved branch is left to its newer pipeline; any other refusal fails the job.
push_dvc_lock() {
  local branch="$1" tip="$2" output
  git add dvc.lock
  git -c user.name="${GITLAB_USER_NAME:-CI}" -c user.email="${GITLAB_USER_EMAIL:-ci@localhost}" \
    commit --quiet --no-verify --message "Update dvc.lock from pipeline ${CI_PIPELINE_ID:-local}" -- dvc.lock
  if output=$(push_as_token_user --force-with-lease="refs/heads/$branch:$tip" "$(repo_token_url)" "HEAD:refs/heads/$branch" 2>&1); then
    echo "dvc.lock was stale: pushed the reproduced one to '$branch' as $(git rev-parse --short HEAD)."
  elif grep -q "^!.*(stale info)" <<<"$output"; then
    echo "dvc.lock was stale, and '$branch' has moved on since ${tip:0:8}: its newer pipeline takes over."
  else
    echo "$output" >&2
    fail "could not push dvc.lock to '$branch' (git's answer is above): check that REPO_TOKEN is valid, has the write_repository scope and a role that may push to '$branch'."
  fi
}

# --- report --------------------------------------------------------------------------------------

# The commit this merge request's changes are measured against, fetched by SHA from the target
# project (clones are shallow; a fork's `origin` is the fork), printed as a short SHA DVC resolves.
report_base() {
  local sha="$CI_MERGE_REQUEST_DIFF_BASE_SHA" from
  if on_merge_commit; then sha="$CI_MERGE_REQUEST_TARGET_BRANCH_SHA"; fi
  from=$(target_remote)
  have_commit "$sha" "$from" ||
    fail "cannot fetch $sha, the commit of '$CI_MERGE_REQUEST_TARGET_BRANCH_NAME' this merge request is compared with, from $from (a fork's pipeline cannot read a private target project)."
  git rev-parse --short=8 "$sha"
}

# --- comment -------------------------------------------------------------------------------------

# $1: the report to post (default report/report.md).
skip_unless_report_can_be_posted() {
  if runs_in_fork; then
    skip "This pipeline runs in the fork, without the target project's REPO_TOKEN: no comment is posted (a maintainer can run the pipeline in the target project from the merge request)."
  fi
  [ -f "${1:-report/report.md}" ] || skip "No report was built in this pipeline (the log of the job that builds it says why), so nothing is posted."
}

# The merge request's quality gate, after the report is posted. $1: the report; its verdict.txt
# beside it has a line per comparison (against the base, against production), starting with the
# verdict. VERDICT_GATE=fail fails the job on a worse one; warn (the default) only says so.
verdict_gate() {
  local gate="${VERDICT_GATE:-warn}" verdicts worse
  case "$gate" in
    warn | fail) ;;
    *) fail "VERDICT_GATE must be warn or fail, got '$gate' (Settings > CI/CD > Variables, or .gitlab-ci.yml)." ;;
  esac
  verdicts="$(dirname "${1:-report/report.md}")/verdict.txt"
  [ -f "$verdicts" ] || return 0   # nothing to compare against: no verdict
  worse=$(sed -n 's/^worse: //p' "$verdicts" | paste -sd ' ' -)   # against the base, and production
  if [ -z "$worse" ]; then return 0; fi
  if [ "$gate" = fail ]; then
    fail "the model report says worse: $worse (VERDICT_GATE is fail; a change beyond noise in the headline metric fails the merge request's pipeline)."
  fi
  echo "warning: the model report says worse: $worse (VERDICT_GATE=fail would fail this pipeline)"
}

describe_pipeline
