"""The S3 test server's description and a clean environment for pivot subprocesses."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

ACCESS_KEY = "pivottest"
SECRET_KEY = "pivottest-secret"
BUCKET = "pivot"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str


def clean_env() -> dict[str, str]:
    """The environment for pivot subprocesses: no ambient AWS settings leak into tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.pop("PIVOT_KILL_AT", None)
    # No real home credentials either.
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_CONFIG_FILE"] = os.devnull
    return env


def client(server: S3Server) -> Any:
    """A boto3 client of `server`, for tests that look at or plant keys directly."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name="us-east-1",
    )
