"""ci/runners/, the GitLab Runner configurations a `training_runner=tagged` bake ships: each parses,
uses only keys GitLab Runner reads (harness/runner_config.py, from the runner's source), and keeps
what the train job relies on: requests honoured within limits, one VM per job, nothing idle."""

import re
import tomllib
from pathlib import Path

import pytest

from harness.project import bake_defaults
from harness.runner_config import FREE_FORM, PLUGIN_CONFIG, PLUGIN_KEYS, TABLES

KUBERNETES = "kubernetes.toml"
AUTOSCALERS = {
    "docker-autoscaler-aws.toml": "aws",
    "docker-autoscaler-gcp.toml": "googlecloud",
    "docker-autoscaler-azure.toml": "azure",
}
EXAMPLES = [KUBERNETES, *AUTOSCALERS]
HOW_TO_REGISTER = ("gitlab-runner register", "glrt-", "`ml-training`", "TRAINING_RUNNER_TAG", '"Run untagged jobs" off')


@pytest.fixture(scope="module")
def runners(tmp_path_factory) -> Path:
    return bake_defaults(tmp_path_factory.mktemp("bake"), "training_runner=tagged") / "ci" / "runners"


@pytest.fixture(scope="module")
def configs(runners) -> dict[str, dict]:
    return {name: tomllib.loads((runners / name).read_text(encoding="utf-8")) for name in EXAMPLES}


def undocumented_keys(table: dict, path: tuple[str, ...] = ()) -> list[str]:
    """The dotted names of the keys in `table` (at `path`), and below, that GitLab Runner does not read."""
    if path in FREE_FORM:
        return []
    if path not in TABLES:
        return [".".join(path)]
    found = []
    for key, value in table.items():
        here = (*path, key)
        if key not in TABLES[path]:
            found.append(".".join(here))
            continue
        for child in value if isinstance(value, list) else [value]:
            if here == PLUGIN_CONFIG:  # keys of the plugin that `table`, the autoscaler, names
                plugin_keys = PLUGIN_KEYS.get(table.get("plugin", "").split(":")[0], frozenset())
                found += [".".join((*here, name)) for name in child if name not in plugin_keys]
            elif isinstance(child, dict):
                found += undocumented_keys(child, here)
    return found


def test_a_tagged_bake_ships_the_four_examples(runners):
    assert sorted(path.name for path in runners.iterdir()) == sorted(EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_key_is_one_gitlab_runner_reads(configs, name):
    assert undocumented_keys(configs[name]) == []


def test_the_key_check_catches_invented_keys(configs):
    kubernetes = {**configs[KUBERNETES], "regions": "x"}
    kubernetes["runners"] = [{**configs[KUBERNETES]["runners"][0], "gpu_request": "1"}]
    assert sorted(undocumented_keys(kubernetes)) == ["regions", "runners.gpu_request"]
    aws = configs["docker-autoscaler-aws.toml"]["runners"][0]["autoscaler"]
    autoscaler = {**aws, "plugin_config": {**aws["plugin_config"], "zone": "a"}, "policy": [{"idle_counts": 0}]}
    assert sorted(undocumented_keys(autoscaler, ("runners", "autoscaler"))) == [
        "runners.autoscaler.plugin_config.zone",
        "runners.autoscaler.policy.idle_counts",
    ]
    assert undocumented_keys({"cache": {"s3": {}}}, ("runners",)) == ["runners.cache"]  # a table not listed


@pytest.mark.parametrize("name", EXAMPLES)
def test_settings_left_commented_out_are_documented_too(runners, name):
    text = (runners / name).read_text(encoding="utf-8")
    known_keys = set().union(*TABLES.values(), *PLUGIN_KEYS.values())
    for key in re.findall(r"^\s*#\s*([a-z_]+)\s*=", text, flags=re.MULTILINE):
        assert key in known_keys, key
    for table in re.findall(r"^\s*#\s*\[\[?([\w.]+)\]\]?\s*$", text, flags=re.MULTILINE):
        assert tuple(table.split(".")) in TABLES.keys() | FREE_FORM, table


def test_the_kubernetes_gpu_settings_work_once_uncommented(runners):
    text = (runners / KUBERNETES).read_text(encoding="utf-8")
    settings, marker, gpu = text.partition("  # [runners.kubernetes.node_tolerations]")
    config = tomllib.loads(settings + re.sub(r"^  # ?", "", marker + gpu, flags=re.MULTILINE))
    assert undocumented_keys(config) == []
    [runner] = config["runners"]
    assert runner["feature_flags"] == {"FF_USE_ADVANCED_POD_SPEC_CONFIGURATION": True}  # pod_spec needs it
    assert "nvidia.com/gpu: 1" in runner["kubernetes"]["pod_spec"][0]["patch"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_example_says_how_to_register_it_and_keeps_no_secret(runners, configs, name):
    text = (runners / name).read_text(encoding="utf-8")
    for needed in HOW_TO_REGISTER:
        assert needed in text, needed
    assert "{{" not in text and "{%" not in text
    assert next(iter(configs[name])) == "concurrent"
    [runner] = configs[name]["runners"]
    assert runner["url"] == "<your-gitlab-url>"
    assert runner["token"].startswith("glrt-<")  # a placeholder that register replaces


def test_kubernetes_honours_job_requests_only_within_limits(configs):
    [runner] = configs[KUBERNETES]["runners"]
    assert runner["executor"] == "kubernetes"
    kubernetes = runner["kubernetes"]
    for resource in ("cpu_request", "memory_request", "cpu_limit", "memory_limit"):
        assert kubernetes[f"{resource}_overwrite_max_allowed"], resource  # empty turns the overwrite off


@pytest.mark.parametrize("name", AUTOSCALERS)
def test_docker_autoscaler_gives_each_job_a_new_vm_and_keeps_none_idle(configs, name):
    [runner] = configs[name]["runners"]
    assert runner["executor"] == "docker-autoscaler"
    autoscaler = runner["autoscaler"]
    assert autoscaler["plugin"] == AUTOSCALERS[name]
    assert autoscaler["capacity_per_instance"] == 1
    assert autoscaler["max_use_count"] == 1
    assert autoscaler["max_instances"] >= 1
    assert configs[name]["concurrent"] == autoscaler["max_instances"]
    assert autoscaler["policy"] and all(policy["idle_count"] == 0 for policy in autoscaler["policy"])


def test_a_default_bake_has_no_runner_examples(tmp_path):
    assert not (bake_defaults(tmp_path) / "ci" / "runners").exists()
