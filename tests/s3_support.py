"""A local S3-compatible server for the memory-on-object-storage tests: moto's server mode, a real process.

LanceDB talks to the server exactly as it would to S3 or MinIO; the tests look into the bucket with boto3.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from net_support import free_port


def _http(method: str, url: str) -> bytes:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return bytes(response.read())


@contextmanager
def moto_server(**env: str) -> Iterator[str]:
    """`python -m moto.server` on a free 127.0.0.1 port (with `env` added), ready when this yields."""
    pytest.importorskip("moto.server", reason="the S3 tests need moto's server mode: pip install 'moto[server]'")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                _http("GET", endpoint + "/")
                break
            except urllib.error.HTTPError:
                break  # an answer, even a refusal, means it is up
            except (urllib.error.URLError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server on port {port} did not come up") from None
                time.sleep(0.05)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """One moto server for the whole test session."""
    with moto_server() as endpoint:
        yield endpoint


class Bucket:
    """One fresh bucket on the test server, and what is in it (read with boto3, moto's own dependency)."""

    def __init__(self, endpoint: str) -> None:
        import boto3

        self.endpoint = endpoint
        self.name = f"mem-{uuid.uuid4().hex[:12]}"
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing-key-id",
            aws_secret_access_key="testing-secret-value",
        )
        self.client.create_bucket(Bucket=self.name)

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())


def write_s3_config(path: Path, uri: str, endpoint: str, *, allow_http: bool = True) -> Path:
    path.write_text(
        f'[memory]\nuri = "{uri}"\n\n[memory.s3]\nendpoint = "{endpoint}"\nregion = "us-east-1"\n'
        f"allow_http = {'true' if allow_http else 'false'}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def s3_memory(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """Memory of this test on a fresh bucket (`s3://BUCKET/team`), test credentials in the environment."""
    bucket = Bucket(s3_endpoint)
    config = write_s3_config(tmp_path / "masque.toml", f"s3://{bucket.name}/team", s3_endpoint)
    monkeypatch.setenv("MASQUE_CONFIG", str(config))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-value")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return bucket
