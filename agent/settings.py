"""The serving settings: one typed object, read from ``CINEAGENT_*`` environment variables once, at
the entry point (``cineagent serve``, ``python app.py``), and passed down from there."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from data.errors import CineAgentError


class SettingsError(CineAgentError):
    pass


class Settings(BaseSettings):
    """Each field is the environment variable ``CINEAGENT_<NAME>`` (all optional)."""

    model_config = SettingsConfigDict(env_prefix="CINEAGENT_", extra="ignore", frozen=True)

    parser: Literal["auto", "offline", "llm"] = Field(
        default="auto", description="auto: the LLM parser when CINEAGENT_LLM_BASE_URL is set, else offline")
    database_url: str | None = Field(
        default=None, description="postgresql://user@host:port/db to share state between replicas; "
                                  "unset: SQLite under CINEAGENT_HOME")
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="larger request bodies get 413")
    session_ttl_s: float = Field(default=3600.0, gt=0, description="a conversation idle this long is forgotten")
    max_sessions: int = Field(default=10_000, ge=1, description="conversations kept, least recently used out")
    recent_turns: int = Field(default=200, ge=1, description="turns the operator's Traces tab lists")
    max_turns: int = Field(default=100_000, ge=100, description="turn events kept in the store, oldest out")
    access_log: bool = Field(default=False, description="uvicorn's line per request")

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        try:
            return cls(**overrides)
        except ValidationError as exc:
            problems = "; ".join(f"CINEAGENT_{str(e['loc'][0]).upper()}: {e['msg']}" for e in exc.errors())
            raise SettingsError(f"invalid configuration: {problems}") from None
