"""Fixtures: a small synthetic dataset in a temporary project directory."""

import numpy as np
import pandas as pd
import pytest
import yaml

PARAMS = {
    "seed": 0,
    "data": {"target": "label"},
    "prepare": {"test_size": 0.25},
    "train": {
        "estimator": "random_forest",
        "random_forest": {"n_estimators": 20, "max_depth": None, "min_samples_leaf": 1},
        "logistic_regression": {"C": 1.0, "max_iter": 500},
        "hist_gradient_boosting": {"learning_rate": 0.1, "max_iter": 30, "max_leaf_nodes": 15},
    },
}


def make_frame(classes: int = 2, rows: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    labels = np.arange(rows) % classes
    signal = labels[:, None] + rng.normal(scale=0.6, size=(rows, 3))
    frame = pd.DataFrame(signal, columns=["alpha", "beta", "gamma"])
    frame["noise"] = rng.normal(size=rows)
    frame["label"] = labels
    return frame


@pytest.fixture
def params() -> dict:
    return yaml.safe_load(yaml.safe_dump(PARAMS))  # a deep copy each test may edit


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A working directory laid out like the project, with a raw dataset of two classes."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "raw").mkdir(parents=True)
    make_frame().to_csv(tmp_path / "data" / "raw" / "dataset.csv", index=False)
    return tmp_path
