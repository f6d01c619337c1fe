"""Jinja filters the template needs beyond cookiecutter's built-ins."""

import json
import re

from cookiecutter.utils import simple_filter

# Left raw by json.dumps(ensure_ascii=False) but not safe in a YAML quoted string: DEL and the C1
# controls, which YAML readers refuse, and NEL, U+2028, U+2029, which YAML reads as line breaks
# (NEL becomes a space, and spaces after any of them are dropped).
UNSAFE_FOR_YAML = re.compile("[\x7f-\x9f\u2028\u2029]")


@simple_filter
def quoted(value: str) -> str:
    """Quote free text as a string that TOML, YAML and JSON all accept.

    Jinja's `tojson` escapes emoji as UTF-16 surrogate pairs, which TOML rejects; keeping
    non-ASCII text as it is and escaping only quotes, backslashes and control characters is valid
    in all three formats.
    """
    text = json.dumps(str(value), ensure_ascii=False)
    return UNSAFE_FOR_YAML.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
