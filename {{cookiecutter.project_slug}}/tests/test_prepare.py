import zipfile

import numpy as np
import pandas as pd
import pytest

from {{cookiecutter.package_name}}.config import SUMMARY, TEST, TRAIN, PipelineError, read_summary
from {{cookiecutter.package_name}}.prepare import prepare, random_split

from .conftest import PREPARED, RAW, make_frame, make_messy_frame, make_series


def test_split_is_stratified_and_sized(project, params):
    prepare(params, RAW, PREPARED)
    train, test = pd.read_parquet(PREPARED / TRAIN), pd.read_parquet(PREPARED / TEST)
    assert (len(train), len(test)) == (90, 30)
    assert test["label"].value_counts().to_dict() == {0: 15, 1: 15}


@pytest.mark.parametrize("rows", [30, 143, 1_001])
@pytest.mark.parametrize("kind", ["two classes", "rare class", "text", "values"])
def test_the_random_split_is_scikit_learns_row_for_row(rows, kind):
    """prepare splits without importing scikit-learn, drawing the rows train_test_split would."""
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(rows)
    labels = {
        "two classes": rng.integers(0, 2, rows),
        "rare class": np.where(np.arange(rows) < 3, 2, rng.integers(0, 2, rows)),
        "text": np.array(["no", "yes", "maybe", "Yes"], dtype=object)[np.arange(rows) % 4],
        "values": rng.normal(size=rows),
    }[kind]
    stratify = None if kind == "values" else labels
    for fraction, seed in [(0.25, 0), (0.2, 42), (1 / 3, 7)]:
        expected = train_test_split(np.arange(rows), test_size=fraction, random_state=seed, stratify=stratify)
        found = random_split(labels, fraction, seed, stratify is not None)
        assert all(np.array_equal(a, b) for a, b in zip(found, expected, strict=True)), (fraction, seed)


def test_split_depends_on_seed(project, params):
    prepare(params, RAW, PREPARED)
    first = (PREPARED / TEST).read_bytes()
    params["seed"] = 1
    prepare(params, RAW, PREPARED)
    assert (PREPARED / TEST).read_bytes() != first


def test_missing_target_column_lists_the_columns_and_the_closest_name(project, params):
    make_frame().rename(columns={"label": "Labels"}).to_csv(RAW, index=False)
    with pytest.raises(PipelineError) as error:
        prepare(params, RAW, PREPARED)
    assert str(error.value) == (
        "raw.csv: no target column 'label' (the file has 'alpha', 'beta', 'gamma', 'noise', 'Labels'; the closest "
        "is 'Labels'; rename your label column or set data.target in params.yaml)."
    )
    assert not (PREPARED / TRAIN).exists() and not (PREPARED / TEST).exists()


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1, "a quarter", True])
def test_test_size_outside_unit_interval_is_rejected(project, params, value):
    params["prepare"]["test_size"] = value
    with pytest.raises(PipelineError, match="prepare.test_size must be a number between 0 and 1"):
        prepare(params, RAW, PREPARED)
    assert not (PREPARED / TRAIN).exists()


def test_every_params_problem_is_reported_at_once(project, params):
    params["seed"] = "x"
    params["prepare"]["test_size"] = 2
    params["data"].update(task="clusters", drop="id", csv={"sep": ";;", "quote": "'"}, columns={"numeric": "a"})
    with pytest.raises(PipelineError) as error:
        prepare(params, RAW, PREPARED)
    assert str(error.value) == (
        "params.yaml: data.task must be one of auto, classification, regression, got 'clusters'; "
        "data.drop must be a list of column names, got 'id'; "
        "data.csv takes sep, decimal, encoding (each null to detect it), got {'sep': ';;', 'quote': \"'\"}; "
        "data.columns.numeric must be a list of column names, got 'a'; "
        "prepare.test_size must be a number between 0 and 1 (exclusive), got 2; "
        "seed must be a non-negative integer, got 'x'."
    )
    assert not PREPARED.exists()


