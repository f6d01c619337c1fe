"""Write the datasets bundled with scikit-learn as the CSV files the template ships.

Run once by template maintainers (`python tools/export_datasets.py`); baking never runs it, so
baking needs no scikit-learn and no network. Each file lands under a conditional file name that
renders to `dataset.csv` only for the chosen dataset (cookiecutter skips empty names).
"""

from pathlib import Path

from sklearn import datasets

PROJECT_DATA = Path(__file__).resolve().parents[1] / "{{cookiecutter.project_slug}}" / "data" / "raw"

for name in ("breast_cancer", "wine", "digits"):
    frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
    target = PROJECT_DATA / f"{{% if cookiecutter.dataset == '{name}' %}}dataset.csv{{% endif %}}"
    frame.to_csv(target, index=False, float_format="%.6g", lineterminator="\n")
    print(f"{target.name}: {len(frame)} rows, {target.stat().st_size} bytes")
