# Sourced by the sweep jobs (ci/sweeps.gitlab-ci.yml), after ci/pipeline.sh.

# The sweep's experiment refs (DVC keeps them under refs/exps/<baseline commit>/), pushed with git
# as REPO_TOKEN's user like dvc.lock: git honours the runner's own configuration (certificates,
# proxies). Their outputs and run-cache went to the remote after each run (`sweep run --push`).
push_experiment_refs() {
  [ -n "${REPO_TOKEN:-}" ] ||
    fail "REPO_TOKEN is not set, so the sweep's experiments cannot be pushed: add $TOKEN_HELP."
  local head namespace
  head=$(git rev-parse HEAD)
  namespace="refs/exps/${head:0:2}/${head:2}"
  if [ -z "$(git for-each-ref "$namespace")" ]; then
    echo "No experiment to push: no run of this job succeeded."
    return
  fi
  if push_as_token_user --force "$(repo_token_url)" "$namespace/*:$namespace/*"; then
    echo "Pushed the experiments: $(git for-each-ref --format='%(refname:lstrip=4)' "$namespace" | tr '\n' ' ')"
  else
    fail "could not push the sweep's experiments (git's answer is above): check that REPO_TOKEN is valid and has the write_repository scope."
  fi
}

