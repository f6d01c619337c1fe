"""Jinja filters the template needs beyond cookiecutter's built-ins."""

import json

from cookiecutter.utils import simple_filter


@simple_filter
def quoted(value: str) -> str:
    """Quote free text as a string that TOML, YAML and JSON all accept.

    Jinja's `tojson` escapes emoji as UTF-16 surrogate pairs, which TOML rejects; keeping
    non-ASCII text as it is and escaping only quotes, backslashes and control characters is valid
    in all three formats.
    """
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")
