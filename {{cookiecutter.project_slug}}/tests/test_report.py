from {{cookiecutter.package_name}}.report import changed_params, confusion_chart, curve_chart, metric_rows, table


def test_changed_params_lists_only_differences_with_dotted_names():
    base = {"seed": 1, "train": {"estimator": "random_forest", "random_forest": {"n_estimators": 100}}}
    head = {"seed": 1, "train": {"estimator": "random_forest", "random_forest": {"n_estimators": 10, "max_depth": 3}}}
    assert changed_params(base, head) == [
        ("train.random_forest.max_depth", "—", 3),
        ("train.random_forest.n_estimators", 100, 10),
    ]


def test_metric_rows_show_both_sides_and_signed_delta():
    rows = metric_rows({"accuracy": 0.9, "f1": 0.8}, {"accuracy": 0.95, "f1": 0.75})
    assert rows == [("accuracy", "0.9000", "0.9500", "+0.0500"), ("f1", "0.8000", "0.7500", "-0.0500")]
    assert metric_rows(None, {"accuracy": 0.5}) == [("accuracy", "—", "0.5000", "—")]


def test_table_is_markdown():
    assert table(["metric", "a"], [("f1", 1)]).splitlines() == ["| metric | a |", "|---|---|", "| `f1` | 1 |"]


def test_charts_draw_both_sides(tmp_path):
    roc = {"roc": [{"fpr": 0.0, "tpr": 0.0}, {"fpr": 0.2, "tpr": 0.9}, {"fpr": 1.0, "tpr": 1.0}]}
    pairs = [{"actual": "0", "predicted": "0"}, {"actual": "1", "predicted": "0"}, {"actual": "1", "predicted": "1"}]
    sides = {"base": {"roc": roc, "confusion_matrix": pairs}, "this change": {"roc": roc, "confusion_matrix": pairs}}
    assert curve_chart("roc", sides, tmp_path).read_bytes()[:4] == b"\x89PNG"
    assert curve_chart("precision_recall", sides, tmp_path) is None  # no data on either side
    assert confusion_chart(sides, tmp_path).read_bytes()[:4] == b"\x89PNG"
