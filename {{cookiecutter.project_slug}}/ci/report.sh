#!/usr/bin/env bash
# The report job: compare this merge request with the tip of its target branch.
set -euo pipefail
source "$(dirname "$0")/common.sh"

if [ ! -f reports/evaluation/metrics.json ]; then
  echo "No training results in this pipeline (see the train job), so there is no report."
  exit 0
fi
configure_remote
target="$CI_MERGE_REQUEST_TARGET_BRANCH_NAME"
# Merge request clones are shallow and lack the target branch; one commit of it is enough, as
# DVC reads that commit's metrics and plots from the remote.
git fetch --quiet --depth=1 origin "+refs/heads/$target:refs/remotes/origin/$target"
python -m {{ cookiecutter.package_name }}.report --base "origin/$target" --output report
