"""Each stage imports only what it uses, when it uses it: every second of imports is paid again
by each stage's process (dvc.yaml runs three), so an import that creeps back fails here.

The lists are the heavy modules each stage has loaded by the time it exits (`python -X importtime`
says what each costs): for `--help`, before anything runs, and after running on a small table."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

import {{cookiecutter.package_name}}

from .conftest import EVALUATION, MODEL, PREPARED, RAW

PACKAGE = {{cookiecutter.package_name}}.__name__
# Each costs a tenth of a second to a second or more to import; scipy.stats comes with any of
# scikit-learn (sklearn.utils.fixes imports it).
HEAVY = {"dvc", "pytest", "matplotlib", "skops", "sklearn", "sklearn.inspection", "scipy.stats", "pandas"}
SCIKIT_LEARN = {"pandas", "sklearn", "scipy.stats"}
AT_HELP = {"prepare": {"pandas"}, "train": SCIKIT_LEARN, "evaluate": SCIKIT_LEARN}
# skops.io lists every estimator, importing every scikit-learn module; its pytest is kept out
# (model_file.skops_io).
SKOPS = {"skops", "sklearn.inspection"}
# prepare draws its split itself (prepare.random_split): scikit-learn would be a second of its time.
# evaluate writes its plots as data (the report draws them): no matplotlib.
WHEN_RUN = {"prepare": {"pandas"}, "train": SCIKIT_LEARN | SKOPS, "evaluate": SCIKIT_LEARN | SKOPS}


# Runs a stage as `python -m` does, and writes the modules loaded when it exits (a module set to
# None, as model_file does with pytest for a moment, is one whose import was refused).
RUN_AND_LIST = """
import atexit, runpy, sys
listing, sys.argv = sys.argv[1], sys.argv[2:]
atexit.register(lambda: open(listing, "w").write("\\n".join(n for n, m in sys.modules.items() if m is not None)))
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def heavy_imports(tmp_path: Path, stage: str, *args: str) -> set[str]:
    """The HEAVY modules loaded by `python -m <package>.<stage> <args>` (which must succeed)."""
    env = {**os.environ, "PYTHONPATH": str(Path({{cookiecutter.package_name}}.__file__).parents[1])}
    listing = tmp_path / f"{stage}.modules"
    result = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST, str(listing), f"{PACKAGE}.{stage}", *args],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return set(listing.read_text().splitlines()) & HEAVY


def test_each_stage_imports_only_what_it_uses_when_it_uses_it(project, params):
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    for stage in AT_HELP:
        assert heavy_imports(project, stage, "--help") == AT_HELP[stage], stage
    paths = {"prepare": [RAW, PREPARED], "train": [PREPARED, MODEL], "evaluate": [PREPARED, MODEL, EVALUATION]}
    for stage, stage_paths in paths.items():
        assert heavy_imports(project, stage, *map(str, stage_paths)) == WHEN_RUN[stage], stage
    assert (project / EVALUATION / "metrics.json").is_file()
