"""`[memory] uri` and `[memory.s3]`: where memory lives and with which credentials (no server needed)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from masque import config
from masque.errors import UsageError

Invoke = Callable[..., Any]


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "masque.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("MASQUE_CONFIG", str(path))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    return path


def test_memory_stays_under_the_home_by_default(invoke: Invoke, isolated_env: Path) -> None:
    places = json.loads(invoke(["path", "--json"]).stdout)

    assert places["memory"] == str(isolated_env / "memory")
    assert config.memory_storage().remote is False


def test_credentials_come_from_the_named_profile_and_never_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(
        tmp_path, monkeypatch, '[memory]\nuri = "s3://b/p/"\n[memory.s3]\nprofile = "masque"\nregion = "eu-west-1"\n'
    )
    creds = tmp_path / "credentials"
    creds.write_text("[masque]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = profile-secret\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))

    storage = config.memory_storage()

    assert storage.uri == "s3://b/p" and storage.remote
    assert storage.options == {
        "aws_region": "eu-west-1",
        "aws_access_key_id": "AKIAPROFILE",
        "aws_secret_access_key": "profile-secret",
    }
    assert "profile-secret" not in repr(storage) + storage.where()


def test_environment_credentials_are_used_without_a_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _config(tmp_path, monkeypatch, '[memory]\nuri = "s3://b/p"\n')
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "env-token")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "https://minio.example:9000/")

    options = config.memory_storage().options

    assert options["aws_access_key_id"] == "AKIAENV" and options["aws_session_token"] == "env-token"
    assert options["aws_endpoint"] == "https://minio.example:9000" and options["aws_region"] == "us-east-1"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[memory]\nuri = "gs://b/p"\n', "s3://BUCKET/PREFIX"),
        ('[memory]\nuri = "s3://b/p"\n[memory.s3]\nendpont = "http://x"\n', "endpoint, region, allow_http, profile"),
        ('[memory]\nuri = "s3://b/p"\n[memory.s3]\nallow_http = "yes"\n', "allow_http must be true or false"),
        ('[memory]\nuri = "s3://b/p"\n[memory.s3]\nendpoint = "http://127.0.0.1:9000"\n', "allow_http = true"),
        ('[memory]\nuri = "s3://b/p"\n[memory.s3]\nprofile = "nope"\n', "AWS profile 'nope'"),
    ],
)
def test_a_wrong_memory_setting_is_a_usage_error_naming_it(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, named: str
) -> None:
    _config(tmp_path, monkeypatch, text)

    with pytest.raises(UsageError) as caught:
        config.memory_storage()
    result = invoke(["path"])

    assert named in str(caught.value) + (caught.value.hint or "")
    assert result.exit_code == 2 and "Traceback" not in result.output
