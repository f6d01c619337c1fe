"""Fixtures: a small synthetic dataset in a temporary project directory."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

# The project's own dvc.yaml, which the temporary project gets a copy of.
PIPELINE = Path(__file__).parents[1] / "dvc.yaml"
# The paths the tests pass the stages: not dvc.yaml's, so a stage that wrote or read its own
# idea of a path instead of its argument would fail.
RAW, PREPARED, MODEL, EVALUATION = Path("raw.csv"), Path("split"), Path("out/model.skops"), Path("scores")

PARAMS = {
    "seed": 0,
    "data": {"target": "label", "task": "auto", "positive_class": None, "drop": []},
    "prepare": {"test_size": 0.25},
    "train": {
        "estimator": "hist_gradient_boosting",
        "hist_gradient_boosting": {"learning_rate": 0.1, "max_iter": 30, "max_leaf_nodes": 15},
        "random_forest": {"n_estimators": 20, "max_depth": None, "min_samples_leaf": 1},
        "linear": {"C": 1.0, "max_iter": 500},
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


def make_messy_frame(rows: int = 200) -> pd.DataFrame:
    """Every kind of column a real table has: an ID, a date, free text, a category with missing
    values, numbers with missing values, and a yes/no target where "no" is rare."""
    rng = np.random.default_rng(1)
    labels = np.where(rng.random(rows) < 0.2, "no", "yes")
    frame = pd.DataFrame(
        {
            "id": np.arange(1000, 1000 + rows),
            "visited": pd.date_range("2024-01-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
            "note": [f"note {i} written by hand" for i in range(rows)],
            "colour": np.where(labels == "no", "red", rng.choice(["blue", "green"], size=rows)),
            "size": np.where(labels == "no", 3.0, 1.0) + rng.normal(scale=0.5, size=rows),
            "weight": rng.normal(size=rows),
            "label": labels,
        }
    )
    frame.loc[::9, "colour"] = None
    frame.loc[::7, "size"] = np.nan
    return frame


def make_series(months: int = 240) -> pd.DataFrame:
    """Monthly sales that grow every month and peak with the summer's temperature, rows in no
    particular order (as an export gives them): a series over time, with its dates as text."""
    rng = np.random.default_rng(2)
    start = pd.date_range("2000-01-01", periods=months, freq="MS")
    temperature = 15 + 10 * np.sin(2 * np.pi * (start.month - 4) / 12) + rng.normal(size=months)
    frame = pd.DataFrame({"month": start.strftime("%Y-%m-%d"), "year": start.year, "temperature": temperature})
    frame["label"] = 0.5 * np.arange(months) + 0.8 * temperature + rng.normal(scale=3, size=months)
    return frame.sample(frac=1, random_state=0, ignore_index=True)


@pytest.fixture
def params() -> dict:
    return yaml.safe_load(yaml.safe_dump(PARAMS))  # a deep copy each test may edit


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A working directory with the project's dvc.yaml and a raw dataset of two classes at RAW."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(PIPELINE, tmp_path / "dvc.yaml")
    make_frame().to_csv(RAW, index=False)
    return tmp_path
