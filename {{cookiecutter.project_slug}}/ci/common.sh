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
