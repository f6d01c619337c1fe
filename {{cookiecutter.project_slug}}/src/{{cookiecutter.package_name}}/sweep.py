"""Parameter sweeps: every combination of values in sweep.yaml as a DVC experiment, in one table.

    python -m {{cookiecutter.package_name}}.sweep check              # the number of runs, or one line on what is wrong
    python -m {{cookiecutter.package_name}}.sweep local --jobs 2     # here: DVC's queue and workers, then the table
    python -m {{cookiecutter.package_name}}.sweep run --shard 1/2 --push   # CI: this job's share, one `dvc exp run` each
    python -m {{cookiecutter.package_name}}.sweep report             # CI: every job's results as one table and chart
    python -m {{cookiecutter.package_name}}.sweep ref sweep-1a2b3c4d # the experiment's full ref on origin, if only one

Each run is named after its values (`sweep-` and a hash), so the same combination keeps its name
in every pipeline; DVC files it under the commit it ran on (refs/exps/<commit>/NAME), so after
sweeps on two commits the name alone is ambiguous to `dvc exp pull` and `dvc exp apply`: the
report gives the full ref, which is not. A run whose stages ran anywhere before (the run-cache
in the remote) trains nothing again.
"""

import argparse
import copy
import hashlib
import itertools
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import yaml

from . import compare
from .config import (
    LOWER_IS_BETTER,
    PIPELINE_FILE,
    PREDICTIONS,
    PipelineError,
    declared,
    load_params,
    param,
    read_yaml_mapping,
    run_main,
    score_names,
    stage_params,
)

SWEEP_FILE = Path("sweep.yaml")
RESULTS_DIR = Path("sweep/results")
REPORT_DIR = Path("sweep/report")
DIRECTIONS = ("maximize", "minimize")
RAN_STAGE = re.compile(r"^Running stage '([^']+)'", re.MULTILINE)


@dataclass
class Sweep:
    metric: str
    direction: str
    parameters: dict[str, list]

    def runs(self) -> list[dict]:
        """Every combination, in the order sweep.yaml lists keys and values."""
        keys = list(self.parameters)
        return [dict(zip(keys, values, strict=True)) for values in itertools.product(*self.parameters.values())]

    def varying(self) -> list[str]:
        return [key for key, values in self.parameters.items() if len(values) > 1]


def metrics_file(pipeline: Path = PIPELINE_FILE) -> Path:
    """The metrics file evaluate writes, as dvc.yaml declares it (beside dvc.yaml)."""
    return pipeline.parent / declared("evaluate", "metrics", pipeline)[0]


def predictions_file(pipeline: Path = PIPELINE_FILE) -> Path:
    """The test-row predictions evaluate writes, as dvc.yaml declares them."""
    [path] = [path for path in declared("evaluate", "outs", pipeline) if path.name == PREDICTIONS]
    return pipeline.parent / path


def with_values(params: dict, run: dict) -> dict:
    """params.yaml with a run's values, as `dvc exp run -S` sets them."""
    changed = copy.deepcopy(params)
    for key, value in run.items():
        *sections, last = key.split(".")
        section = changed
        for name in sections:
            section = section[name]
        section[last] = value
    return changed


def dotted(tree: dict, prefix: str = "") -> set[str]:
    """The dotted keys of a nested mapping's values (`train.estimator`, `train.linear.C`)."""
    keys = set()
    for key, value in tree.items():
        keys |= dotted(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}"}
    return keys


