"""The keys GitLab Runner reads from config.toml, table by table: the examples in ci/runners/ use no other.

Source: the `toml:"..."` tags of the structs in common/config.go of GitLab Runner v19.3.0 (its GitHub
mirror gitlabhq/gitlab-runner, tag v19.3.0, commit 9cbf0074ddb0e2f79d79f44406cafebf09117b64):
`Config` (top level), `SessionServer`, `RunnerConfig` with its embedded `RunnerCredentials` and
`RunnerSettings` ([[runners]]), `DockerConfig` with the embedded `docker.Credentials` of
helpers/docker/credentials.go, `KubernetesConfig`, `KubernetesPodSpec`, `AutoscalerConfig`,
`ConnectorConfig` and `AutoscalerPolicyConfig`.

The runner hands [runners.autoscaler.plugin_config] to the fleeting plugin as JSON, so its keys
belong to each plugin:
- aws: the json tags of `InstanceGroup` in fleeting-plugin-aws's provider.go at its commit b73a837
  (kept as the first commit, 5c71bcd, of the GitHub repository hetznercloud/fleeting-plugin-hetzner,
  which started as that plugin), plus `region`, which the runner's docs/executors/instance.md uses;
- googlecloud and azure: the keys of the examples in the runner's docs/executors/docker_autoscaler.md
  and docs/executors/instance.md (v19.3.0); those plugins' own source was not consulted.
"""