def test_every_problem_of_the_file_is_reported_at_once(project, params):
    frame = make_frame()
    frame["empty"] = None
    frame.loc[4, "label"] = 7  # a class with a single row
    frame.to_csv(RAW, index=False)
    params["data"]["drop"] = ["nope"]
    params["data"]["positive_class"] = 3
    with pytest.raises(PipelineError) as error:
        prepare(params, RAW, PREPARED)
    message = str(error.value)
    assert "\n" not in message
    for part in (
        "data.drop names columns the file does not have: 'nope'",
        "columns with no value at all: empty (add them to data.drop)",
        "classes with a single row, which cannot be split: 7",
        "data.positive_class is set but 'label' has 3 classes",
    ):
        assert part in message
    assert not (PREPARED / TRAIN).exists() and not (PREPARED / SUMMARY).exists()


def test_single_value_target_and_text_regression_target_are_refused(project, params):
    make_frame(classes=1).to_csv(RAW, index=False)
    with pytest.raises(PipelineError, match="target 'label' needs at least two different values, found 1"):
        prepare(params, RAW, PREPARED)
    make_messy_frame().to_csv(RAW, index=False)
    params["data"]["task"] = "regression"
    with pytest.raises(PipelineError, match="target 'label' is not numeric, as a regression needs"):
        prepare(params, RAW, PREPARED)


@pytest.mark.parametrize(
    ("labels", "task"),
    [
        (["a", "b"] * 30, "classification"),
        ([0, 1, 2] * 20, "classification"),
        (list(np.linspace(0, 9, 60)), "regression"),
    ],
)
def test_auto_task_is_decided_from_the_target_and_printed(project, params, capsys, labels, task):
    frame = make_frame(rows=60)
    frame["label"] = labels
    frame.to_csv(RAW, index=False)
    prepare(params, RAW, PREPARED)
    assert read_summary(PREPARED / SUMMARY)["task"] == task
    assert f"prepare: task {task} (" in capsys.readouterr().out


def test_declared_task_wins_over_auto(project, params):
    frame = make_frame(rows=60)
    frame["label"] = np.arange(60) % 3
    frame.to_csv(RAW, index=False)
    params["data"]["task"] = "regression"
    prepare(params, RAW, PREPARED)
    assert read_summary(PREPARED / SUMMARY)["task"] == "regression"


def test_positive_class_is_the_rarer_one_unless_declared(project, params, capsys):
    make_messy_frame().to_csv(RAW, index=False)
    prepare(params, RAW, PREPARED)
    assert read_summary(PREPARED / SUMMARY)["positive_class"] == "no"
    assert "prepare: positive class 'no'" in capsys.readouterr().out
    params["data"]["positive_class"] = "yes"
    prepare(params, RAW, PREPARED)
    assert read_summary(PREPARED / SUMMARY)["positive_class"] == "yes"
    params["data"]["positive_class"] = "maybe"
    with pytest.raises(PipelineError, match="data.positive_class 'maybe' is not a value of 'label'"):
        prepare(params, RAW, PREPARED)


def test_ids_dates_and_free_text_are_named_in_one_warning_and_left_out(project, params, capsys):
    make_messy_frame().to_csv(RAW, index=False)
    prepare(params, RAW, PREPARED)
    summary = read_summary(PREPARED / SUMMARY)
    assert summary["numeric"] == ["size", "weight"] and summary["categorical"] == ["colour"]
    assert set(summary["ignored"]) == {"id", "visited", "note"}
    [warning] = [line for line in capsys.readouterr().out.splitlines() if "warning" in line]
    assert all(f"'{name}'" in warning for name in ("id", "visited", "note")) and "data.drop" in warning
    params["data"]["drop"] = ["id", "visited", "note"]
    prepare(params, RAW, PREPARED)
    assert "warning" not in capsys.readouterr().out
    assert read_summary(PREPARED / SUMMARY)["ignored"] == dict.fromkeys(
        ["id", "visited", "note"], "listed in data.drop"
    )


def test_rows_without_a_target_are_left_out_and_the_profile_is_small(project, params):
    frame = make_messy_frame()
    frame.loc[:9, "label"] = None
    frame.to_csv(RAW, index=False)
    prepare(params, RAW, PREPARED)
    assert len(pd.read_parquet(PREPARED / TRAIN)) + len(pd.read_parquet(PREPARED / TEST)) == 190
    profile = read_summary(PREPARED / SUMMARY)["data"]
    assert profile["rows"] == 200 and profile["columns"] == list(frame.columns)
    assert profile["missing"]["label"] == 0.05 and profile["missing"]["colour"] == round(23 / 200, 4)
    assert sum(profile["target"].values()) == 190


