"""`memory snapshot`: condense shards into the `ai_memory_summary` table in DuckDB.

Extractive by default (no network): the live memories closest to the shard's centroid, picked with
maximal marginal relevance so the summary covers different topics instead of repeating one. With
`[memory] summary = "llm"` the newest memories are sent to the `[llm]` chat model instead; that is
opt-in because it ships memory text to a service.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from masque import config, store
from masque.durations import utcnow
from masque.errors import UsageError
from masque.ids import new_id
from masque.memory import ops, policy
from masque.memory.policy import Mode

if TYPE_CHECKING:
    from masque.trust.rings import Selection

EXTRACT_LINES = 5
MAX_LINE_CHARS = 240
LLM_INPUT_ROWS = 200
MAX_SOURCE_ROWS = 10_000  # the newest memories speak for the shard; keeps the MMR matrix small
MMR_LAMBDA = 0.7  # weight of relevance to the centroid against novelty w.r.t. lines already picked


@dataclass(frozen=True)
class Summary:
    id: str
    masque: str
    summary: str
    method: str
    model: str | None
    source_rows: int
    first_at: dt.datetime | None
    last_at: dt.datetime | None
    created_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "masque": self.masque,
            "summary": self.summary,
            "method": self.method,
            "model": self.model,
            "source_rows": self.source_rows,
            "first_at": self.first_at.isoformat() if self.first_at else None,
            "last_at": self.last_at.isoformat() if self.last_at else None,
            "created_at": self.created_at.isoformat(),
        }


def _line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_LINE_CHARS else flat[: MAX_LINE_CHARS - 1] + "…"


def extractive(texts: list[str], vectors: Any, lines: int = EXTRACT_LINES) -> list[str]:
    """Up to `lines` texts: central to the shard and different from each other (MMR)."""
    import numpy as np

    if not texts:
        return []
    matrix = np.asarray(vectors, dtype=np.float32)
    centroid = matrix.mean(axis=0)
    norm = float(np.linalg.norm(centroid)) or 1.0
    relevance = matrix @ (centroid / norm)
    picked: list[int] = []
    while len(picked) < min(lines, len(texts)):
        if picked:
            novelty = (matrix @ matrix[picked].T).max(axis=1)
            scores = MMR_LAMBDA * relevance - (1 - MMR_LAMBDA) * novelty
        else:
            scores = relevance.copy()
        scores[picked] = -np.inf
        best = int(np.argmax(scores))
        if not np.isfinite(scores[best]):
            break
        picked.append(best)
    # Duplicates of one text would waste lines; keep the first of each.
    unique: list[str] = []
    for i in picked:
        if texts[i] not in unique:
            unique.append(texts[i])
    return [_line(t) for t in unique]


def _llm_summary(masque: str, texts: list[str]) -> tuple[str, str]:
    from masque import llm

    cfg = llm.provider_config()
    prompt = (
        f"Summarise what the AI persona '{masque}' has learned, from these memories (newest first). "
        "Answer with at most 5 short bullet points and nothing else.\n\n" + "\n".join(f"- {_line(t)}" for t in texts)
    )
    return llm.chat(prompt, system="You condense agent memories into brief factual summaries."), cfg.model or ""


def _method() -> str:
    method = str(config.section("memory").get("summary", "extractive"))
    if method not in ("extractive", "llm"):
        raise UsageError(f"config [memory] summary = {method!r} is not known", hint='use "extractive" or "llm"')
    return method


def summarize(
    masques: tuple[str, ...] = (), *, now: dt.datetime | None = None, selection: Selection | None = None
) -> list[Summary]:
    """Summarise the named shards, or every shard in global_snapshot mode; store and return the summaries."""
    now = now or utcnow()
    method = _method()
    names = list(masques) or ops.default_shards(mode=Mode.GLOBAL_SNAPSHOT, selection=selection)
    out: list[Summary] = []
    for name in names:
        tgt = ops.target(name, selection=selection, action="snapshot")
        if not ops.check_read(tgt, "snapshot"):
            continue
        shard = ops.open_for(tgt)
        rows = (
            shard.rows(ops.live_filter(now, tgt.retention), columns=("id", "text", "vector", "created_at"))
            if shard
            else []
        )
        rows.sort(key=lambda r: r["id"], reverse=True)
        rows = rows[:MAX_SOURCE_ROWS]
        if not rows:
            continue
        texts = [r["text"] for r in rows]
        if method == "llm":
            text, model = _llm_summary(tgt.masque, texts[:LLM_INPUT_ROWS])
            used: str | None = model
        else:
            text = "\n".join(f"- {line}" for line in extractive(texts, [r["vector"] for r in rows]))
            used = None
        times = [r["created_at"] for r in rows]
        summary = Summary(new_id("msm_"), tgt.masque, text, method, used, len(rows), min(times), max(times), now)
        with store.transaction() as conn:
            conn.execute(
                "INSERT INTO ai_memory_summary (id, masque, summary, method, model, source_rows, first_at, last_at, "
                "created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [summary.id, summary.masque, summary.summary, summary.method, summary.model, summary.source_rows,
                 summary.first_at, summary.last_at, summary.created_at, tgt.caller.actor],
            )  # fmt: skip
            ops.audit.log(conn, tgt.caller, "snapshot", tgt.masque, tgt.access, ids=[r["id"] for r in rows],
                          detail={"method": method, "summary_id": summary.id})  # fmt: skip
        out.append(summary)
    return out


def _summary_visible(caller: policy.Caller, settings: policy.ShardSettings) -> policy.Access | None:
    """Summaries are meant to travel: global_snapshot ones are readable by every masque."""
    access = policy.read_access(caller, settings)
    if access is not policy.Access.DENIED:
        return access
    return policy.Access.SHARED if settings.mode is Mode.GLOBAL_SNAPSHOT else None


def summaries(masque: str | None = None, *, limit: int = 1, selection: Selection | None = None) -> list[Summary]:
    """The stored summaries the caller may read (newest `limit` per masque), newest masque first.

    Readable: the caller's own, those of shards in global_snapshot mode (cross-project insights),
    those of scoped_share shards that whitelist the caller's masque; an admin or the operator reads all.
    """
    from masque.durations import as_utc
    from masque.memory import access as ring_rule

    if limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}", hint="e.g. --limit 3 (summaries per masque)")
    caller = policy.current_caller(selection=selection)
    wanted = policy.masque_key(masque) if masque else None
    files = ring_rule.masque_files()
    with store.connect(read_only=True) as conn:
        rows = store.rows(
            conn,
            "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY masque ORDER BY created_at DESC, id DESC) AS n "
            "FROM ai_memory_summary WHERE CAST($m AS VARCHAR) IS NULL OR masque = $m) AS ranked "
            "WHERE n <= $limit ORDER BY masque, n",
            {"m": wanted, "limit": limit},
        )
        settings = {name: policy.shard_settings(conn, name) for name in {r["masque"] for r in rows}}
    if wanted:  # the ring rule first: a more trusted masque's summaries are refused, an unknown one not found
        ring_rule.check(caller, wanted, ring_rule.ring_of(wanted, files, list(settings), caller), "summaries")
    rings_of = {name: ring_rule.ring_of(name, files, list(settings), caller) for name in settings}
    rows = [r for r in rows if ring_rule.qualifies(caller, rings_of[r["masque"]])]
    out: list[Summary] = []
    seen: dict[str, policy.Access] = {}
    for r in rows:
        access = _summary_visible(caller, settings[r["masque"]])
        if access is None:
            continue
        seen[r["masque"]] = access
        out.append(
            Summary(r["id"], r["masque"], r["summary"], r["method"], r["model"], r["source_rows"],
                    as_utc(r["first_at"]), as_utc(r["last_at"]), as_utc(r["created_at"]) or utcnow())
        )  # fmt: skip
    refused = wanted if wanted and wanted not in seen and any(r["masque"] == wanted for r in rows) else None
    if seen or refused:
        with store.transaction() as conn:
            for name, access in sorted(seen.items()):
                ids = [s.id for s in out if s.masque == name]
                ops.audit.log(conn, caller, "summary", name, access, ids=ids)
            if refused:
                ops.audit.log(conn, caller, "summary", refused, policy.Access.DENIED)
    if refused:
        raise policy.denied(caller, refused)
    return out
