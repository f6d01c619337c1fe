"""The merge-request report's verdict on real bakes: a change that is noise, a real improvement and
its reverse (and the gate failing the job on it), a data change, a regression; the predictions
behind the intervals read through DVC from the base revision."""

import re
from pathlib import Path

import pytest
from sklearn.datasets import load_diabetes

from harness.ci_job import Checkout, error_lines
from harness.project import bake_defaults, build_report, commit_first_model, project_env, run, set_params, use_own_table

pytestmark = pytest.mark.slow

VERDICT = re.compile(r"\*\*(better|worse|within noise)\*\*")


def commit_change(project: Path, branch: str, message: str, **values) -> None:
    """A branch off the current commit with these params, reproduced and committed."""
    run(["git", "checkout", "--quiet", "-b", branch], project)
    set_params(project, **values)
    run(["dvc", "repro", "--quiet"], project)
    run(["git", "commit", "--quiet", "-am", message], project)


def first_sentence(report: Path) -> tuple[str, str]:
    """The report's first paragraph, which must be one sentence with exactly one verdict word."""
    paragraph = report.read_text().split("\n\n")[1]
    assert "\n" not in paragraph and paragraph.count(". ") == 0 and paragraph.endswith("."), paragraph
    [verdict] = VERDICT.findall(paragraph)
    return verdict, paragraph


@pytest.fixture
def project(tmp_path) -> Path:
    """The defaults baked and main's first model committed (breast_cancer, 143 test rows)."""
    project = bake_defaults(tmp_path)
    commit_first_model(project, project_env(project))
    return project


def test_noise_an_improvement_its_reverse_and_the_gate(project):
    # A smaller learning rate changes one test row's prediction: noise, not a regression.
    commit_change(project, "slower", "Learn slower", **{"train.hist_gradient_boosting.learning_rate": 0.05})
    verdict, sentence = first_sentence(build_report(project, "main"))
    assert verdict == "within noise" and "on the same 143 test rows" in sentence, sentence
    assert sentence.startswith("balanced_accuracy 0.9661 → ")

    # One boosting iteration learns next to nothing: worse, beyond noise, on every counting metric.
    run(["git", "checkout", "--quiet", "main"], project)
    run(["dvc", "checkout", "--quiet"], project)
    commit_change(project, "weak", "One iteration", **{"train.hist_gradient_boosting.max_iter": 1})
    report = build_report(project, "main")
    verdict, sentence = first_sentence(report)
    assert verdict == "worse" and "95% interval -" in sentence, sentence
    text = report.read_text()
    assert "| **balanced_accuracy** | 0.9661 |" in text and "▼ worse" in text
    assert "Test rows: 143: 90 `1` (recall 0.99 → 1.00), 53 `0` (recall 0.94 → 0.00)." in text
    assert "Precision, recall and F1 are of the positive class `0`." in text
    verdicts = (project / "report" / "verdict.txt").read_text()
    assert verdicts == f"worse: {sentence.replace('**', '')}\n"

    # The comment job's gate: on, it fails with the reason; by default it only warns.
    checkout = Checkout(project, "weak", {"REPORT": "report/report.md"})
    [gate] = [step for step in checkout.steps("comment") if step.startswith("verdict_gate")]
    failed = checkout.run([gate], VERDICT_GATE="fail")
    assert failed.returncode == 1
    assert error_lines(failed) == [
        f"error: the model report says worse: {sentence.replace('**', '')} (VERDICT_GATE is fail; a change beyond "
        "noise in the headline metric fails the merge request's pipeline)."
    ]
    warned = checkout.run([gate])
    assert warned.returncode == 0 and "warning: the model report says worse: " in warned.stdout

    # The reverse: main's model against the weak one is better.
    run(["git", "checkout", "--quiet", "main"], project)
    run(["dvc", "checkout", "--quiet"], project)
    verdict, sentence = first_sentence(build_report(project, "weak"))
    assert verdict == "better" and "95% interval +" in sentence, sentence


def test_a_data_change_says_which_comparison_it_made(project):
    run(["git", "checkout", "--quiet", "-b", "fewer-rows"], project)
    raw = project / "data/raw/dataset.csv"
    lines = raw.read_text().splitlines(keepends=True)
    raw.write_text("".join(lines[:401]))  # the first 400 rows: a new split, other test rows
    run(["dvc", "add", "--quiet", "data/raw/dataset.csv"], project)
    run(["dvc", "repro", "--quiet"], project)
    verdict, sentence = first_sentence(build_report(project, "main"))
    # main's model trained on some of these test rows: only the others are scored, paired.
    found = re.search(r"on the (\d+) of this change's 100 test rows that `main`'s model did not train on", sentence)
    assert found and 0 < int(found[1]) < 100, sentence
    assert "> The raw data changed" in (project / "report" / "report.md").read_text()
    # (A data change main's model cannot be scored on, each side then on its own rows, is the
    # project's own test_report.py: compare_with.)


def test_a_regression_verdict_is_in_the_targets_unit(project):
    table = load_diabetes(as_frame=True).frame
    use_own_table(project, table, target="target")
    run(["dvc", "repro", "--quiet"], project)
    run(["git", "add", "--all"], project)
    run(["git", "commit", "--quiet", "-m", "Diabetes"], project)
    base = run(["git", "rev-parse", "--short", "HEAD"], project).stdout.strip()
    commit_change(project, "weak", "One iteration", **{"train.hist_gradient_boosting.max_iter": 1})
    report = build_report(project, base)
    verdict, sentence = first_sentence(report)
    assert verdict == "worse" and sentence.startswith("rmse (`target`) ") and "on the same 111 test rows" in sentence
    text = report.read_text()
    assert "Test rows: 111. RMSE and MAE are in units of the target `target`." in text
    assert "| r2 |" in text and "![predictions](./predictions.png)" in text