def test_split_keeps_the_raw_values_and_is_the_same_file_each_time(project, params):
    prepare(params, RAW, PREPARED)
    first = (PREPARED / TRAIN).read_bytes(), (PREPARED / TEST).read_bytes()
    prepared = pd.concat([pd.read_parquet(PREPARED / TRAIN), pd.read_parquet(PREPARED / TEST)])
    raw = pd.read_csv(RAW)
    assert list(prepared.columns) == list(raw.columns)
    by_alpha = {"by": "alpha", "ignore_index": True}
    pd.testing.assert_frame_equal(prepared.sort_values(**by_alpha), raw.sort_values(**by_alpha))
    prepare(params, RAW, PREPARED)
    assert ((PREPARED / TRAIN).read_bytes(), (PREPARED / TEST).read_bytes()) == first  # dvc.lock stays put


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"alpha,label\n1,0\n2,1,3\n", "is not a readable CSV file: Error tokenizing data. C error: Expected 2 fields"),
        (b"", "is empty: write your table there, a header row first, then `dvc add` it."),
        (b"\n \n", "is empty: write your table there"),
        (b"alpha,beta,label\n", "has a header but no rows: add the table's rows under it."),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "is an Excel 97-2003 workbook, not a CSV file: save it as CSV UTF-8."),
        (b"alpha\x00beta\x00", "is not a text file: save your table as CSV UTF-8."),
    ],
)
def test_what_cannot_be_read_is_one_sentence_with_the_fix(project, params, content, message):
    RAW.write_bytes(content)
    with pytest.raises(PipelineError, match=f"^raw.csv {message}"):
        prepare(params, RAW, PREPARED)
    assert not PREPARED.exists()


def test_the_split_is_recorded_in_the_summary(project, params):
    prepare(params, RAW, PREPARED)
    assert read_summary(PREPARED / SUMMARY)["split"] == {"method": "random", "test_size": 0.25, "stratified": True}


def test_a_time_split_tests_on_the_latest_rows_and_says_so(project, params, capsys):
    make_series().to_csv(RAW, index=False)
    params["prepare"]["split"], params["data"]["time_column"] = "time", "month"
    prepare(params, RAW, PREPARED)
    train, test = pd.read_parquet(PREPARED / TRAIN), pd.read_parquet(PREPARED / TEST)
    assert (len(train), len(test)) == (180, 60)
    assert str(train["month"].max()) == "2014-12-01" < "2015-01-01" == str(test["month"].min())
    summary = read_summary(PREPARED / SUMMARY)
    assert summary["split"] == {
        "method": "time", "test_size": 0.25, "time_column": "month",
        "train_until": "2014-12-01", "test_from": "2015-01-01",
    }  # fmt: skip
    assert summary["ignored"] == {"month": "dates (data.time_column)"}
    out = capsys.readouterr().out
    assert "prepare: time split by 'month': trained on rows up to 2014-12-01, tested on rows from 2015-01-01 on" in out
    assert "warning" not in out  # the time column is declared, not a guess to warn about


def test_rows_of_one_time_stay_on_one_side_of_a_time_split(project, params):
    frame = make_frame(rows=120)
    frame["day"] = pd.Series(pd.date_range("2024-03-01", periods=30, freq="D").strftime("%d/%m/%Y")).repeat(4).values
    frame.to_csv(RAW, index=False)
    params["prepare"]["split"], params["data"]["time_column"] = "time", "day"
    prepare(params, RAW, PREPARED)
    train, test = pd.read_parquet(PREPARED / TRAIN), pd.read_parquet(PREPARED / TEST)
    # 30 of 120 rows would cut the 23rd day's four rows in half: all four are tested on.
    assert len(test) == 32 and not set(train["day"]) & set(test["day"])
    assert pd.to_datetime(train["day"], dayfirst=True).max() < pd.to_datetime(test["day"], dayfirst=True).min()


def test_a_random_split_of_dated_rows_suggests_the_time_split(project, params, capsys):
    make_messy_frame().to_csv(RAW, index=False)
    prepare(params, RAW, PREPARED)
    [warning] = [line for line in capsys.readouterr().out.splitlines() if "warning" in line]
    assert "set prepare.split: time and data.time_column: visited to test on the latest rows" in warning
    params["prepare"]["split"], params["data"]["time_column"] = "time", "visited"
    prepare(params, RAW, PREPARED)
    [warning] = [line for line in capsys.readouterr().out.splitlines() if "warning" in line]
    assert "'visited'" not in warning and "prepare.split" not in warning


