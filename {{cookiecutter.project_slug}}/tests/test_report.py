import numpy as np
import pytest

from {{cookiecutter.package_name}}.config import PipelineError
from {{cookiecutter.package_name}}.report import confusion_chart, confusion_counts, curve_chart, dvc_table


def test_charts_draw_both_sides(tmp_path):
    roc = {"roc": [{"fpr": 0.0, "tpr": 0.0}, {"fpr": 0.2, "tpr": 0.9}, {"fpr": 1.0, "tpr": 1.0}]}
    counts = [{"actual": a, "predicted": p, "count": n} for a, p, n in [("0", "0", 5), ("1", "0", 1), ("1", "1", 7)]]
    sides = {"base": {"roc": roc, "confusion_matrix": counts}, "this change": {"roc": roc, "confusion_matrix": counts}}
    assert curve_chart("roc", sides, tmp_path).read_bytes()[:4] == b"\x89PNG"
    assert curve_chart("precision_recall", sides, tmp_path) is None  # no data on either side
    assert confusion_chart(sides, tmp_path).read_bytes()[:4] == b"\x89PNG"


def test_confusion_counts_read_counts_and_older_per_row_files_alike():
    counts = [{"actual": "10", "predicted": "2", "count": 3}, {"actual": "2", "predicted": "2", "count": 4}]
    rows = [{"actual": "10", "predicted": "2"}] * 3 + [{"actual": "2", "predicted": "2"}] * 4
    for pairs in (counts, rows):
        classes, matrix = confusion_counts(pairs)
        assert classes == ["2", "10"]  # numeric labels in numeric order
        assert np.array_equal(matrix, [[4, 0], [3, 0]])


def test_dvc_table_missing_says_which_command_writes_it(tmp_path):
    with pytest.raises(PipelineError, match=r"metrics.md is missing; write it first with `dvc metrics diff main"):
        dvc_table(tmp_path / "metrics.md", "dvc metrics diff main --md")
    (tmp_path / "params.md").write_text("\n", encoding="utf-8")
    assert dvc_table(tmp_path / "params.md", "dvc params diff main --md") == ""  # nothing changed
