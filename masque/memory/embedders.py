"""Embedders behind one interface: an offline feature-hashing default and an OpenAI-compatible client.

The default (`hash-v1-256`) needs no download and no network: word unigrams, word bigrams and
character 3-grams of each word are hashed (CRC-32, so the result never depends on PYTHONHASHSEED)
into a signed, fixed-size vector that is L2-normalised. It is deterministic and fast and gives good
lexical recall; the OpenAI-compatible embedder gives semantic recall when a service is configured.

Choice (`[memory]` in masque.toml; `[memory.masques.NAME]` overrides per masque):

    [memory]
    embedder = "hash"                 # or "openai"
    model = "text-embedding-3-small"  # for openai
    dimensions = 256                  # optional, for models that can shorten their vectors
    hash_dim = 256                    # for hash
"""

from __future__ import annotations

import itertools
import re
import unicodedata
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from masque import config
from masque.errors import MasqueError, UsageError

if TYPE_CHECKING:
    import numpy as np

HASH_PREFIX = "hash-v1-"
OPENAI_PREFIX = "openai:"
DEFAULT_HASH_DIM = 256
DEFAULT_OPENAI_MODEL = "text-embedding-3-small"
_WORD_RE = re.compile(r"\w+")
_BATCH = 256  # texts per embeddings request: well under every provider's input limit


class Embedder(Protocol):
    """Turns texts into float32 vectors of one fixed dimension."""

    @property
    def id(self) -> str: ...

    @property
    def remote(self) -> bool:
        """True when embedding costs a network call (then stored vectors are reused by content hash)."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass
class HashEmbedder:
    """Signed feature hashing of word and character n-grams (offline, deterministic)."""

    dim: int = DEFAULT_HASH_DIM
    _cache: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        return f"{HASH_PREFIX}{self.dim}"

    @property
    def remote(self) -> bool:
        return False

    def _features(self, key: str, weight: float) -> tuple[int, float]:
        h = zlib.crc32(key.encode("utf-8"))
        # Low bits pick the bucket, the top bit the sign: signed hashing keeps collisions unbiased.
        return h % self.dim, (weight if h & 0x80000000 else -weight)

    def _word(self, word: str) -> tuple[list[int], list[float]]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        idx: list[int] = []
        val: list[float] = []
        i, v = self._features("w:" + word, 1.0)
        idx.append(i)
        val.append(v)
        padded = f"<{word}>"
        for start in range(len(padded) - 2):
            i, v = self._features("c:" + padded[start : start + 3], 0.35)
            idx.append(i)
            val.append(v)
        if len(self._cache) > 500_000:  # bound memory on huge vocabularies
            self._cache.clear()
        self._cache[word] = (idx, val)
        return idx, val

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for row, text in enumerate(texts):
            words = _WORD_RE.findall(unicodedata.normalize("NFKC", text).casefold())
            for word in words:
                idx, val = self._word(word)
                rows.extend([row] * len(idx))
                cols.extend(idx)
                vals.extend(val)
            for a, b in itertools.pairwise(words):
                i, v = self._features(f"b:{a} {b}", 0.7)
                rows.append(row)
                cols.append(i)
                vals.append(v)
        n = len(texts)
        flat = np.asarray(rows, dtype=np.int64) * self.dim + np.asarray(cols, dtype=np.int64)
        out = np.bincount(flat, weights=np.asarray(vals, dtype=np.float64), minlength=n * self.dim)
        matrix = out.reshape(n, self.dim).astype(np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        norms[norms == 0] = 1.0  # an empty text stays the zero vector instead of NaN
        return matrix / norms


@dataclass
class OpenAIEmbedder:
    """Any OpenAI-compatible `/v1/embeddings` endpoint through the `openai` package."""

    model: str = DEFAULT_OPENAI_MODEL
    dimensions: int | None = None

    @property
    def id(self) -> str:
        suffix = f"@{self.dimensions}" if self.dimensions else ""
        return f"{OPENAI_PREFIX}{self.model}{suffix}"

    @property
    def remote(self) -> bool:
        return True

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np
        import openai

        from masque import llm

        cfg = llm.provider_config()
        client = llm.openai_client(cfg)
        vectors: list[list[float]] = []
        extra: dict[str, Any] = {"dimensions": self.dimensions} if self.dimensions else {}
        for start in range(0, len(texts), _BATCH):
            chunk = list(texts[start : start + _BATCH])
            try:
                reply = client.embeddings.create(model=self.model, input=chunk, **extra)
            except openai.OpenAIError as exc:
                raise llm.provider_error(exc, cfg, f"embedding with {self.model}") from None
            got = sorted(reply.data, key=lambda d: d.index)
            if len(got) != len(chunk):
                raise MasqueError(
                    f"embedding with {self.model} at {cfg.where} returned {len(got)} vectors for {len(chunk)} texts",
                    hint="the server is not OpenAI-compatible; check OPENAI_BASE_URL",
                )
            vectors.extend(list(d.embedding) for d in got)
        if not vectors:
            return np.zeros((0, self.dimensions or 0), dtype=np.float32)
        return np.asarray(vectors, dtype=np.float32)


def _settings(masque: str | None) -> Mapping[str, Any]:
    merged = dict(config.section("memory"))
    per = merged.get("masques", {})
    if masque and isinstance(per, dict) and isinstance(per.get(masque), dict):
        merged.update(per[masque])
    return merged


def _int_setting(raw: Mapping[str, Any], key: str, default: int | None) -> int | None:
    value = raw.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UsageError(f"config [memory] {key} must be a positive integer, got {value!r}")
    return value


def configured_embedder(masque: str | None = None) -> HashEmbedder | OpenAIEmbedder:
    """The embedder masque.toml selects for `masque` (the default when nothing is configured)."""
    raw = _settings(masque)
    kind = str(raw.get("embedder", "hash"))
    if kind == "hash":
        return HashEmbedder(_int_setting(raw, "hash_dim", DEFAULT_HASH_DIM) or DEFAULT_HASH_DIM)
    if kind == "openai":
        return OpenAIEmbedder(str(raw.get("model", DEFAULT_OPENAI_MODEL)), _int_setting(raw, "dimensions", None))
    raise UsageError(
        f"config [memory] embedder = {kind!r} is not known",
        hint='use embedder = "hash" (offline default) or embedder = "openai"',
    )


def embedder_from_id(embedder_id: str) -> HashEmbedder | OpenAIEmbedder:
    """Rebuild the embedder a shard recorded (`hash-v1-256`, `openai:MODEL`, `openai:MODEL@DIM`)."""
    if embedder_id.startswith(HASH_PREFIX) and embedder_id[len(HASH_PREFIX) :].isdigit():
        return HashEmbedder(int(embedder_id[len(HASH_PREFIX) :]))
    if embedder_id.startswith(OPENAI_PREFIX):
        model, _, dims = embedder_id[len(OPENAI_PREFIX) :].partition("@")
        return OpenAIEmbedder(model, int(dims) if dims.isdigit() else None)
    raise UsageError(
        f"unknown embedder id {embedder_id!r}",
        hint="use hash-v1-DIM or openai:MODEL; `masque memory stats` shows each shard's embedder",
    )