@pytest.mark.parametrize(
    ("split", "time_column", "messages"),
    [
        ("chrono", None, ["prepare.split must be one of random, time, got 'chrono'"]),
        ("time", None, ["prepare.split is time but data.time_column is not set"]),
        (
            "by date",
            3,
            [
                "prepare.split must be one of random, time, got 'by date'",
                "data.time_column must be the name of a column of dates (or null), got 3",
            ],
        ),
    ],
)
def test_bad_split_params_are_one_line_naming_each_and_write_nothing(project, params, split, time_column, messages):
    params["prepare"]["split"], params["data"]["time_column"] = split, time_column
    with pytest.raises(PipelineError) as error:
        prepare(params, RAW, PREPARED)
    assert str(error.value).startswith("params.yaml: ") and "\n" not in str(error.value)
    assert all(message in str(error.value) for message in messages)
    assert not PREPARED.exists()


def test_a_time_column_missing_or_not_dates_is_named_with_the_files_other_problems(project, params):
    frame = make_series()
    frame.loc[[3, 8], "month"] = ["soon", None]
    frame.to_csv(RAW, index=False)
    params["prepare"]["split"], params["data"]["time_column"] = "time", "month"
    params["data"]["drop"] = ["nope"]
    with pytest.raises(PipelineError) as error:
        prepare(params, RAW, PREPARED)
    assert str(error.value) == (
        "raw.csv: data.drop names columns the file does not have: 'nope'; "
        "data.time_column 'month' holds 2 values that are not dates ('soon', nan): fix them, or name another column."
    )
    params["data"]["drop"], params["data"]["time_column"] = [], "when"
    with pytest.raises(PipelineError, match=r"data.time_column 'when' is not a column of the file \(name the column"):
        prepare(params, RAW, PREPARED)
    assert not PREPARED.exists()


def test_a_time_split_that_leaves_a_class_out_of_training_is_refused(project, params):
    frame = make_frame(rows=120)
    frame["day"] = pd.date_range("2024-01-01", periods=120, freq="D").strftime("%Y-%m-%d")
    frame.loc[110:, "label"] = 2  # a class that appears only lately
    frame.to_csv(RAW, index=False)
    params["prepare"]["split"], params["data"]["time_column"] = "time", "day"
    with pytest.raises(
        PipelineError, match=r"the time split leaves no training rows of class 2 \(all among the latest"
    ):
        prepare(params, RAW, PREPARED)
    assert not PREPARED.exists()


def test_an_excel_workbook_saved_as_csv_is_named(project, params):
    with zipfile.ZipFile(RAW, "w") as workbook:  # what an .xlsx is: a zip of XML parts
        workbook.writestr("[Content_Types].xml", "<Types/>")
        workbook.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(PipelineError) as error:
        prepare(params, RAW, PREPARED)
    sentence = "is an Excel workbook (or another zip archive), not a CSV file: save it as CSV UTF-8."
    assert str(error.value) == f"raw.csv {sentence}"


def exports(frame: pd.DataFrame) -> dict[str, bytes]:
    """The table as spreadsheets and tools export it."""
    european = frame.to_csv(index=False, sep=";", decimal=",")
    return {
        "european": european.replace("label", "label ", 1).encode("utf-8"),  # and a trailing space
        "tab": frame.to_csv(index=False, sep="\t").encode("utf-8"),
        "windows": frame.to_csv(index=False).encode("cp1252"),
        "bom": frame.to_csv(index=False).encode("utf-8-sig"),
        "utf16": frame.to_csv(index=False, sep="\t").encode("utf-16"),
    }


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ("european", "semicolon-separated, decimal comma, encoding utf-8"),
        ("tab", "tab-separated, decimal point, encoding utf-8"),
        ("windows", "comma-separated, decimal point, encoding cp1252"),
        ("bom", "comma-separated, decimal point, encoding utf-8-sig"),
        ("utf16", "tab-separated, decimal point, encoding utf-16"),
    ],
)
def test_exports_are_read_as_written_and_what_was_used_is_said(project, params, capsys, kind, said):
    frame = make_messy_frame(rows=60).assign(colour=lambda t: t["colour"].replace("red", "rouge é"))
    RAW.write_bytes(exports(frame)[kind])
    prepare(params, RAW, PREPARED)
    assert f"prepare: read raw.csv: {said} (detected; data.csv in params.yaml sets them)" in capsys.readouterr().out
    prepared = pd.concat([pd.read_parquet(PREPARED / TRAIN), pd.read_parquet(PREPARED / TEST)]).sort_values("id")
    expected = frame.astype({"colour": "str"}).sort_values("id")
    pd.testing.assert_frame_equal(prepared.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False)


