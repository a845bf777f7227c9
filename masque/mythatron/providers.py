"""Answer providers for masks: `offline` (deterministic, from the persona's examples) and `openai`.

The offline provider needs no network and no model: it embeds the prompt and each example input with
a small sparse lexical embedder (words and character trigrams, cosine) and answers with the output of
the nearest example, ties to the earliest. That keeps test suites, routing and generation runnable in
CI, and it is honest: every answer it gives is marked `offline` and the CLI says so.

The openai provider talks to any OpenAI-compatible chat-completions server through the `openai`
package (`masque.llm` settings: OPENAI_API_KEY, OPENAI_BASE_URL, `[llm]` in masque.toml), streaming
the answer and reading token usage from the final chunk when the server sends it.
"""

from __future__ import annotations

import math
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from masque.errors import MasqueError, UsageError
from masque.model import Masque

DEFAULT_MODEL = "gpt-4o-mini"
OFFLINE_MODEL = "offline-nearest-example"
TokenSink = Callable[[str], None]


class ProviderName(str, Enum):
    OFFLINE = "offline"
    OPENAI = "openai"


@dataclass(frozen=True)
class Request:
    """What a provider answers: the mask's system prompt, few-shot examples and the user's prompt."""

    system: str
    examples: tuple[tuple[str, str], ...]
    prompt: str
    model: str


@dataclass(frozen=True)
class Completion:
    text: str
    provider: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float
    note: str | None = None  # e.g. which example the offline provider used

    @property
    def offline(self) -> bool:
        return self.provider == ProviderName.OFFLINE.value


class Provider(Protocol):
    @property
    def name(self) -> str: ...

    def complete(self, request: Request, on_token: TokenSink | None = None) -> Completion: ...


def examples_of(masque: Masque) -> tuple[tuple[str, str], ...]:
    prompt = masque.attributes.get("prompt") or {}
    return tuple((str(e["input"]), str(e["output"])) for e in prompt.get("examples") or ())


def system_prompt(masque: Masque) -> str:
    """The lens plus the context: what the model is told before the conversation."""
    parts = [masque.lens.strip()]
    if masque.context and masque.context.strip():
        parts.append("Context:\n" + masque.context.strip())
    return "\n\n".join(p for p in parts if p)


def build_request(masque: Masque, prompt: str, model: str | None = None) -> Request:
    """Model choice: --model, else the mask's `default_llm`, else `[llm] model`, else gpt-4o-mini."""
    if model is None:
        default = masque.attributes.get("default_llm")
        if default:
            model = str(default)
        else:
            from masque.llm import provider_config

            model = provider_config().model or DEFAULT_MODEL
    return Request(system_prompt(masque), examples_of(masque), prompt, model)


def _words(text: str) -> int:
    return len(text.split())


@dataclass(frozen=True)
class OfflineProvider:
    """Deterministic answers: the output of the example whose input is nearest the prompt."""

    name: str = ProviderName.OFFLINE.value

    def complete(self, request: Request, on_token: TokenSink | None = None) -> Completion:
        start = time.perf_counter()
        if request.examples:
            index, score = nearest(request.prompt, [e[0] for e in request.examples])
            text = request.examples[index][1]
            note = f"nearest example {index + 1} of {len(request.examples)}, similarity {score:.2f}"
        else:
            text = "(offline provider: this mask has no prompt.examples to answer from)"
            note = "the mask has no examples"
        if on_token is not None:
            on_token(text)
        return Completion(
            text,
            self.name,
            OFFLINE_MODEL,
            # Whitespace word counts: offline there is no tokenizer; the log says which provider it was.
            _words(request.system) + _words(request.prompt),
            _words(text),
            (time.perf_counter() - start) * 1000,
            note,
        )


_WORD_RE = re.compile(r"\w+")
# Words that say nothing about which example fits; without them "a"/"the" decide short prompts.
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "is",
        "it",
        "me",
        "my",
        "of",
        "on",
        "or",
        "please",
        "the",
        "this",
        "that",
        "to",
        "with",
        "you",
    ]
)


