# Shared by the CI scripts: which kind of pipeline this is, and one-line errors.

fail() {
  echo "error: $*" >&2
  exit 1
}

is_merge_request() {
  [ "${CI_PIPELINE_SOURCE:-}" = "merge_request_event" ]
}

# A fork's merge request: its source project differs from the project the MR targets. (Such
# pipelines run without this project's secrets and must never push or comment.)
is_fork_merge_request() {
  is_merge_request && [ "${CI_MERGE_REQUEST_SOURCE_PROJECT_ID:-}" != "${CI_MERGE_REQUEST_PROJECT_ID:-}" ]
}

has_s3_credentials() {
  [ -n "${AWS_ACCESS_KEY_ID:-}" ] || [ -n "${AWS_WEB_IDENTITY_TOKEN_FILE:-}" ]
}

# DVC's remote as this pipeline can reach it: the CI's endpoint override (a committed endpointurl
# would win over AWS_ENDPOINT_URL_S3; the local config wins over both), and anonymous reads for a
# fork's pipeline, which gets no credentials.
configure_remote() {
  local override=false anonymous=false remote
  [ -n "${AWS_ENDPOINT_URL_S3:-}" ] && grep -q endpointurl .dvc/config && override=true
  ! has_s3_credentials && is_fork_merge_request && anonymous=true
  if $override || $anonymous; then
    remote=$(dvc remote default)  # one DVC start-up, and none when nothing needs changing
    if $override; then dvc remote modify --local "$remote" endpointurl "$AWS_ENDPOINT_URL_S3"; fi
    if $anonymous; then dvc remote modify --local "$remote" allow_anonymous_login true; fi
  fi
}