def read_keys(params: dict, pipeline: Path) -> set[str]:
    """The params.yaml keys the stages of `pipeline` read with these params: DVC's own reading
    (`stage_params`) of a copy of dvc.yaml beside these params, `${...}` resolved."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / ".dvc").mkdir()
        shutil.copy(pipeline, root / "dvc.yaml")
        (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
        return dotted(stage_params(root=root))


def unread(sweep: Sweep, params: dict, pipeline: Path) -> list[str]:
    """The swept keys that no stage reads in any of the sweep's combinations.

    What a stage reads can depend on the values swept: train reads `train.${train.estimator}`, the
    section of the estimator a combination chooses. So each combination is read as DVC would read
    it, and a key counts as read when a stage reads it in at least one combination: a sweep of
    train.estimator and train.random_forest.n_estimators is fine, as its random_forest runs differ
    (its other runs repeat each other, and come back from the run-cache). A key read in none only
    makes runs that differ in nothing a stage sees: identical rows, trained again for nothing.
    """
    read = set().union(*(read_keys(with_values(params, run), pipeline) for run in sweep.runs()))
    return [key for key in sweep.parameters if key not in read]


def load_sweep(path: Path = SWEEP_FILE, params: dict | None = None, pipeline: Path = PIPELINE_FILE) -> Sweep:
    """sweep.yaml, checked against params.yaml, dvc.yaml and the workspace's metrics before anything runs."""
    missing = ": declare the parameters to sweep there (see the README)."
    spec = read_yaml_mapping(path, mapping_of="with metric, direction, max_runs and parameters", missing_hint=missing)
    metric, direction, cap = spec.get("metric"), spec.get("direction", "maximize"), spec.get("max_runs")
    written = metrics_file(pipeline)
    # The metrics are the names evaluate wrote into the workspace's metrics file; without one (a
    # fresh clone), the first run's metrics.json is checked instead (see `run_share`).
    known = score_names(json.loads(written.read_text(encoding="utf-8"))) if written.is_file() else None
    if not isinstance(metric, str) or (known is not None and metric not in known):
        choices = f"one of {', '.join(known)} (the scores in {written})" if known else f"a score of {written}"
        raise PipelineError(f"{path}: metric must be {choices}, got {metric!r}.")
    if direction not in DIRECTIONS:
        raise PipelineError(f"{path}: direction must be maximize or minimize, got {direction!r}.")
    if direction != ("minimize" if metric in LOWER_IS_BETTER else "maximize"):
        better = "lower" if metric in LOWER_IS_BETTER else "higher"
        raise PipelineError(
            f"{path}: {metric} is better {better}, so direction must be {DIRECTIONS[better == 'lower']}."
        )
    if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
        raise PipelineError(f"{path}: max_runs must be a positive integer, got {cap!r}.")
    parameters = spec.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise PipelineError(f"{path}: parameters must map params.yaml keys to lists of values.")
    params = load_params() if params is None else params
    for key, values in parameters.items():
        try:
            current = param(params, key)
        except PipelineError:
            raise PipelineError(f"{path}: '{key}' is not a key of params.yaml; sweep keys that are there.") from None
        if isinstance(current, dict):
            raise PipelineError(f"{path}: '{key}' is a section of params.yaml, not a parameter; name one of its keys.")
        if not isinstance(values, list) or not values or any(isinstance(v, (dict, list)) for v in values):
            raise PipelineError(f"{path}: '{key}' needs a non-empty list of single values, got {values!r}.")
    sweep = Sweep(metric, direction, parameters)
    if len(sweep.runs()) > cap:
        raise PipelineError(
            f"{path}: the sweep has {len(sweep.runs())} combinations, over max_runs ({cap}); "
            "remove values or raise max_runs."
        )
    ignored = unread(sweep, params, pipeline)
    if ignored:
        chosen = params.get("train", {}).get("estimator")
        fix = (
            f"sweep train.estimator too, change train.estimator in params.yaml, or sweep keys of train.{chosen}"
            if all(key.startswith("train.") for key in ignored)
            else "add them to a stage's params in dvc.yaml, or sweep keys a stage reads"
        )
        raise PipelineError(
            f"{path}: no stage reads {', '.join(ignored)} with the values swept (dvc.yaml's params), so runs "
            f"differing there would be the same run; {fix}."
        )
    return sweep


def experiment_name(run: dict) -> str:
    digest = hashlib.sha1(json.dumps(run, sort_keys=True).encode()).hexdigest()
    return f"sweep-{digest[:8]}"


def experiment_ref(name: str) -> str:
    """Where DVC keeps the experiment NAME run on this commit."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    return f"refs/exps/{head[:2]}/{head[2:]}/{name}"


def find_ref(name: str, remote: str) -> str:
    """The full ref of the experiment NAME on `remote`, when exactly one sweep made it."""
    listed = subprocess.run(["git", "ls-remote", remote, "refs/exps/*"], capture_output=True, text=True)
    if listed.returncode != 0:
        raise PipelineError(f"cannot list the experiments on {remote}: {listed.stderr.strip() or 'git failed'}.")
    refs = [line.split()[1] for line in listed.stdout.splitlines() if line.endswith(f"/{name}")]
    if not refs:
        raise PipelineError(f"no experiment {name} on {remote}: check the name in the sweep comment.")
    if len(refs) > 1:
        baselines = ", ".join(ref.split("/")[2] + ref.split("/")[3][:5] for ref in refs)
        raise PipelineError(
            f"{name} was run on {len(refs)} commits ({baselines}): use the full ref the sweep comment gives "
            f"(one of {', '.join(refs)})."
        )
    return refs[0]


def set_params(run: dict) -> list[str]:
    """`-S key=value` for each value (JSON is YAML, which is how DVC reads the value)."""
    return [arg for key, value in run.items() for arg in ("-S", f"{key}={json.dumps(value)}")]


def first_error(output: str) -> str:
    """The stage's own one-line error if there is one, else DVC's."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    stage = [line for line in lines if line.startswith("error: ")]
    dvc = [line for line in lines if line.startswith("ERROR")]
    return (stage or dvc or lines or ["no output"])[0]


