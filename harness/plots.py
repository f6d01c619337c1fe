"""`dvc plots` specs drawn as DVC's HTML pages draw them: vega-lite and vega (pinned in
package.json) under Node, headless."""

import json
import subprocess
import tempfile
from pathlib import Path

RENDER = Path(__file__).with_name("render_vega.js")  # finds the template's node_modules


def drawn_texts(spec: dict) -> list[dict]:
    """The text marks a filled vega-lite spec draws, each as {"datum": {...}, "text": "..."}."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        json.dump(spec, file)
        file.flush()
        result = subprocess.run(["node", str(RENDER), file.name], capture_output=True, text=True, check=True)
    return [json.loads(line) for line in result.stdout.splitlines()]
