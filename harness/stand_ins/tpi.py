"""What the `cml` and `leo` stand-ins share of terraform-provider-iterative (TPI, v0.11.20 and its
last commit), the terraform provider and the `leo` binary that CML 0.20.6 drives: identifiers
(task/common/identifier.go) and the cloud credentials each cloud's client reads from the
environment (iterative/<cloud>/provider.go)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from pathlib import Path

CLOUDS = ("aws", "azure", "gcp", "kubernetes")
NAME_LENGTH = 50 - 16 - len("tpi---")  # identifier.go: maximumLongLength - shortLength - len("tpi---")
IDENTIFIER = re.compile(r"([a-z0-9]{3})-([a-z0-9]+(?:[a-z0-9-]*[a-z0-9])?)-([a-z0-9]+)-([a-z0-9]+)")
DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(data: bytes) -> str:
    """uid's BaseXEncoding: the bytes as one big-endian integer, in base 36 (Go's big.Int.Text(36))."""
    number, text = int.from_bytes(data, "big"), ""
    while number:
        number, digit = divmod(number, 36)
        text = DIGITS[digit] + text
    return text or "0"


def _hash(seed: str) -> str:
    """identifier.go's hash(seed, shortLength/2): SHA-256, base 36, the first 8 characters."""
    return _base36(hashlib.sha256(seed.encode()).digest())[:8]


def _normalize(name: str) -> str:
    text = re.sub("[^a-z0-9]+", "-", name.lower())[:NAME_LENGTH]
    return re.sub("(^-)|(-$)", "", text)


def runner_identifier(name: str) -> str:
    """The id TPI gives an iterative_cml_runner (utils.SetId): NewRandomIdentifier(name).Long() with
    its `tpi-` prefix made `cml-`, e.g. cml-cml-123-456-3z4xlzwq-3u0vweb4."""
    name = _normalize(name)
    salt = _hash(_base36(secrets.token_bytes(8)))
    return f"cml-{name}-{salt}-{_hash(name + salt)}"


def parse_identifier(identifier: str) -> dict | None:
    """ParseIdentifier: {prefix, name, salt}, or None for a string that is no TPI identifier."""
    match = IDENTIFIER.fullmatch(identifier)
    if match is None or _hash(match[2] + match[3]) != match[4]:
        return None
    return {"prefix": match[1], "name": match[2], "salt": match[3]}


def credentials_problem(cloud: str) -> str | None:
    """Why the cloud's client would find no credentials in this environment, or None.

    Stricter than the clients' default chains: shared config files, instance roles and managed
    identities, which a CI job should not rely on, do not count here."""
    env = os.environ.get
    if cloud == "aws":
        keys = env("AWS_ACCESS_KEY_ID") and env("AWS_SECRET_ACCESS_KEY")
        web_identity = env("AWS_ROLE_ARN") and Path(env("AWS_WEB_IDENTITY_TOKEN_FILE") or "/nonexistent").is_file()
        if not (keys or web_identity):
            return (
                "failed to refresh cached credentials, no EC2 IMDS role found (set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE for OIDC)"
            )
    elif cloud in ("azure", "az"):
        if not env("AZURE_SUBSCRIPTION_ID"):
            return "AZURE_SUBSCRIPTION_ID is not present"
        missing = [name for name in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID") if not env(name)]
        if missing:
            return f"no Azure service principal: {', '.join(missing)} not set"
    elif cloud == "gcp":
        data, path = env("GOOGLE_APPLICATION_CREDENTIALS_DATA"), env("GOOGLE_APPLICATION_CREDENTIALS")
        if data:
            try:
                if not isinstance(json.loads(data), dict):
                    raise ValueError
            except ValueError:
                return "GOOGLE_APPLICATION_CREDENTIALS_DATA is not a JSON credentials object"
        elif not (path and Path(path).is_file()):
            return (
                "google: could not find default credentials (set GOOGLE_APPLICATION_CREDENTIALS_DATA to the "
                "service account key's JSON, or GOOGLE_APPLICATION_CREDENTIALS to its file)"
            )
    elif cloud in ("kubernetes", "k8s") and not env("KUBERNETES_CONFIGURATION"):
        return "invalid configuration: no configuration has been provided (set KUBERNETES_CONFIGURATION)"
    return None
