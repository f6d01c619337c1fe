import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{cookiecutter.package_name}} import predict
from {{cookiecutter.package_name}}.config import PipelineError, declared
from {{cookiecutter.package_name}}.predict import main
from {{cookiecutter.package_name}}.prepare import prepare
from {{cookiecutter.package_name}}.train import train

from .conftest import PREPARED, RAW, make_messy_frame


@pytest.fixture
def trained(project, params):
    """The model trained where dvc.yaml's train stage writes it, which is where predict looks."""
    make_messy_frame().to_csv(RAW, index=False)
    prepare(params, RAW, PREPARED)
    train(params, PREPARED, declared("train")[0])
    return project


def test_predicts_raw_rows_and_keeps_the_left_out_columns(trained, tmp_path):
    rows = make_messy_frame().head(5).drop(columns="label")
    rows.loc[0, "colour"] = "never seen"
    rows[["weight", "size", "id", "colour"]].to_csv(tmp_path / "new.csv", index=False)  # any order, no note or date
    main([str(tmp_path / "new.csv"), "--out", str(tmp_path / "out" / "predicted.csv")])
    predicted = pd.read_csv(tmp_path / "out" / "predicted.csv")
    assert list(predicted.columns) == [
        "weight",
        "size",
        "id",
        "colour",
        "predicted_label",
        "probability_no",
        "probability_yes",
    ]
    assert list(predicted["id"]) == list(rows["id"])
    assert set(predicted["predicted_label"]) <= {"yes", "no"}
    assert ((predicted["probability_no"] + predicted["probability_yes"]).round(5) == 1).all()


def test_missing_model_columns_are_all_named_and_nothing_is_written(trained, tmp_path):
    rows = make_messy_frame().head(5).drop(columns=["size", "colour"]).assign(predicted_label="yes")
    rows.to_csv(tmp_path / "new.csv", index=False)
    with pytest.raises(PipelineError) as error:
        main([str(tmp_path / "new.csv"), "--out", str(tmp_path / "out" / "predicted.csv")])
    assert str(error.value) == (
        f"{tmp_path / 'new.csv'} cannot be predicted: it lacks columns the model needs: size, colour (add them; "
        "empty cells are fine); it has columns predict adds: predicted_label (rename or remove them)."
    )
    assert not (tmp_path / "out").exists()


def test_a_missing_model_says_how_to_get_one(project, tmp_path):
    make_messy_frame().to_csv(tmp_path / "new.csv", index=False)
    with pytest.raises(PipelineError, match="models/model.skops is missing; run `dvc repro` or `dvc pull`"):
        main([str(tmp_path / "new.csv")])


def make_scoring_frame(rows: int = 240) -> pd.DataFrame:
    """A table whose only signal is `grade`, a text column of codes that look like numbers ("07",
    "10") beside one that does not ("B"): "07" is always "no". `ref` is an ID with leading zeros,
    `stamp` a timestamp; both are left out and must come back as written."""
    rng = np.random.default_rng(2)
    labels = np.where(np.arange(rows) % 2, "yes", "no")
    return pd.DataFrame(
        {
            "ref": [f"{number:06d}" for number in range(100, 100 + rows)],
            "stamp": pd.date_range("2024-01-01 08:00", periods=rows, freq="h").strftime("%Y-%m-%dT%H:%M:%S+01:00"),
            "grade": np.where(labels == "no", "07", rng.choice(["10", "B"], size=rows)),
            "amount": rng.normal(size=rows).round(2),
            "label": labels,
        }
    )


@pytest.fixture
def scored(project, params):
    """A model trained on `make_scoring_frame`, and a scoring file as people write one: its own
    `customer_id` first, the label absent, a blank and a category the model never saw in `grade`,
    a decimal comma in `amount`, a quoted note with the separator and a line break in it."""
    make_scoring_frame().to_csv(RAW, index=False)
    prepare(params, RAW, PREPARED)
    train(params, PREPARED, declared("train")[0])
    lines = [
        "customer_id,ref,grade,amount,stamp,note",
        "C-001,000123,07,1.5,2024-03-01T09:00:00+01:00,",
        "C-002,000124,10,,2024-03-01 10:00,plain",
        'C-003,000125,,"1,5",01/03/2024,"a note, with a comma"',
        'C-004,000126,Z,0.25,2024-03-01T11:00:00+01:00,"two\nlines"',
        "C-005,000127,07,-2,,",
        "C-006,000128,10,3,,",
    ]
    return "\n".join(lines) + "\n"


def score(text: str, tmp_path: Path, encoding: str = "utf-8") -> str:
    """The text predict writes for `text`, both in `encoding`."""
    (tmp_path / "rows.csv").write_bytes(text.encode(encoding))
    main([str(tmp_path / "rows.csv"), "--out", str(tmp_path / "out" / "predicted.csv")])
    return (tmp_path / "out" / "predicted.csv").read_bytes().decode(encoding)


def added_cells(output: str, header: list[str]) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(output), dtype=str, keep_default_na=False)[header]


ADDED = ["predicted_label", "probability_no", "probability_yes"]


