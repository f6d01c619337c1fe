"""What the tests, `make demo` and the benchmarks share: a baked project and its commands
(`project`), a loopback S3 server (`s3`), and a local GitLab: gitlab-ci-local runs with GitLab's
variables, bare repositories and a loopback API (`gitlab`, `gitlab_api`), with the strict stand-ins
for CML and for the `leo` tool of its terraform provider (`stand_ins/cml`, `stand_ins/leo`, sharing
`stand_ins/tpi.py`), and a model of how GitLab processes a pipeline's jobs, which gitlab-ci-local
does not (`job_states`)."""
