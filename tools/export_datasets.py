"""Write the bundled datasets as the CSV files the template ships.

Run once by template maintainers (`python -m tools.export_datasets`); baking never runs it, so
baking needs no scikit-learn and no network. Each file lands under a conditional file name that
renders to `dataset.csv` only for the chosen dataset (cookiecutter skips empty names). Three come
with scikit-learn; Palmer penguins is the CSV the `palmerpenguins` package ships, copied as it is.
"""

from pathlib import Path

import palmerpenguins
from sklearn import datasets

PROJECT_DATA = Path(__file__).resolve().parents[1] / "{{cookiecutter.project_slug}}" / "data" / "raw"


def target_file(name: str) -> Path:
    return PROJECT_DATA / f"{{% if cookiecutter.dataset == '{name}' %}}dataset.csv{{% endif %}}"


for name in ("breast_cancer", "wine", "digits"):
    frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
    frame.to_csv(target_file(name), index=False, float_format="%.6g", lineterminator="\n")
penguins = Path(palmerpenguins.__file__).parent / "data" / "penguins.csv"
target_file("penguins").write_bytes(penguins.read_bytes())
for path in sorted(PROJECT_DATA.iterdir()):
    print(f"{path.name}: {path.stat().st_size} bytes")