def embed(text: str) -> dict[str, float]:
    """Sparse lexical vector: words (weight 1) and character trigrams of words (0.3), L2-normalised.

    Exact sparse features instead of a hashed dense vector: with a handful of short example inputs,
    hash collisions in a small dimension decide the nearest example as often as the words do.
    """
    vec: dict[str, float] = {}
    for word in _WORD_RE.findall(unicodedata.normalize("NFKC", text).casefold()):
        if word in _STOP:
            continue
        vec["w:" + word] = vec.get("w:" + word, 0.0) + 1.0
        padded = f"<{word}>"
        for i in range(len(padded) - 2):
            key = "c:" + padded[i : i + 3]
            vec[key] = vec.get(key, 0.0) + 0.3
    norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
    return {k: v / norm for k, v in vec.items()}


def similarity(a: dict[str, float], b: dict[str, float]) -> float:
    if len(b) < len(a):
        a, b = b, a
    return sum(v * b.get(k, 0.0) for k, v in a.items())


def nearest(query: str, candidates: Sequence[str]) -> tuple[int, float]:
    """(index, cosine similarity) of the candidate nearest `query`; the earliest wins ties."""
    q = embed(query)
    scores = [similarity(q, embed(c)) for c in candidates]
    best = 0
    for i in range(1, len(scores)):
        if scores[i] > scores[best] + 1e-9:
            best = i
    return best, scores[best]


@dataclass(frozen=True)
class OpenAIProvider:
    """Streaming chat completions from an OpenAI-compatible server."""

    name: str = ProviderName.OPENAI.value

    def messages(self, request: Request) -> list[dict[str, str]]:
        out = [{"role": "system", "content": request.system}] if request.system else []
        for given, answer in request.examples:
            out.append({"role": "user", "content": given})
            out.append({"role": "assistant", "content": answer})
        out.append({"role": "user", "content": request.prompt})
        return out

    def complete(self, request: Request, on_token: TokenSink | None = None) -> Completion:
        import openai

        from masque import llm

        cfg = llm.provider_config()
        client = llm.openai_client(cfg)
        start = time.perf_counter()
        pieces: list[str] = []
        usage: Any = None
        model = request.model
        try:
            stream = client.chat.completions.create(  # type: ignore[call-overload]
                model=request.model,
                messages=self.messages(request),
                stream=True,
                stream_options={"include_usage": True},
            )
            for chunk in stream:
                if getattr(chunk, "model", None):
                    model = chunk.model
                if getattr(chunk, "usage", None) is not None:
                    usage = chunk.usage
                for choice in chunk.choices or ():
                    piece = choice.delta.content if choice.delta else None
                    if piece:
                        pieces.append(piece)
                        if on_token is not None:
                            on_token(piece)
        except openai.APITimeoutError as exc:
            raise ProviderError(
                f"the chat completion with {request.model} at {cfg.where} timed out after {cfg.timeout:g}s",
                hint="raise timeout in the [llm] table of masque.toml, or check the server is responsive",
            ) from exc
        except openai.OpenAIError as exc:
            err = llm.provider_error(exc, cfg, f"chat completion with {request.model}")
            raise ProviderError(str(err), hint=err.hint) from None
        return Completion(
            "".join(pieces),
            self.name,
            model,
            getattr(usage, "prompt_tokens", None),
            getattr(usage, "completion_tokens", None),
            (time.perf_counter() - start) * 1000,
        )


class ProviderError(MasqueError):
    """The LLM call failed (unreachable, HTTP error, timeout); exit code 1."""


def select(name: str | None = None) -> Provider:
    """`offline`, `openai`, or (None) openai when a key or base URL is configured, else offline."""
    from masque import config
    from masque.llm import provider_config

    chosen = name or str(config.section("mythatron").get("provider") or "")
    if not chosen:
        chosen = ProviderName.OPENAI.value if provider_config().configured else ProviderName.OFFLINE.value
    if chosen == ProviderName.OFFLINE.value:
        return OfflineProvider()
    if chosen == ProviderName.OPENAI.value:
        if not provider_config().configured:
            raise UsageError(
                "--provider openai needs an OpenAI-compatible service",
                hint="set OPENAI_API_KEY (and OPENAI_BASE_URL for a local server), or use --provider offline",
            )
        return OpenAIProvider()
    raise UsageError(f"unknown provider {chosen!r}; choose offline or openai")