def run_share(sweep: Sweep, index: int, total: int, results: Path, push: bool = False) -> list[dict]:
    """Run every `total`-th combination from the `index`-th (1-based), each as a DVC experiment;
    with `push`, each run's outputs and run-cache go to the remote as soon as it ends (the
    experiment refs go to GitLab afterwards, with git: ci/pipeline.sh, push_experiment_refs)."""
    results.mkdir(parents=True, exist_ok=True)
    done, written = [], metrics_file()
    for run in sweep.runs()[index - 1 :: total]:
        name = experiment_name(run)
        print(f"sweep: {name}: {', '.join(f'{key}={value}' for key, value in run.items())}", flush=True)
        command = ["dvc", "exp", "run", "--pull", "--name", name, *set_params(run)]
        finished = subprocess.run(command, capture_output=True, text=True)
        print(finished.stdout + finished.stderr, flush=True)
        result = {"name": name, "params": run, "ran": RAN_STAGE.findall(finished.stdout + finished.stderr)}
        if finished.returncode == 0:
            result["metrics"] = json.loads(written.read_text(encoding="utf-8"))
            result["ref"] = experiment_ref(name)
            result["predictions"] = keep_predictions(predictions_file().read_bytes(), results, name)
            if push:
                push_results(name)
        else:
            result["error"] = first_error(finished.stdout + finished.stderr)
        (results / f"{name}.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        done.append(result)
        task_metrics(sweep, [result for result in done if "metrics" in result])  # a metric no run has stops here
    return done


def push_results(name: str) -> None:
    """The run's outputs, then the run-cache entries naming them: `dvc push --run-cache` uploads
    the entries first, so a push cut short would leave entries whose outputs are missing. DVC
    logs a failed run-cache upload but exits 0, hence the look at its output."""
    for command in (["dvc", "push"], ["dvc", "push", "--run-cache"]):
        pushed = subprocess.run(command, capture_output=True, text=True)
        if pushed.returncode != 0 or "ERROR" in pushed.stderr:
            print(pushed.stdout + pushed.stderr, file=sys.stderr, flush=True)
            raise PipelineError(f"could not push the results of {name} to the DVC remote (DVC's answer is above).")


def run_locally(sweep: Sweep, jobs: int) -> list[dict]:
    """The whole sweep through DVC's queue and `jobs` workers; results as `run_share` gives them."""
    runs = {experiment_name(run): run for run in sweep.runs()}
    for name, run in runs.items():
        subprocess.run(["dvc", "exp", "remove", "--queue", name], capture_output=True)  # a re-run replaces it
        subprocess.run(["dvc", "exp", "run", "--queue", "--force", "--name", name, *set_params(run)], check=True)
    subprocess.run(["dvc", "exp", "run", "--run-all", "--jobs", str(jobs)], check=False)
    shown = json.loads(subprocess.run(["dvc", "exp", "show", "--json"], capture_output=True, text=True).stdout)
    found = {
        rev["name"]: rev
        for baseline in shown
        for experiment in baseline.get("experiments") or []
        for rev in experiment["revs"]
        if rev.get("name") in runs
    }
    results = []
    for name, run in runs.items():
        rev = found.get(name)
        result = {"name": name, "params": run, "ran": []}
        if rev is not None and not rev.get("error"):
            result["metrics"] = rev["data"]["metrics"][str(metrics_file())]["data"]
            result["ref"] = experiment_ref(name)
            from dvc.api import DVCFileSystem  # here: only a local sweep reads an experiment's files

            predictions = DVCFileSystem(url=".", rev=result["ref"]).read_bytes(str(predictions_file()))
            result["predictions"] = keep_predictions(predictions, RESULTS_DIR, name)
        else:
            logs = subprocess.run(["dvc", "queue", "logs", name], capture_output=True, text=True)
            result["error"] = first_error(logs.stdout + logs.stderr)
        results.append(result)
    return results


def keep_predictions(data: bytes, results: Path, name: str) -> str:
    """A run's test-row predictions beside its results (the report's intervals against the best)."""
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}.parquet").write_bytes(data)
    return f"{name}.parquet"


