"""What both benchmarks share: wall-clock timings, their median table, and the results file."""

import os
import shlex
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from harness.project import TEMPLATE, run

T = TypeVar("T")

# The pipeline's outputs in a baked project, which a cold run starts without.
OUTPUTS = ["data/prepared", "models/model.skops", "reports/evaluation/metrics.json", "reports/evaluation/plots"]


def remove_outputs(project: Path) -> None:
    for output in OUTPUTS:
        path = project / output
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


class Timings:
    """Wall-clock seconds of each named measurement; the table lists them in the order first taken."""

    def __init__(self):
        self.seconds: dict[str, list[float]] = {}

    def time(self, name: str, action: Callable[[], T]) -> T:
        start = time.perf_counter()
        result = action()
        self.seconds.setdefault(name, []).append(time.perf_counter() - start)
        return result

    def median(self, name: str) -> float:
        return statistics.median(self.seconds[name])

    def table(self) -> str:
        lines = ["| Measurement | median (s) | min (s) | max (s) | runs |", "|---|---:|---:|---:|---:|"]
        for name, runs in self.seconds.items():
            lines.append(f"| {name} | {self.median(name):.2f} | {min(runs):.2f} | {max(runs):.2f} | {len(runs)} |")
        return "\n".join(lines)


def comparison_table(rows: list[tuple[str, str, str, bool | None]]) -> str:
    """Rows of (comparison, value, target, met); `met` is None where there is no target."""
    lines = ["| Comparison (of medians) | value | target | met |", "|---|---:|---:|:---:|"]
    for label, value, target, met in rows:
        lines.append(f"| {label} | {value} | {target or '–'} | {'–' if met is None else 'yes' if met else 'no'} |")
    return "\n".join(lines)


def load_average() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


class Results:
    """The context of one invocation, taken when it starts, and its results file when it ends."""

    def __init__(self, module: str):
        self.path = Path(__file__).parent / f"{module.rpartition('.')[2]}_results.md"
        self.command = shlex.join([os.path.relpath(sys.executable), "-m", module, *sys.argv[1:]])
        self.date = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        self.load_at_start = load_average()
        self.start = time.perf_counter()
        commit = run(["git", "rev-parse", "--short", "HEAD"], TEMPLATE).stdout.strip()
        # Others edit the template while benchmarks run: cookiecutter bakes the working tree, edits included.
        edited = run(["git", "status", "--porcelain", "--", ".", ":(exclude)benchmarks"], TEMPLATE).stdout.strip()
        self.template = f"commit {commit}" + (" with uncommitted changes" if edited else "")

    def write(self, title: str, versions: dict[str, str], notes: list[str], sections: list[str]) -> None:
        header = [
            f"# {title}",
            "",
            f"- Date: {self.date}",
            f"- Machine: `nproc` = {len(os.sched_getaffinity(0))}, load average {self.load_at_start} at start, "
            f"{load_average()} at end (1, 5, 15 min)",
            "- Versions: " + ", ".join(f"{name} {version}" for name, version in versions.items()),
            f"- Template: {self.template}",
            f"- Command: `{self.command}` ({(time.perf_counter() - self.start) / 60:.1f} min)",
            *[f"- {note}" for note in notes],
        ]
        text = "\n\n".join(["\n".join(header), *sections]) + "\n"
        print(text)
        self.path.write_text(text, encoding="utf-8")