def test_rows_are_copied_as_written_and_codes_read_as_training_read_them(scored, tmp_path, capsys):
    output = score(scored, tmp_path)
    header, *records = scored.split("\n")[:-1]
    written = output.split("\n")
    assert written[0] == header + "," + ",".join(ADDED)
    # each input record, quoted line break included, byte for byte before its predictions
    records = ["\n".join(records[3:5]) if index == 3 else record for index, record in enumerate(records)]
    records = [record for index, record in enumerate(records) if index != 4]
    body = "\n".join(written[1:])
    position = 0
    for record in records:
        position = body.index(record + ",", position) + len(record)
    found = added_cells(output, ["customer_id", "ref", "stamp", *ADDED])
    assert list(found["ref"]) == ["000123", "000124", "000125", "000126", "000127", "000128"]
    assert found["stamp"].iloc[2] == "01/03/2024"
    probability_no = found["probability_no"].astype(float)
    predicted = dict(zip(found["customer_id"], found["predicted_label"], strict=True))
    # "07" is the category the model learnt "no" from; "10" is not "10.0" though a cell is blank
    assert predicted["C-001"] == predicted["C-005"] == "no" and probability_no.iloc[[0, 4]].min() > 0.9
    assert predicted["C-002"] == predicted["C-006"] == "yes" and probability_no.iloc[[1, 5]].max() < 0.1
    # a category the model never saw is a missing value, as a blank is
    assert probability_no.iloc[2] == probability_no.iloc[3]
    notes = capsys.readouterr().err.splitlines()
    assert notes == [
        "predict: copied through, not used by the model: customer_id, note",
        "predict: read as missing: 'grade': 1 rows of categories the model never saw ('Z'); "
        "'amount': 1 cells that are not numbers ('1,5')",
        f"predict: 6 rows to {tmp_path / 'out' / 'predicted.csv'}",
    ]


def test_blocks_give_the_same_output_as_one_read(scored, tmp_path, monkeypatch):
    """Rows are read, predicted and written a block at a time: blocks of one or two records (a
    quoted line break inside a block's end) give the same file as the whole file at once."""
    whole = score(scored, tmp_path)
    for size in (1, 60):
        monkeypatch.setattr(predict, "BLOCK_BYTES", size)
        assert score(scored, tmp_path) == whole, size


def test_a_windows_export_is_read_and_copied_in_its_encoding(scored, tmp_path):
    text = scored.replace("plain", "café crème")
    output = score(text, tmp_path, encoding="cp1252")
    assert "C-002,000124,10,,2024-03-01 10:00,café crème,yes," in output


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "is empty: write the rows to predict there, a header row first."),
        ("\n\n", "is empty: write the rows to predict there, a header row first."),
        ("ref,grade,amount\n", "has a header but no rows: nothing to predict."),
        ("ref,grade,amount\n\n", "has a header but no rows: nothing to predict."),
    ],
)
def test_an_empty_or_header_only_file_is_one_line_and_writes_nothing(scored, tmp_path, text, problem):
    (tmp_path / "rows.csv").write_text(text)
    with pytest.raises(PipelineError) as error:
        main([str(tmp_path / "rows.csv"), "--out", str(tmp_path / "out" / "predicted.csv")])
    assert str(error.value) == f"{tmp_path / 'rows.csv'} {problem}"
    assert not (tmp_path / "out").exists()


def test_a_run_that_fails_midway_leaves_no_partial_file(scored, tmp_path, monkeypatch):
    monkeypatch.setattr(predict, "BLOCK_BYTES", 1)  # a block a row: the failure comes after rows are written
    calls = []
    real = predict.predicted

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(predict, "predicted", interrupted)
    with pytest.raises(KeyboardInterrupt):
        score(scored, tmp_path)
    assert len(calls) == 3 and list((tmp_path / "out").iterdir()) == []


def test_a_run_stopped_by_sigterm_leaves_no_partial_file(scored, tmp_path):
    """As a CI job's cancel or a scheduler's time limit stops it: SIGTERM to the running process."""
    rows = scored.split("\n", 1)[1] * 20_000  # 120,000 rows: several blocks, some seconds
    (tmp_path / "rows.csv").write_text(scored.split("\n", 1)[0] + "\n" + rows)
    out = tmp_path / "out" / "predicted.csv"
    command = [sys.executable, "-m", "{{ cookiecutter.package_name }}.predict", str(tmp_path / "rows.csv")]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    process = subprocess.Popen([*command, "--out", str(out)], env=env, stderr=subprocess.PIPE, text=True)
    partial = out.with_name("predicted.csv.partial")
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_a_european_export_is_read_with_its_separator_and_decimal_comma(scored, tmp_path, capsys):
    """`;`-separated with decimal commas, as a spreadsheet in Europe saves "CSV": the same
    predictions as the comma file, each row still as written."""
    plain = added_cells(score(scored, tmp_path), ADDED)
    european = scored.replace(",", ";").replace("1.5", "1,5").replace("0.25", "0,25").replace('"1;5"', "1,5")
    european = european.replace('"a note; with a comma"', '"a note, with a comma"')
    capsys.readouterr()
    output = score(european, tmp_path)
    assert "'amount'" not in capsys.readouterr().err  # "1,5" and "0,25" are numbers here
    assert "C-001;000123;07;1,5;2024-03-01T09:00:00+01:00;;no;" in output
    found = pd.read_csv(io.StringIO(output), sep=";", dtype=str, keep_default_na=False)[ADDED]
    assert found["predicted_label"].tolist() == plain["predicted_label"].tolist()
    # "1,5" is a number here, a stray cell (read as missing) in the comma file
    assert found["probability_no"].tolist()[:2] + found["probability_no"].tolist()[3:] == (
        plain["probability_no"].tolist()[:2] + plain["probability_no"].tolist()[3:]
    )


def test_an_excel_workbook_saved_as_csv_is_one_line(scored, tmp_path):
    (tmp_path / "rows.csv").write_bytes(b"PK\x03\x04" + bytes(200))
    with pytest.raises(PipelineError) as error:
        main([str(tmp_path / "rows.csv"), "--out", str(tmp_path / "out" / "predicted.csv")])
    assert str(error.value) == (
        f"{tmp_path / 'rows.csv'} is an Excel workbook (or another zip archive), not a CSV file: save it as CSV UTF-8."
    )
    assert not (tmp_path / "out").exists()
