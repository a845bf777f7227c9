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

import re
import threading
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


class _Vocabulary:
    """Per-process table of the words seen so far: each word's hash and its hashed feature buckets.

    Stored as growable numpy arrays so a batch expands word ids into (bucket, weight) pairs with
    vectorised gathers instead of Python loops.
    """

    def __init__(self, dim: int) -> None:
        import numpy as np

        self.dim = dim
        self.ids: dict[str, int] = {}
        self.word_hash = np.zeros(1024, dtype=np.uint64)
        self.feat_start = np.zeros(1024, dtype=np.int64)
        self.feat_count = np.zeros(1024, dtype=np.int64)
        self.cols = np.zeros(8192, dtype=np.int64)
        self.vals = np.zeros(8192, dtype=np.float64)
        self.used = 0  # entries of cols/vals in use

    def _grow(self, name: str, needed: int) -> None:
        import numpy as np

        current = getattr(self, name)
        if current.shape[0] < needed:
            grown = np.zeros(max(needed, current.shape[0] * 2), dtype=current.dtype)
            grown[: current.shape[0]] = current
            setattr(self, name, grown)

    def add(self, words: list[str], first_id: int) -> None:
        """Hash `words` (ids first_id, first_id + 1, ...) into the tables."""
        cols: list[int] = []
        vals: list[float] = []
        counts: list[int] = []
        hashes: list[int] = []
        for word in words:
            h = zlib.crc32(("w:" + word).encode("utf-8"))
            hashes.append(h)
            cols.append(h % self.dim)
            # Low bits pick the bucket, the top bit the sign: signed hashing keeps collisions unbiased.
            vals.append(1.0 if h & 0x80000000 else -1.0)
            padded = f"<{word}>"
            for k in range(len(padded) - 2):
                c = zlib.crc32(("c:" + padded[k : k + 3]).encode("utf-8"))
                cols.append(c % self.dim)
                vals.append(0.35 if c & 0x80000000 else -0.35)
            counts.append(len(padded) - 1)
        end_id = first_id + len(words)
        for name in ("word_hash", "feat_start", "feat_count"):
            self._grow(name, end_id)
        self._grow("cols", self.used + len(cols))
        self._grow("vals", self.used + len(vals))
        self.word_hash[first_id:end_id] = hashes
        self.feat_count[first_id:end_id] = counts
        starts = [self.used]
        for c in counts[:-1]:
            starts.append(starts[-1] + c)
        self.feat_start[first_id:end_id] = starts
        self.cols[self.used : self.used + len(cols)] = cols
        self.vals[self.used : self.used + len(vals)] = vals
        self.used += len(cols)


@dataclass
class HashEmbedder:
    """Signed feature hashing of word and character n-grams (offline, deterministic).

    Features: each word (weight 1), its character 3-grams with boundary marks (0.35 each) and each
    pair of adjacent words (0.7, from the two word hashes mixed). Words are hashed once per process;
    a batch is then a few numpy gathers and one `bincount`, so the Python work per word is one dict
    lookup.
    """

    dim: int = DEFAULT_HASH_DIM
    _vocab: Any = field(default=None, repr=False)
    # The vocabulary grows while embedding; one shared embedder may serve several threads.
    _lock: Any = field(default_factory=threading.Lock, repr=False)

    @property
    def id(self) -> str:
        return f"{HASH_PREFIX}{self.dim}"

    @property
    def remote(self) -> bool:
        return False

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return self._embed(texts)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        if self._vocab is None or len(self._vocab.ids) > 500_000:  # bound memory on huge vocabularies
            self._vocab = _Vocabulary(self.dim)
        vocab: _Vocabulary = self._vocab
        ids = vocab.ids
        word_ids: list[int] = []
        ends: list[int] = []
        new_words: list[str] = []
        first_new = len(ids)
        for text in texts:
            for word in _WORD_RE.findall(unicodedata.normalize("NFKC", text).casefold()):
                wid = ids.get(word)
                if wid is None:
                    wid = ids[word] = len(ids)
                    new_words.append(word)
                word_ids.append(wid)
            ends.append(len(word_ids))
        if new_words:
            vocab.add(new_words, first_new)
        n = len(texts)
        words = np.asarray(word_ids, dtype=np.int64)
        per_text = np.diff(np.asarray([0, *ends], dtype=np.int64)).astype(np.int64)
        text_of_word = np.repeat(np.arange(n, dtype=np.int64), per_text)
        # Unigram and character features: expand each word occurrence into its feature entries.
        counts = vocab.feat_count[words]
        total = int(counts.sum())
        offsets = np.repeat(vocab.feat_start[words] - (np.cumsum(counts) - counts), counts)
        entries = offsets + np.arange(total, dtype=np.int64)
        rows = np.repeat(text_of_word, counts)
        cols = vocab.cols[entries]
        vals = vocab.vals[entries]
        # Bigrams: adjacent words of the same text, bucketed by mixing the two word hashes.
        same = text_of_word[1:] == text_of_word[:-1]
        ha = vocab.word_hash[words[:-1][same]]
        hb = vocab.word_hash[words[1:][same]]
        mixed = (ha * np.uint64(0x9E3779B1) + hb * np.uint64(0x85EBCA77)) & np.uint64(0xFFFFFFFF)
        mixed ^= mixed >> np.uint64(15)
        mixed = (mixed * np.uint64(0x2C1B3C6D)) & np.uint64(0xFFFFFFFF)
        b_cols = (mixed % np.uint64(self.dim)).astype(np.int64)
        b_vals = np.where(mixed & np.uint64(0x80000000), 0.7, -0.7)
        flat = np.concatenate([rows * self.dim + cols, text_of_word[1:][same] * self.dim + b_cols])
        weights = np.concatenate([vals, b_vals])
        summed = np.bincount(flat, weights=weights, minlength=n * self.dim)
        matrix = summed.reshape(n, self.dim).astype(np.float32)
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


_hashers: dict[int, HashEmbedder] = {}


def hash_embedder(dim: int = DEFAULT_HASH_DIM) -> HashEmbedder:
    """One HashEmbedder per dimension and process, so its learnt vocabulary is reused."""
    if dim not in _hashers:
        _hashers[dim] = HashEmbedder(dim)
    return _hashers[dim]


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
        return hash_embedder(_int_setting(raw, "hash_dim", DEFAULT_HASH_DIM) or DEFAULT_HASH_DIM)
    if kind == "openai":
        return OpenAIEmbedder(str(raw.get("model", DEFAULT_OPENAI_MODEL)), _int_setting(raw, "dimensions", None))
    raise UsageError(
        f"config [memory] embedder = {kind!r} is not known",
        hint='use embedder = "hash" (offline default) or embedder = "openai"',
    )


def embedder_from_id(embedder_id: str) -> HashEmbedder | OpenAIEmbedder:
    """Rebuild the embedder a shard recorded (`hash-v1-256`, `openai:MODEL`, `openai:MODEL@DIM`)."""
    if embedder_id.startswith(HASH_PREFIX) and embedder_id[len(HASH_PREFIX) :].isdigit():
        return hash_embedder(int(embedder_id[len(HASH_PREFIX) :]))
    if embedder_id.startswith(OPENAI_PREFIX):
        model, _, dims = embedder_id[len(OPENAI_PREFIX) :].partition("@")
        return OpenAIEmbedder(model, int(dims) if dims.isdigit() else None)
    raise UsageError(
        f"unknown embedder id {embedder_id!r}",
        hint="use hash-v1-DIM or openai:MODEL; `masque memory stats` shows each shard's embedder",
    )
