"""Embedders: the offline hashing default, and the OpenAI-compatible one against a local test server."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.memory_support import memory_masques  # noqa: F401 (the fixture)

pytestmark = pytest.mark.usefixtures("memory_masques")

Invoke = Callable[..., Any]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=80), min_size=1, max_size=5))
def test_hash_vectors_are_unit_length_or_zero_and_repeatable(texts: list[str]) -> None:
    import numpy as np

    from masque.memory.embedders import HashEmbedder

    first = HashEmbedder().embed(texts)
    again = HashEmbedder().embed(list(reversed(texts)))[::-1]
    norms = np.linalg.norm(first, axis=1)
    assert first.shape == (len(texts), 256)
    assert np.allclose(first, again)
    assert all(abs(n - 1.0) < 1e-5 or n == 0.0 for n in norms)


def test_hash_vectors_do_not_depend_on_the_process() -> None:
    code = (
        "from masque.memory.embedders import HashEmbedder;print(HashEmbedder().embed(['line numbers'])[0][:8].tolist())"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1


def test_similar_texts_are_closer_than_unrelated_ones() -> None:
    from masque.memory.embedders import HashEmbedder

    a, b, c = HashEmbedder().embed(["the parser keeps line numbers", "parsers keep the line number", "coffee is hot"])
    assert float(a @ b) > 0.4 > float(a @ c)


class _FakeOpenAI(BaseHTTPRequestHandler):
    """/v1/embeddings (letter-count vectors) and /v1/chat/completions, recording every request body."""

    requests: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, **body})
        if self.path.endswith("/embeddings"):
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [{"object": "embedding", "index": i, "embedding": _letters(t)} for i, t in enumerate(inputs)]
            reply: dict[str, Any] = {"object": "list", "data": data, "model": body["model"],
                                     "usage": {"prompt_tokens": 1, "total_tokens": 1}}  # fmt: skip
        elif self.path.endswith("/chat/completions"):
            reply = {
                "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "- the team cares about parsers"}}],
            }  # fmt: skip
        else:
            self.send_error(404)
            return
        raw = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


def _letters(text: str) -> list[float]:
    counts = [float(text.lower().count(ch)) for ch in "aeiou"] + [float(len(text.split())), 1.0, 0.5]
    return counts


@pytest.fixture
def fake_openai(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Start the fake server on 127.0.0.1 and point OPENAI_BASE_URL and masque.toml at it."""
    _FakeOpenAI.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    cfg = tmp_path / "masque.toml"
    cfg.write_text(
        '[memory]\nembedder = "openai"\nmodel = "tiny-embed"\n[llm]\nmodel = "tiny-chat"\nmax_retries = 0\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("MASQUE_CONFIG", str(cfg))
    yield _FakeOpenAI.requests
    server.shutdown()
    server.server_close()
    thread.join()


def _json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_openai_embedder_stores_and_searches_through_the_server(
    invoke: Invoke, fake_openai: list[dict[str, Any]]
) -> None:
    _json(invoke(["memory", "add", "codesmith", "aaaa aaaa", "--json"]))
    _json(invoke(["memory", "add", "codesmith", "uuuu", "--json"]))

    found = _json(invoke(["memory", "search", "codesmith", "aaa", "--json"]))["results"]
    stats = _json(invoke(["memory", "stats", "codesmith", "--json"]))["shards"][0]

    assert found[0]["text"] == "aaaa aaaa"
    assert (stats["embedder"], stats["dim"]) == ("openai:tiny-embed", 8)
    assert [r["input"] for r in fake_openai] == [["aaaa aaaa"], ["uuuu"], ["aaa"]]
    assert {r["model"] for r in fake_openai} == {"tiny-embed"}


def test_content_hashes_skip_re_embedding(invoke: Invoke, fake_openai: list[dict[str, Any]]) -> None:
    from masque import memory

    memory.add(["same text", "other text"], "codesmith")
    result = memory.add(["same text", "brand new"], "codesmith")

    assert result.reused_vectors == 1
    assert [r["input"] for r in fake_openai] == [["same text", "other text"], ["brand new"]]


def test_an_unreachable_server_is_a_one_line_error(invoke: Invoke, monkeypatch: pytest.MonkeyPatch,
                                                   fake_openai: list[dict[str, Any]]) -> None:  # fmt: skip
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # discard port: nothing listens
    result = invoke(["memory", "add", "codesmith", "hello"])
    assert result.exit_code == 1
    assert "embedding with tiny-embed failed at http://127.0.0.1:9/v1" in result.stderr


def test_llm_snapshot_uses_the_chat_model(invoke: Invoke, fake_openai: list[dict[str, Any]], tmp_path: Path) -> None:
    cfg = tmp_path / "masque.toml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("[llm]", 'summary = "llm"\n[llm]'), encoding="utf-8")
    invoke(["memory", "add", "codesmith", "parsers keep spans"])

    out = _json(invoke(["memory", "snapshot", "codesmith", "--json"]))["summaries"][0]

    assert (out["method"], out["model"], out["summary"]) == ("llm", "tiny-chat", "- the team cares about parsers")
    chat = [r for r in fake_openai if r["path"].endswith("/chat/completions")]
    assert "parsers keep spans" in chat[0]["messages"][-1]["content"]


def test_a_changed_embedding_model_is_refused_until_reembed(
    invoke: Invoke, fake_openai: list[dict[str, Any]], tmp_path: Path
) -> None:
    invoke(["memory", "add", "codesmith", "embedded by tiny-embed"])
    cfg = tmp_path / "masque.toml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("tiny-embed", "other-embed"), encoding="utf-8")

    refused = invoke(["memory", "add", "codesmith", "must not mix vector spaces"])
    assert refused.exit_code == 2
    assert "openai:tiny-embed" in refused.stderr and "masque memory reembed codesmith" in refused.stderr

    out = _json(invoke(["memory", "reembed", "codesmith", "--json"]))
    assert (out["old_embedder"], out["embedder"], out["rows"]) == ("openai:tiny-embed", "openai:other-embed", 1)
    assert (fake_openai[-1]["model"], fake_openai[-1]["input"]) == ("other-embed", ["embedded by tiny-embed"])