def against_best(sweep: Sweep, good: list[dict], results: Path) -> dict[str, compare.Interval | str]:
    """Each run's change from the best run in the sweep's metric, with its paired 95% interval
    (the runs share the test rows), or why there is none."""
    found: dict[str, compare.Interval | str] = {}
    if not good:
        return found
    loaded = {}
    for result in good:
        path = results / result.get("predictions", "-")
        loaded[result["name"]] = compare.read_predictions(path) if path.is_file() else None
    best = loaded[good[0]["name"]]
    for result in good[1:]:
        mine = loaded[result["name"]]
        if best is None or mine is None:
            found[result["name"]] = "no predictions"
        elif mine.fingerprint != best.fingerprint:
            found[result["name"]] = "other test rows"
        else:
            interval = compare.paired(best, mine).get(sweep.metric)
            found[result["name"]] = interval or "undefined"
    return found


def read_results(results: Path) -> list[dict]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(results.glob("*.json"))]


def task_metrics(sweep: Sweep, good: list[dict]) -> list[str]:
    """The metrics evaluate wrote for the runs (the first run's metrics.json); the sweep's metric
    must be one of them."""
    if not good:
        return [sweep.metric]
    names = score_names(good[0]["metrics"])
    if sweep.metric not in names:
        raise PipelineError(
            f"{SWEEP_FILE}: the runs' metrics have no {sweep.metric}; rank by one of {', '.join(names)}."
        )
    return names


def ranked(sweep: Sweep, results: list[dict]) -> tuple[list[dict], list[dict]]:
    """(runs with metrics, best first; failed runs)."""
    good = [result for result in results if "metrics" in result]
    task_metrics(sweep, good)
    worst = float("-inf") if sweep.direction == "maximize" else float("inf")  # a run without the metric
    good.sort(key=lambda result: result["metrics"].get(sweep.metric, worst), reverse=sweep.direction == "maximize")
    return good, [result for result in results if "metrics" not in result]


