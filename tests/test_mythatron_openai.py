"""The openai provider: the real `openai` client against a small OpenAI-compatible server on 127.0.0.1.

The server streams SSE chunks like the real API (content deltas, then a usage chunk, then [DONE]),
answers non-streaming requests too, fails on request, and can hold a request until the test lets it
go, which is how the timeout case works without sleeping.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from masque import store

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "masks"
Invoke = Callable[..., Any]


class FakeOpenAI:
    """State shared with the handler: what was asked, and how to misbehave."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.pieces = ["### Theme", " Analysis\n", "The strength", " is restraint."]
        self.fail_status: int | None = None
        self.hold = threading.Event()
        self.holding = False


def make_handler(state: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _json(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            state.requests.append(body)
            state.headers.append({k.lower(): v for k, v in self.headers.items()})
            if self.path != "/v1/chat/completions":
                self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                return
            if state.holding:
                state.hold.wait(30)  # released by the test once the client has given up
                return
            if state.fail_status:
                self._json(state.fail_status, {"error": {"message": "the model is on fire", "type": "server_error"}})
                return
            if not body.get("stream"):
                self._json(
                    200,
                    {
                        "id": "cmpl-1",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "fake-model-2026",
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": "".join(state.pieces)},
                            }
                        ],
                        "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49},
                    },
                )
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()

            def send(payload: dict[str, Any] | str) -> None:
                data = payload if isinstance(payload, str) else json.dumps(payload)
                self.wfile.write(f"data: {data}\n\n".encode())
                self.wfile.flush()

            base = {"id": "cmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "fake-model-2026"}
            for piece in state.pieces:
                send({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
            send({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            if (body.get("stream_options") or {}).get("include_usage"):
                send(
                    {**base, "choices": [], "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}}
                )
            send("[DONE]")

    return Handler


@contextlib.contextmanager
def running_fake_openai(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, llm_config: str = "timeout = 5\nmax_retries = 0\n"
) -> Iterator[FakeOpenAI]:
    """A FakeOpenAI on a free 127.0.0.1 port, with OPENAI_BASE_URL and an [llm] config pointing at it."""
    state = FakeOpenAI()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    config = tmp_path / "masque.toml"
    config.write_text("[llm]\n" + llm_config, encoding="utf-8")
    monkeypatch.setenv("MASQUE_CONFIG", str(config))
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{httpd.server_address[1]}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    from masque.llm import _client

    _client.cache_clear()
    try:
        yield state
    finally:
        state.hold.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
        _client.cache_clear()


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with running_fake_openai(tmp_path, monkeypatch) as state:
        yield state


@pytest.fixture(autouse=True)
def _on_path(masks: Path) -> Path:
    return masks


def generations() -> list[dict[str, Any]]:
    with store.connect(read_only=True) as conn:
        return store.rows(conn, "SELECT * FROM generations ORDER BY id")


def test_generate_streams_from_the_server_and_logs_tokens(server: FakeOpenAI, mt: Invoke) -> None:
    result = mt(["generate", "professor", "Themes in my lighthouse chapter?"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "### Theme Analysis\nThe strength is restraint.\n"
    assert "offline" not in result.stderr
    (request,) = server.requests
    assert request["stream"] is True and request["model"] == "gpt-4o-mini"  # the mask's default_llm
    messages = request["messages"]
    assert messages[0]["role"] == "system" and "Cite textual evidence" in messages[0]["content"]  # inherited lens
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "user", "assistant", "user"]  # few-shot
    assert messages[-1]["content"] == "Themes in my lighthouse chapter?"
    assert server.headers[0]["authorization"] == "Bearer test-key"
    (row,) = generations()
    assert row["provider"] == "openai" and row["model"] == "fake-model-2026" and row["status"] == "ok"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (42, 7)
    assert row["response"] == "### Theme Analysis\nThe strength is restraint." and row["latency_ms"] > 0


def test_model_option_and_json_output(server: FakeOpenAI, invoke: Invoke) -> None:
    result = invoke(["generate", "critic", "pacing?", "--model", "local-llama", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert server.requests[0]["model"] == "local-llama"
    assert payload["provider"] == "openai" and payload["offline"] is False
    assert payload["response"].startswith("### Theme") and payload["completion_tokens"] == 7


def test_an_http_error_fails_with_the_server_named_and_is_logged(server: FakeOpenAI, mt: Invoke) -> None:
    server.fail_status = 500
    result = mt(["generate", "professor", "hello"])
    assert result.exit_code == 1
    assert "127.0.0.1" in result.stderr and "the model is on fire" in result.stderr
    (row,) = generations()
    assert row["status"] == "error" and row["response"] is None and "on fire" in row["error"]


def test_a_timeout_fails_cleanly(server: FakeOpenAI, mt: Invoke, tmp_path: Path) -> None:
    (tmp_path / "masque.toml").write_text("[llm]\ntimeout = 0.3\nmax_retries = 0\n", encoding="utf-8")
    server.holding = True
    result = mt(["generate", "professor", "hello"])
    server.hold.set()
    assert result.exit_code == 1
    assert "timed out after 0.3s" in result.stderr and "timeout" in result.stderr
    assert generations()[0]["status"] == "error"


def test_mask_test_runs_against_the_server(server: FakeOpenAI, mt: Invoke, masks: Path) -> None:
    # The server's one canned answer passes the professor's first test and fails the second.
    result = mt(["mask", "test", masks / "professor.mask.json", "--format", "json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 1 and report["provider"] == "openai"
    assert [r["passed"] for r in report["runs"]] == [True, False]
    assert len(server.requests) == 2
    offline = mt(["mask", "test", masks / "professor.mask.json", "--provider", "offline"])
    assert offline.exit_code == 0 and len(server.requests) == 2  # offline never calls the server


def test_provider_errors_fail_the_run_not_the_suite(server: FakeOpenAI, mt: Invoke, masks: Path) -> None:
    server.fail_status = 503
    report = json.loads(mt(["mask", "test", masks / "critic.mask.json", "--format", "json"]).stdout)
    assert report["failed"] == 2 and all("on fire" in r["error"] for r in report["runs"])


def test_the_non_streaming_path_of_the_fake_server_matches_the_client(server: FakeOpenAI) -> None:
    # `masque.llm.chat` (shared with other features) uses the same server without streaming.
    from masque.llm import chat

    assert chat("hi", model="fake") == "### Theme Analysis\nThe strength is restraint."
