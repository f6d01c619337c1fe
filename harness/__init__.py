"""What the tests, `make demo` and the benchmarks share: a baked project and its commands
(`project`), a loopback S3 server (`s3`), and a local GitLab: gitlab-ci-local runs with GitLab's
variables, bare repositories and a loopback API (`gitlab`, `gitlab_api`), with the strict CML
stand-in (`stand_ins/cml`)."""