def _keys(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Documented keys per table, the table named by its path of keys; [[array]] tables and their
# elements share one path.
TABLES: dict[tuple[str, ...], frozenset[str]] = {
    (): _keys("""
        check_interval concurrent connection_max_age experimental labels listen_address log_format log_level
        machine runners sentry_dsn session_server shutdown_timeout user
    """),
    ("session_server",): _keys("advertise_address listen_address session_timeout"),
    ("runners",): _keys("""
        artifact autoscaler builds_dir cache cache_dir clean_git_config clone_url custom custom_build_dir
        debug_trace_disabled docker environment executor experimental feature_flags get_sources_timeout id
        instance job_status_final_update_retry_limit kubernetes labels limit machine monitoring name
        output_limit parallels post_build_script post_get_sources_script pre_build_script
        pre_get_sources_script prepare_timeout proxy_exec referees request_concurrency
        safe_directory_checkout shell slot_cgroup_template ssh step_runner_image strict_check_interval
        tls-ca-file tls-cert-file tls-key-file token token_expires_at token_obtained_at unhealthy_interval
        unhealthy_requests_limit url use_slot_cgroups virtualbox
    """),
    ("runners", "docker"): _keys("""
        allowed_images allowed_privileged_images allowed_privileged_services allowed_pull_policies
        allowed_services allowed_users cache_dir cap_add cap_drop cgroup_parent container_labels cpu_shares
        cpus cpuset_cpus cpuset_mems device_cgroup_rules devices disable_cache disable_entrypoint_overwrite
        dns dns_search enable_ipv6 extra_hosts gpus group_add helper_image helper_image_flavor host hostname
        image ipcmode isolation links log_options mac_address memory memory_reservation memory_swap
        network_mode network_mtu oom_kill_disable oom_score_adjust pid_mode privileged pull_policy runtime
        security_opt service_cgroup_parent service_cpu_shares service_cpus service_cpuset_cpus service_gpus
        service_memory service_memory_reservation service_memory_swap service_slot_cgroup_template services
        services_devices services_limit services_privileged services_security_opt services_tmpfs shm_size
        sysctls tls_cert_path tls_verify tmpfs ulimit user userns_mode volume_driver volume_driver_ops
        volume_keep volumes volumes_from wait_for_services_timeout
    """),
    ("runners", "kubernetes"): _keys("""
        affinity allow_privilege_escalation allowed_groups allowed_images allowed_pull_policies
        allowed_services allowed_users automount_service_account_token autoscaler bearer_token
        bearer_token_overwrite_allowed build_container_security_context ca_file cap_add cap_drop cert_file
        cleanup_grace_period_seconds cleanup_resources_timeout container_lifecycle context cpu_limit
        cpu_limit_overwrite_max_allowed cpu_request cpu_request_overwrite_max_allowed dns_config dns_policy
        ephemeral_storage_limit ephemeral_storage_limit_overwrite_max_allowed ephemeral_storage_request
        ephemeral_storage_request_overwrite_max_allowed helper_container_security_context helper_cpu_limit
        helper_cpu_limit_overwrite_max_allowed helper_cpu_request helper_cpu_request_overwrite_max_allowed
        helper_ephemeral_storage_limit helper_ephemeral_storage_limit_overwrite_max_allowed
        helper_ephemeral_storage_request helper_ephemeral_storage_request_overwrite_max_allowed helper_image
        helper_image_autoset_arch_and_os helper_image_flavor helper_memory_limit
        helper_memory_limit_overwrite_max_allowed helper_memory_request
        helper_memory_request_overwrite_max_allowed host host_aliases image image_pull_secrets
        init_permissions_container_security_context key_file logs_base_dir memory_limit
        memory_limit_overwrite_max_allowed memory_request memory_request_overwrite_max_allowed namespace
        namespace_overwrite_allowed namespace_per_job node_selector node_selector_overwrite_allowed
        node_tolerations node_tolerations_overwrite_allowed pod_annotations pod_annotations_overwrite_allowed
        pod_cpu_limit pod_cpu_limit_overwrite_max_allowed pod_cpu_request pod_cpu_request_overwrite_max_allowed
        pod_disruption_budget pod_labels pod_labels_overwrite_allowed pod_memory_limit
        pod_memory_limit_overwrite_max_allowed pod_memory_request pod_memory_request_overwrite_max_allowed
        pod_security_context pod_spec pod_termination_grace_period_seconds poll_interval poll_timeout
        print_pod_warning_events priority_class_name privileged pull_policy
        resource_availability_check_max_attempts retry_backoff_max retry_limit retry_limits runtime_class_name
        scheduler_name scripts_base_dir service_account service_account_overwrite_allowed
        service_container_security_context service_cpu_limit service_cpu_limit_overwrite_max_allowed
        service_cpu_request service_cpu_request_overwrite_max_allowed service_ephemeral_storage_limit
        service_ephemeral_storage_limit_overwrite_max_allowed service_ephemeral_storage_request
        service_ephemeral_storage_request_overwrite_max_allowed service_memory_limit
        service_memory_limit_overwrite_max_allowed service_memory_request
        service_memory_request_overwrite_max_allowed services use_service_account_image_pull_secrets volumes
    """),
    ("runners", "kubernetes", "pod_spec"): _keys("name patch patch_path patch_type"),
    ("runners", "autoscaler"): _keys("""
        capacity_per_instance connector_config delete_instances_on_shutdown deletion_retry_interval
        failure_threshold instance_acquire_timeout instance_creation_time_buckets
        instance_deletion_time_buckets instance_is_running_time_buckets instance_life_duration_buckets
        instance_operation_time_buckets instance_readiness_time_buckets instance_ready_command log_external_ip
        log_internal_ip max_instances max_use_count plugin plugin_config policy reservation_throttling
        scale_throttle shutdown_deletion_interval shutdown_deletion_retries state_storage update_interval
        update_interval_when_expecting vm_isolation
    """),
    ("runners", "autoscaler", "connector_config"): _keys("""
        arch keepalive key_path os password protocol protocol_port timeout use_external_addr
        use_static_credentials username
    """),
    ("runners", "autoscaler", "policy"): _keys("""
        idle_count idle_time periods preemptive_mode scale_factor scale_factor_limit timezone
    """),
}

# Tables whose keys are the user's own (`map[string]...` in the source): labels, feature flags, node
# selectors and tolerations, pod labels and annotations.
FREE_FORM: frozenset[tuple[str, ...]] = frozenset(
    {
        ("labels",),
        ("runners", "labels"),
        ("runners", "feature_flags"),
        ("runners", "kubernetes", "node_selector"),
        ("runners", "kubernetes", "node_tolerations"),
        ("runners", "kubernetes", "pod_labels"),
        ("runners", "kubernetes", "pod_annotations"),
    }
)

PLUGIN_CONFIG = ("runners", "autoscaler", "plugin_config")
# [runners.autoscaler.plugin_config] keys, by the plugin named in [runners.autoscaler] `plugin`.
PLUGIN_KEYS: dict[str, frozenset[str]] = {
    "aws": _keys("name profile config_file credentials_file region"),
    "googlecloud": _keys("name project zone credentials_file"),
    "azure": _keys("name subscription_id resource_group_name"),
}
