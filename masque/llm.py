"""Shared provider settings for OpenAI-compatible services (OpenAI, Ollama, vLLM, llama.cpp servers).

Configuration lives in the `[llm]` table of masque.toml; the key and base URL may also come from the
usual `OPENAI_API_KEY` / `OPENAI_BASE_URL` variables, so a local server works without a config file:

    [llm]
    base_url = "http://127.0.0.1:11434/v1"   # else $OPENAI_BASE_URL, else api.openai.com
    api_key_env = "OPENAI_API_KEY"           # which variable holds the key (never the key itself)
    model = "gpt-4o-mini"                    # chat model (summaries, MythaTron)
    timeout = 30                             # seconds per request
    max_retries = 2

The `openai` package is imported only when a client is actually built.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from masque import config
from masque.errors import MasqueError, UsageError

if TYPE_CHECKING:
    import openai

# Local servers (Ollama, vLLM) accept any key, but the openai client refuses to start without one.
_PLACEHOLDER_KEY = "not-needed"


@dataclass(frozen=True)
class ProviderConfig:
    """Where and how to reach an OpenAI-compatible API."""

    base_url: str | None
    api_key: str | None
    model: str | None
    timeout: float = 30.0
    max_retries: int = 2

    @property
    def configured(self) -> bool:
        """True when a key or a base URL says which service to use."""
        return bool(self.api_key or self.base_url)

    @property
    def where(self) -> str:
        return self.base_url or "https://api.openai.com/v1"


def provider_config() -> ProviderConfig:
    """The `[llm]` settings merged with OPENAI_* variables (config wins for the base URL)."""
    raw = config.section("llm")
    key_env = str(raw.get("api_key_env", "OPENAI_API_KEY"))
    try:
        timeout = float(raw.get("timeout", 30.0))
        retries = int(raw.get("max_retries", 2))
    except (TypeError, ValueError):
        raise UsageError(
            f"config [llm]: timeout and max_retries must be numbers, got {raw.get('timeout')!r} and "
            f"{raw.get('max_retries')!r}",
            hint="fix the [llm] table in masque.toml",
        ) from None
    model = raw.get("model")
    return ProviderConfig(
        base_url=str(raw["base_url"]) if raw.get("base_url") else config.env_value("OPENAI_BASE_URL"),
        api_key=config.env_value(key_env),
        model=str(model) if model else None,
        timeout=timeout,
        max_retries=retries,
    )


def openai_client(cfg: ProviderConfig | None = None) -> openai.OpenAI:
    """An `openai.OpenAI` client for `cfg` (default: `provider_config()`), built once per setting."""
    cfg = cfg or provider_config()
    if not cfg.configured:
        raise UsageError(
            "no OpenAI-compatible service is configured",
            hint="set OPENAI_API_KEY (and OPENAI_BASE_URL for a local server), or base_url in [llm] of masque.toml",
        )
    return _client(cfg)


@lru_cache(maxsize=4)
def _client(cfg: ProviderConfig) -> openai.OpenAI:
    import openai

    return openai.OpenAI(
        api_key=cfg.api_key or _PLACEHOLDER_KEY,
        base_url=cfg.base_url,
        timeout=cfg.timeout,
        max_retries=cfg.max_retries,
    )


def provider_error(exc: Exception, cfg: ProviderConfig, what: str) -> MasqueError:
    """Turn an openai exception into a one-line MasqueError naming the service and what to check."""
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return MasqueError(
        f"{what} failed at {cfg.where}: {type(exc).__name__}: {detail}",
        hint="check OPENAI_BASE_URL / [llm] base_url, the API key and the model name; the server must be reachable",
    )


def chat(prompt: str, *, system: str | None = None, model: str | None = None, **kwargs: Any) -> str:
    """One chat completion; returns the reply text. Raises MasqueError when the call fails."""
    cfg = provider_config()
    chosen = model or cfg.model
    if not chosen:
        raise UsageError("no chat model configured", hint='set model = "..." in the [llm] table of masque.toml')
    client = openai_client(cfg)
    messages: list[dict[str, str]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    import openai

    try:
        reply = client.chat.completions.create(model=chosen, messages=messages, **kwargs)  # type: ignore[arg-type]
    except openai.OpenAIError as exc:
        raise provider_error(exc, cfg, f"chat completion with {chosen}") from None
    content = reply.choices[0].message.content if reply.choices else None
    return content or ""
