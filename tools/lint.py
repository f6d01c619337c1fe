"""`make lint`, the half about a baked project: bake the defaults from this working tree, and the
choice that adds the most code (`training_runner=cml` with the MLflow mirror), and run the project's own linters on what
a user gets (ruff with the project's settings, bash -n on ci/)."""

import subprocess
import sys
import tempfile
from pathlib import Path

from harness.project import VENV_BIN, bake_cli, baked_project

BAKES = [(), ("training_runner=cml", "mlflow_mirror=yes")]


def main() -> int:
    return max(lint(answers) for answers in BAKES)


def lint(answers: tuple[str, ...]) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        baked = bake_cli(Path(scratch), *answers)
        if baked.returncode != 0:
            print(baked.stderr, file=sys.stderr)
            return 1
        project = baked_project(Path(scratch))
        commands = [
            [str(VENV_BIN / "ruff"), "check", "--no-cache", "."],
            [str(VENV_BIN / "ruff"), "format", "--check", "--no-cache", "."],
            *(["bash", "-n", str(script)] for script in sorted((project / "ci").glob("*.sh"))),
        ]
        failed = [command for command in commands if subprocess.run(command, cwd=project).returncode != 0]
        for command in failed:
            print(
                f"lint of the project baked with {answers or 'the defaults'} failed: {' '.join(command)}",
                file=sys.stderr,
            )
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
