"""The option help stays in step: cookiecutter.json (the questions and their defaults), its
`__prompts__`, the README's options table and the answers the pre-generation hook checks; and
the baked README states what GitLab does where no local run can show it (labels, tiers, keys)."""

import json
import re

import pytest

from harness.project import TEMPLATE, bake_defaults, pre_gen_hook

QUESTIONS = json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))
OPTIONS = [key for key in QUESTIONS if not key.startswith("_")]


def options_table() -> dict[str, str]:
    """variable -> its default cell, from the README's options table, in order."""
    readme = (TEMPLATE / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("### Options") :].split("\n\n")[1]
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    return {row[0].strip("| `"): row[1] for row in rows}


def test_the_options_table_lists_every_question_in_order():
    assert list(options_table()) == OPTIONS


def test_the_options_table_shows_the_real_defaults():
    for key, cell in options_table().items():
        default = QUESTIONS[key]
        if isinstance(default, bool):
            assert cell == f"`{str(default).lower()}`", key
        elif isinstance(default, list):  # a choice: the first is the default, the others follow
            assert cell.startswith(f"`{default[0]}`") and all(choice in cell for choice in default[1:]), key
        elif "{{" in default:
            assert cell.startswith("from ") or cell.startswith("`<"), key  # derived from another answer
        elif default == "":
            assert cell.startswith("empty"), key
        elif len(default) <= 40:
            assert cell == f"`{default}`", key


def test_every_question_has_a_prompt_and_every_hook_rule_a_question():
    assert set(QUESTIONS["__prompts__"]) == set(OPTIONS)
    assert set(pre_gen_hook().RULES) <= set(OPTIONS)
    prompts = QUESTIONS["__prompts__"].values()
    assert all(prompt.strip() and "\n" not in prompt for prompt in prompts)
    assert not any(re.search(r"\{\{", prompt) for prompt in prompts)


# --- The baked README says what GitLab does (facts the local proving ground cannot show) --------


@pytest.fixture(scope="module")
def baked_readmes(tmp_path_factory) -> dict[str, str]:
    readmes = {}
    for runner in ("gitlab", "cml"):
        project = bake_defaults(tmp_path_factory.mktemp(runner), f"training_runner={runner}")
        readmes[runner] = " ".join((project / "README.md").read_text(encoding="utf-8").split())
    script = (project / "ci" / "vm-startup.sh").read_text(encoding="utf-8")
    readmes["vm-startup"] = " ".join(re.sub(r"^# ?", "", script, flags=re.MULTILINE).split())  # its comments as prose
    return readmes


def test_the_sweep_label_is_read_when_the_pipeline_is_created(baked_readmes):
    """GitLab reads CI_MERGE_REQUEST_LABELS at pipeline creation; adding a label starts nothing."""
    readme = baked_readmes["gitlab"]
    assert "The label `sweep`, present when the pipeline is created." in readme
    assert "adding a label starts nothing" in readme and "press **Run pipeline**" in readme
    assert "add the label `sweep` (or play" not in readme


def test_protected_tags_are_explained_per_tier(baked_readmes):
    readme = baked_readmes["gitlab"]
    assert '**GitLab Free:** "Allowed to create" takes roles only' in readme
    assert "naming a user or a group needs Premium" in readme
    assert "Tag protection limits who pushes tags, not who registers" in readme
    assert "allow the `REPO_TOKEN` user too" not in readme


def test_the_vm_start_up_script_says_what_it_is_for_on_ubuntu_22_04(baked_readmes):
    """Only CML's default 18.04 image meets HashiCorp's removed apt repository (TPI #773)."""
    for text in (baked_readmes["cml"], baked_readmes["vm-startup"]):
        assert "Only CML's default image" in text or "only CML's default image" in text
        assert "so the terraform that deletes" in text
    assert "sets cloud machines up with a script that fails" not in baked_readmes["cml"]


def test_the_cloud_key_is_not_the_s3_key(baked_readmes):
    readme = baked_readmes["cml"]
    assert "`TRAIN_CLOUD_AWS_ACCESS_KEY_ID`, `TRAIN_CLOUD_AWS_SECRET_ACCESS_KEY`" in readme
    assert "The S3 key never goes there" in readme