def test_declared_reading_wins_and_a_wrong_encoding_is_one_sentence(project, params, capsys):
    frame = make_frame(rows=40)
    RAW.write_bytes(frame.to_csv(index=False, sep="|").encode("utf-8"))
    params["data"]["csv"] = {"sep": "|", "decimal": None, "encoding": "ascii"}
    prepare(params, RAW, PREPARED)
    said = "vertical bar-separated, decimal point, encoding ascii (sep, encoding from data.csv)"
    assert f"prepare: read raw.csv: {said}" in capsys.readouterr().out
    RAW.write_bytes(frame.assign(alpha="é").to_csv(index=False, sep="|").encode("utf-8"))
    with pytest.raises(PipelineError, match=r"^raw.csv is not encoded as ascii: .* \(set data.csv.encoding in params"):
        prepare(params, RAW, PREPARED)
    params["data"]["csv"]["encoding"] = "klingon"
    with pytest.raises(PipelineError, match="data.csv.encoding 'klingon' is not an encoding Python knows"):
        prepare(params, RAW, PREPARED)


def test_a_latin_1_byte_past_the_sniffed_start_is_read_all_the_same(project, params, capsys):
    frame = make_messy_frame(rows=4000)
    frame.loc[3999, "note"] = "déjà vu"
    RAW.write_bytes(frame.to_csv(index=False).encode("cp1252"))
    prepare(params, RAW, PREPARED)
    assert "encoding cp1252" in capsys.readouterr().out
    assert "déjà vu" in set(pd.concat([pd.read_parquet(PREPARED / TRAIN), pd.read_parquet(PREPARED / TEST)])["note"])


def stray_frame(rows: int = 200) -> pd.DataFrame:
    frame = make_messy_frame(rows)
    sizes = frame["size"].round(3).astype(object)
    sizes[[3, 50]], sizes[80], sizes[120] = "?", "-", "1,234"
    frame["size"] = sizes
    weights = frame["weight"].round(3).astype(object)
    weights[::4] = "not weighed"  # a quarter: no stray, unless data.na_values says so
    frame["weight"] = weights
    return frame


def test_stray_cells_in_a_numeric_column_are_missing_and_named_in_one_warning(project, params, capsys):
    stray_frame().to_csv(RAW, index=False)
    prepare(params, RAW, PREPARED)
    summary = read_summary(PREPARED / SUMMARY)
    assert summary["numeric"] == ["size"] and "weight" in summary["categorical"] + list(summary["ignored"])
    [warning] = [line for line in capsys.readouterr().out.splitlines() if "read as numbers" in line]
    assert warning.startswith("prepare: warning: read as numbers, with these cells missing: 'size' ('?', '-', '1,234')")
    assert "data.na_values" in warning and "data.columns.categorical" in warning
    train = pd.read_parquet(PREPARED / TRAIN)
    assert train["size"].dtype.kind == "f"

    params["data"]["na_values"] = ["not weighed"]
    prepare(params, RAW, PREPARED)
    assert read_summary(PREPARED / SUMMARY)["numeric"] == ["size", "weight"]
    assert "'weight'" not in capsys.readouterr().out  # declared: no warning about it