def short_names(keys: list[str]) -> dict[str, str]:
    """The last part of each dotted key, unless two keys share it."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return {key: short if last.count(short) == 1 else key for key, short in zip(keys, last, strict=True)}


def table(sweep: Sweep, results: list[dict], chart: str | None, folder: Path = RESULTS_DIR) -> str:
    good, failed = ranked(sweep, results)
    varying = sweep.varying()
    names = short_names(varying)
    others = [metric for metric in task_metrics(sweep, good) if metric != sweep.metric]
    gaps = against_best(sweep, good, folder)
    header = ["#", "experiment", *(names[key] for key in varying), f"**{sweep.metric}**", "against the best (95%)"]
    header += others
    lines = [f"## Parameter sweep: {len(results)} runs, best {sweep.metric} first ({sweep.direction})", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def values(result: dict) -> list[str]:
        return [f"`{json.dumps(result['params'][key])}`" for key in varying]

    for rank, result in enumerate(good, 1):
        metrics = result["metrics"]
        cells = [f"{metrics[metric]:.4f}" if metric in metrics else "–" for metric in (sweep.metric, *others)]
        gap = gaps.get(result["name"], "best")
        if isinstance(gap, compare.Interval):
            mark = "≈ within noise of the best" if gap.verdict == "within noise" else "▼ behind it"
            gap = f"{gap.change:+.4f} ({gap.low:+.4f} to {gap.high:+.4f}) {mark}"
        scores = [f"**{cells[0]}**", gap, *cells[1:]]
        lines.append("| " + " | ".join([str(rank), f"`{result['name']}`", *values(result), *scores]) + " |")
    for result in failed:
        cells = ["–", f"`{result['name']}`", *values(result), f"failed: {result['error']}", "", *[""] * len(others)]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    fixed = {key: values[0] for key, values in sweep.parameters.items() if len(values) == 1}
    if fixed:
        lines += ["", "Same in every run: " + ", ".join(f"`{key}={json.dumps(value)}`" for key, value in fixed.items())]
    close = [name for name, gap in gaps.items() if isinstance(gap, compare.Interval) and gap.verdict == "within noise"]
    if close:
        lines += [
            "",
            f"**The best is not distinguishable from {len(close)} other run{'s' if len(close) > 1 else ''}**: their "
            f"{sweep.metric} is within noise of it (its 95% interval, paired on the same test rows, contains 0), so "
            "the order among them may be chance; prefer the simplest or cheapest of them.",
        ]
    elif len(good) > 1 and gaps and all(isinstance(gap, compare.Interval) for gap in gaps.values()):
        lines += ["", f"Every other run's {sweep.metric} is behind the best's beyond noise (paired 95% intervals)."]
    restored = sum(1 for result in good if not result["ran"])
    lines += ["", f"{restored} of {len(good)} successful runs came back from the run-cache (nothing trained)."]
    if good:
        best = good[0].get("ref", good[0]["name"])  # the full ref: the name recurs in every sweep of these values
        lines += [
            "",
            f"Take the best: `dvc exp pull origin {best} && dvc exp apply {best}`, or keep it on a branch: "
            f"`dvc exp branch {best} <branch>`.",
        ]
        if "ref" in good[0]:
            lines += ["", f"Any other run: `{good[0]['ref'].rsplit('/', 1)[0]}/<experiment>`."]
    if chart:
        lines += ["", f"![{sweep.metric} of each run]({chart})"]
    return "\n".join(lines) + "\n"


def chart(sweep: Sweep, results: list[dict], output: Path) -> Path | None:
    """The metric against the first swept parameter, one line per value of the others."""
    good, _ = ranked(sweep, results)
    varying = sweep.varying()
    if not good or not varying:
        return None
    x_key, rest = varying[0], varying[1:]
    x_values = sweep.parameters[x_key]
    figure, axes = plt.subplots(figsize=(6, 4))
    groups = itertools.groupby(
        sorted(good, key=lambda r: json.dumps([r["params"][key] for key in rest])),
        key=lambda r: tuple(r["params"][key] for key in rest),
    )
    for group, members in groups:
        points = sorted((x_values.index(r["params"][x_key]), r["metrics"][sweep.metric]) for r in members)
        names = short_names(rest).values()
        label = ", ".join(f"{name}={json.dumps(value)}" for name, value in zip(names, group, strict=True))
        axes.plot(*zip(*points, strict=True), marker="o", label=label or None)
    axes.set_xticks(range(len(x_values)), [json.dumps(value) for value in x_values])
    axes.set_xlabel(x_key)
    axes.set_ylabel(sweep.metric)
    axes.set_title(f"{sweep.metric} across the sweep")
    if rest:
        axes.legend()
    output.mkdir(parents=True, exist_ok=True)
    path = output / "sweep.png"
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def write_report(sweep: Sweep, results: list[dict], output: Path, folder: Path = RESULTS_DIR) -> Path:
    drawn = chart(sweep, results, output)
    report = output / "report.md"
    output.mkdir(parents=True, exist_ok=True)
    report.write_text(table(sweep, results, drawn.name if drawn else None, folder), encoding="utf-8")
    return report


def fail_if_any_failed(results: list[dict]) -> None:
    failed = [result["name"] for result in results if "metrics" not in result]
    if failed:
        raise PipelineError(f"{len(failed)} of {len(results)} sweep runs failed ({', '.join(failed)}); see the table.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check")
    local = commands.add_parser("local")
    local.add_argument("--jobs", type=int, default=1, help="DVC queue workers running at once")
    shard = commands.add_parser("run")
    shard.add_argument("--shard", default="1/1", help="INDEX/TOTAL: this job's share ($CI_NODE_INDEX/$CI_NODE_TOTAL)")
    shard.add_argument("--results", type=Path, default=RESULTS_DIR)
    shard.add_argument("--push", action="store_true", help="push each run's results and run-cache to the remote")
    report = commands.add_parser("report")
    report.add_argument("--results", type=Path, default=RESULTS_DIR)
    report.add_argument("--output", type=Path, default=REPORT_DIR)
    ref = commands.add_parser("ref")
    ref.add_argument("name", help="an experiment's name, e.g. sweep-1a2b3c4d")
    ref.add_argument("--remote", default="origin", help="the Git remote the sweeps pushed to")
    args = parser.parse_args(argv)
    if args.command == "ref":
        print(find_ref(args.name, args.remote))
        return
    sweep = load_sweep()
    if args.command == "check":
        print(f"sweep.yaml: {len(sweep.runs())} runs, ranked by {sweep.metric} ({sweep.direction}).")
    elif args.command == "local":
        results = run_locally(sweep, args.jobs)
        print(table(sweep, results, str(chart(sweep, results, REPORT_DIR)) if results else None))
        fail_if_any_failed(results)
    elif args.command == "run":
        index, total = (int(part) for part in args.shard.split("/"))
        fail_if_any_failed(run_share(sweep, index, total, args.results, args.push))
    else:
        results = read_results(args.results)
        if not results:  # a report of no runs would be posted as if a sweep had run
            raise PipelineError(
                f"{args.results} holds no results: no sweep run reached its end, so there is nothing to report "
                "(run 'sweep run' first; in CI, see the sweep-run jobs)."
            )
        print(write_report(sweep, results, args.output, args.results).read_text(encoding="utf-8"))


if __name__ == "__main__":
    run_main(main)
