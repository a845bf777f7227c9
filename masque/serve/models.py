"""Request and response bodies (pydantic), so /openapi.json documents every shape."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class Problem(BaseModel):
    """RFC 9457 problem details, with Masque's extension members."""

    type: str = Field(description="urn:masque:problem:<reason>")
    title: str
    status: int
    detail: str = Field(description="The one-line message the CLI would print.")
    reason: str = Field(description="A Refused reason (intent_denied, ring_refused, token_invalid, ...) or the kind.")
    exit_code: int = Field(description="The exit code `masque` gives the same failure: 1, 2, 3, 4 or 5.")
    hint: str | None = Field(None, description="What to do next.")


class ActivateRequest(BaseModel):
    masque: str = Field(description="NAME, NAME@1.2.3 or masque:NAME@v1.2.3.", examples=["codesmith"])
    intent: str = Field(description="Why you wear it: matched against the masque's intent globs.")
    ttl: str | None = Field(None, description="A shorter credential lifetime: PT15M, 15m, 2h.", examples=["1h"])
    strict_knowledge: bool = Field(False, description="Refuse when any knowledge pointer is unresolved.")


class Knowledge(BaseModel):
    uri: str
    endpoint: str | None


class ActivateResponse(BaseModel):
    session_id: str
    token: str = Field(description="The session token (msq_...), shown once: the bearer for generate/deactivate.")
    masque: str
    version: str
    actor: str
    actor_ring: str | None
    intent: str
    role: str | None
    accessor: str | None
    expires_at: dt.datetime | None = Field(description="When the session's credential expires.")
    system_prompt: str = Field(description="The runtime prompt: lens + context + knowledge + intent.")
    knowledge: list[Knowledge]


class GenerateRequest(BaseModel):
    prompt: str = Field(description="What to ask the model, framed by the session's masque.")
    session_id: str | None = Field(
        None, description="Default: the session whose token is the bearer. An actor key must name one."
    )
    provider: str | None = Field(None, description="offline or openai (default: the server's [llm] settings).")
    model: str | None = Field(None, description="Model name (default: the mask's default_llm, else [llm] model).")


class DeactivateRequest(BaseModel):
    session_id: str | None = Field(None, description="Default: the session whose token is the bearer.")
    score: str | None = Field(None, description="Score it: + - / * e (or additive, negative, ...).")
    notes: str | None = Field(None, description="Notes kept with the score.")


class DeactivateResponse(BaseModel):
    session: dict[str, Any] = Field(description="The session as `masque release --format json` prints it.")
    already_ended: bool
    ended: list[str] = Field(description="Session ids this call ended (the session and its chain).")
    revoked: list[str] = Field(description="Credential accessors this call revoked.")
    memory: dict[str, Any] = Field(
        description='The memory shard diff: {"added", "forgotten", "added_ids", "forgotten_ids", "shards"}.'
    )


class CheckRequest(BaseModel):
    masque: str = Field(description="NAME, NAME@1.2.3 or masque:NAME@v1.2.3.")
    intent: str


class CheckResponse(BaseModel):
    ref: str
    path: str
    sha256: str
    intent: str
    allowed: bool
    reason: str
    pattern: str | None
    normalized: str
    message: str
    refusal_reason: str | None = Field(description="The reason `masque assume` would refuse with (exit 3).")


class MemoryAddRequest(BaseModel):
    text: str
    branch: str | None = None
    tags: list[str] = Field(default_factory=list)
    ttl: str | None = Field(None, description="Forget after this long: 30d, 12h, P7D.")


class Health(BaseModel):
    status: str
    version: str