def economics_like(rows: int = 300) -> pd.DataFrame:
    """Whole-number quantities, unique in every row, that are no IDs (like plotnine's economics:
    the US population by month), beside row numbers that are IDs though one is blank or repeated."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "population": 198_712 + np.cumsum(rng.integers(150, 260, rows)),  # thousands, rising
            "square_feet": rng.choice(np.arange(400, 40_000), rows, replace=False),
            "income": rng.choice(np.arange(15_000, 400_000), rows, replace=False),
            "row": np.arange(1, rows + 1).astype(float),
            "case": np.arange(rows),
            "label": np.arange(rows) % 2,
        }
    )
    frame.loc[7, "row"] = np.nan  # a blank makes the row number float
    frame.loc[9, "case"] = 8  # a repeat
    return frame


def test_row_numbers_are_ids_but_unique_quantities_are_features(project, params):
    economics_like().to_csv(RAW, index=False)
    prepare(params, RAW, PREPARED)
    summary = read_summary(PREPARED / SUMMARY)
    assert summary["numeric"] == ["population", "square_feet", "income"]
    assert summary["ignored"] == dict.fromkeys(["row", "case"], "numbers the rows (an ID?)")


def test_months_ordinals_and_years_as_text_are_no_dates(project, params):
    frame = make_frame(rows=60).assign(
        month=np.tile(["Jan", "feb", "May", "may", "December", "jun"], 10),
        rank=np.tile(["1st", "2nd", "3rd", "4th"], 15),
        season=np.tile(["2019/20", "FY2021", "2022"], 20),
        visited=pd.date_range("2024-01-01", periods=60, freq="D").strftime("%d/%m/%Y"),
        stamp=pd.date_range("2024-01-01", periods=60, freq="h").strftime("%b %d, %Y %H:%M"),
    )
    frame.to_csv(RAW, index=False)
    prepare(params, RAW, PREPARED)
    summary = read_summary(PREPARED / SUMMARY)
    assert {"month", "rank", "season"} <= set(summary["categorical"])
    assert summary["ignored"] == {"visited": "dates", "stamp": "dates"}


def test_data_columns_decide_before_any_guess(project, params, capsys):
    frame = make_messy_frame().assign(
        code=lambda t: [f"{i % 12:03d}" for i in range(len(t))],
        grade=lambda t: np.tile(["1", "2", "3", "A"], len(t) // 4),  # a quarter no number: text, unless declared
    )
    frame.to_csv(RAW, index=False)
    params["data"]["columns"] = {"numeric": ["grade"], "categorical": ["size", "code"], "keep": ["id", "visited"]}
    prepare(params, RAW, PREPARED)
    summary = read_summary(PREPARED / SUMMARY)
    assert summary["numeric"] == ["id", "weight", "grade"]
    assert summary["categorical"] == ["visited", "colour", "size", "code"]
    assert summary["ignored"] == {"note": "unique in every row (an ID?)"}
    train = pd.read_parquet(PREPARED / TRAIN)
    assert set(train["grade"].dropna()) == {1, 2, 3} and "'grade' ('A')" in capsys.readouterr().out
    assert set(train["code"]) <= {f"{i:03d}" for i in range(12)}  # "007" stays "007"

    params["data"]["columns"] = {"keep": ["nope"], "numeric": [], "categorical": []}
    with pytest.raises(PipelineError, match="data.columns names columns the file does not have: 'nope'"):
        prepare(params, RAW, PREPARED)


def test_whole_number_labels_with_a_blank_stay_whole(project, params, capsys):
    frame = make_frame()
    frame["label"] = frame["label"].astype(float)
    frame.loc[5, "label"] = np.nan  # read as 0.0 / 1.0
    frame.to_csv(RAW, index=False)
    params["data"]["positive_class"] = 1
    prepare(params, RAW, PREPARED)
    summary = read_summary(PREPARED / SUMMARY)
    assert summary["classes"] == [0, 1] and summary["positive_class"] == 1
    assert pd.read_parquet(PREPARED / TRAIN)["label"].dtype == "int64"
    assert "prepare: positive class 1 " in capsys.readouterr().out


def test_infinite_cells_are_named_by_prepare(project, params):
    frame = make_frame().astype({"alpha": object})
    frame.loc[[2, 3], "alpha"] = ["inf", "-inf"]
    frame.to_csv(RAW, index=False)
    with pytest.raises(PipelineError, match=r"infinite values in alpha \(2\) \(leave those cells empty, or list"):
        prepare(params, RAW, PREPARED)
    assert not PREPARED.exists()
    params["data"]["na_values"] = ["inf", "-inf"]
    prepare(params, RAW, PREPARED)
    assert "alpha" in read_summary(PREPARED / SUMMARY)["numeric"]
