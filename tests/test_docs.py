"""The option help stays in step: cookiecutter.json (the questions and their defaults), its
`__prompts__`, the README's options table and the answers the pre-generation hook checks."""

import json
import re

from harness.project import TEMPLATE, pre_gen_hook

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
