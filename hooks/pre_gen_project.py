"""Validate the answers before cookiecutter writes anything.

Each rule returns one sentence naming the field, the value and the rule; any failure stops
generation (exit 1) before a file is written, so no half-written project is left behind. The module has no template
syntax outside `ANSWERS`, so the rules can be imported and unit-tested directly.
"""

import ipaddress
import json
import keyword
import re
import sys
from urllib.parse import urlparse

SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
PACKAGE = re.compile(r"^[a-z_][a-z0-9_]*$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$|^[a-z0-9]+(-[a-z0-9]+)*$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# git check-ref-format --branch: no component starts with '.' or ends with '.lock', no '..', '//',
# '@{' or backslash, not '-...' or 'HEAD'; none of the characters git forbids; no trailing '/' or '.'.
BRANCH = re.compile(r"^(?![/.-]|HEAD$|.*([/.]\.|//|@\{|\\|\.lock(/|$)))[^\x00-\x20~^:?*\[\x7f]+(?<![/.])$")
# configobj, which reads .dvc/config, takes an unquoted '#' as the start of a comment and ',' as a
# list separator: the remote url would be silently cut short or become a list that breaks dvc.
DVC_CONFIG_SPECIAL = ("#", ",")


def pattern_rule(pattern: re.Pattern, field: str, rule: str):
    """A check that refuses a value not matching `pattern` with "<field> '<value>' <rule>"."""

    def check(value: str) -> str | None:
        return None if pattern.match(value) else f"{field} {value!r} {rule}"

    return check


check_slug = pattern_rule(
    SLUG,
    "project_slug",
    "must start with a lowercase ASCII letter and contain only lowercase letters, digits and single "
    "hyphens; pass project_slug=<name> to choose one.",
)
check_region = pattern_rule(
    REGION,
    "aws_region",
    "is not a region name: use lowercase letters, digits and hyphens such as 'us-east-1' or 'eu-central-1'.",
)
check_email = pattern_rule(EMAIL, "author_email", "is not an email address such as 'name@example.com'.")
check_branch = pattern_rule(BRANCH, "default_branch", "is not a valid git branch name such as 'main'.")


def check_package(value: str) -> str | None:
    if not PACKAGE.match(value) or keyword.iskeyword(value):
        return (
            f"package_name {value!r} must be a lowercase Python identifier (letters, digits, "
            "underscores, not starting with a digit, not a keyword); pass package_name=<name>."
        )
    return None


def check_bucket(value: str) -> str | None:
    rule = None
    if not 3 <= len(value) <= 63:
        rule = "be 3 to 63 characters long"
    elif not BUCKET.match(value):
        rule = "use only lowercase letters, digits, dots and hyphens, and start and end with a letter or digit"
    elif ".." in value or ".-" in value or "-." in value:
        rule = "not contain '..', '.-' or '-.'"
    elif _is_ip_address(value):
        rule = "not be formatted as an IP address"
    elif value.startswith(("xn--", "sthree-")) or value.endswith(("-s3alias", "--ol-s3")):
        rule = "not use the reserved prefixes xn--, sthree- or suffixes -s3alias, --ol-s3"
    if rule:
        return f"s3_bucket {value!r} is not a valid S3 bucket name: it must {rule}."
    return None


def _is_ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def check_prefix(value: str) -> str | None:
    if value.startswith("/") or value.endswith("/") or "//" in value or not value.isascii():
        return (
            f"s3_prefix {value!r} must be a relative ASCII key prefix such as 'dvc' or 'team/project' "
            "(no leading or trailing slash, no '//')."
        )
    if any(ch.isspace() for ch in value):
        return f"s3_prefix {value!r} must not contain whitespace."
    if any(ch in value for ch in DVC_CONFIG_SPECIAL):
        return f"s3_prefix {value!r} must not contain '#' or ',', which .dvc/config cannot hold unquoted."
    return None


def check_endpoint(value: str) -> str | None:
    if not value:
        return None
    url = urlparse(value)
    if (
        url.scheme not in ("http", "https")
        or not url.netloc
        or any(ch.isspace() or ch in DVC_CONFIG_SPECIAL for ch in value)
    ):
        return (
            f"s3_endpoint_url {value!r} must be empty (AWS) or an http:// or https:// URL "
            "such as 'https://minio.example.com' (no whitespace, '#' or ',')."
        )
    if "@" in url.netloc:
        return (
            f"s3_endpoint_url {value!r} must not contain credentials: .dvc/config is committed, so keep "
            "keys in environment variables or .dvc/config.local."
        )
    return None


def check_name(value: str) -> str | None:
    if not value.strip() or "\n" in value:
        return "project_name must be a non-empty single line of text."
    return None


RULES = {
    "project_name": check_name,
    "project_slug": check_slug,
    "package_name": check_package,
    "author_email": check_email,
    "default_branch": check_branch,
    "s3_bucket": check_bucket,
    "s3_prefix": check_prefix,
    "aws_region": check_region,
    "s3_endpoint_url": check_endpoint,
}


def combination_problem(answers: dict) -> str | None:
    """Answers that cannot go together."""
    if answers.get("mlflow_mirror") and not answers.get("model_registry"):
        return (
            "mlflow_mirror mirrors the model registry's versions, so it needs model_registry=yes; "
            "pass both, or mlflow_mirror=no."
        )
    return None


def problems(answers: dict) -> list[str]:
    found = [msg for field, rule in RULES.items() if (msg := rule(str(answers[field])))]
    return found + [msg for msg in [combination_problem(answers)] if msg]


def main(answers: dict) -> int:
    found = problems(answers)
    for message in found:
        print(f"ERROR: {message}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    # Values arrive as JSON inside a raw string, so quotes, backslashes and non-ASCII are safe.
    ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
    sys.exit(main(ANSWERS))
