# Sourced by the model registry's jobs (ci/model-registry.gitlab-ci.yml), after ci/pipeline.sh.

# Tags are made as the user who runs the job and pushed as REPO_TOKEN's user, so that each tag
# starts its pipeline (publish, deploy): the job token's pushes start none. The push URL holding
# the token is given to git through this job's environment (git's GIT_CONFIG_* variables, added
# to any already there), never written to .git/config, where the runner's reused checkout would
# keep it for the next job, of any branch.
push_tags_as_token_user() {
  [ -n "${REPO_TOKEN:-}" ] ||
    fail "REPO_TOKEN is not set: the registry's tags are pushed with it, as tags pushed with the job token start no pipeline: add $TOKEN_HELP."
  local n="${GIT_CONFIG_COUNT:-0}"
  export "GIT_CONFIG_KEY_$n=remote.origin.pushurl" "GIT_CONFIG_VALUE_$n=$(repo_token_url)" GIT_CONFIG_COUNT=$((n + 1))
  export GIT_COMMITTER_NAME="${GITLAB_USER_NAME:-CI}" GIT_COMMITTER_EMAIL="${GITLAB_USER_EMAIL:-ci@localhost}"
}

# The registry's tags, from $1 (default origin). A tag pipeline's checkout holds its own tag only:
# GTO needs the registration tag to tell which version a stage tag assigns (without it,
# `gto check-ref --version` prints the commit's SHA).
fetch_registry_tags() {
  git fetch --quiet --no-tags --depth=1 "${1:-origin}" "+refs/tags/model*:refs/tags/model*" ||
    fail "cannot fetch the model registry's tags from ${1:-origin}."
}

# The version the registry has in production (nothing if none), which the merge request's report
# also compares with; its tags come from the target project, whose registry it is.
production_version() {
  local from
  from=$(target_remote)
  if git ls-remote --exit-code --tags "$from" "refs/tags/model#production#*" >/dev/null; then
    fetch_registry_tags "$from"
    gto show "model#production" --ref
  fi
}
