"""The serving settings: one typed object, read from ``CINEAGENT_*`` environment variables (and
``OPENAI_API_KEY``) once, at the entry point (``cineagent serve``, ``python app.py``, the CLI's
agent commands), and passed down from there. Tracing keeps the standard ``OTEL_*`` / ``LANGFUSE_*``
variables, which the OpenTelemetry and Langfuse SDKs read themselves."""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from agent.llm_parser import LLMSettings

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
    db_pool_size: int = Field(default=16, ge=1, description="PostgreSQL connections a process keeps at most")
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="larger request bodies get 413")
    session_ttl_s: float = Field(default=3600.0, gt=0, description="a conversation idle this long is forgotten")
    max_sessions: int = Field(default=10_000, ge=1, description="conversations kept, least recently used out")
    recent_turns: int = Field(default=200, ge=1, description="turns the operator's Traces tab lists")
    max_turns: int = Field(default=100_000, ge=100, description="turn events kept in the store, oldest out")
    max_sessions_person: int = Field(default=100, ge=1, description="a person's conversations kept, their least "
                                     "recently used out (so one person's flood pushes out only their own)")
    max_turns_person: int = Field(default=1_000, ge=10, description="a person's turn events kept, their oldest out")
    access_log: bool = Field(default=False, description="uvicorn's line per request")
    trusted_proxies: str | None = Field(
        default=None, description="comma-separated addresses or networks of reverse proxies whose "
                                  "X-Forwarded-For / X-Forwarded-Proto are believed; unset: none (the TCP peer is the client)")
    canary_fraction: float = Field(default=0.0, ge=0, le=1, description="share of people (the same ones every "
                                   "time: a hash of their key) served the registry's challenger; 0: nobody")
    shadow: bool = Field(default=False, description="with a challenger in the registry, every turn that ranks cards "
                         "is ranked by it too, after the reply (never shown): its top-10 is stored with the turn "
                         "and traced, and the nightly job compares the two")
    model_check_s: float = Field(default=30.0, ge=0, description="how often a server asks the model registry "
                                 "which version is the champion, and switches to it (0: never; restart instead)")
    # the LLM (unset base URL: the offline parser answers)
    llm_base_url: str | None = Field(default=None, description="an OpenAI-compatible endpoint")
    llm_model: str | None = Field(default=None, description="model name sent to it")
    llm_timeout_s: float | None = Field(default=None, gt=0, description="seconds before the offline parser answers")
    llm_replies: bool = Field(default=True, description="the LLM words replies and reasons (validated)")
    openai_api_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices("OPENAI_API_KEY"))
    # the operator credential (unset: operator views off) and abuse limits a minute (0 = off)
    admin_token: SecretStr | None = Field(default=None, description="the operator's credential, 16+ characters")
    rate_turns_person: int = Field(default=30, ge=0)
    rate_turns_client: int = Field(default=120, ge=0)
    rate_swipes_person: int = Field(default=120, ge=0)
    rate_swipes_client: int = Field(default=600, ge=0)
    rate_people_client: int = Field(default=10, ge=0)
    rate_exports_person: int = Field(default=6, ge=0)
    rate_operator_signins_client: int = Field(default=5, ge=0)

    @field_validator("admin_token", "openai_api_key", "llm_base_url", "llm_model", "trusted_proxies", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("admin_token")
    @classmethod
    def _guessable(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("at least 16 characters (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`),"
                             " or unset it to turn operator views off")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str | None) -> str | None:
        if value is None:
            return None
        import ipaddress

        names = [n.strip() for n in value.split(",") if n.strip()]
        for name in names:
            if name == "*":
                raise ValueError("'*' would believe anyone's X-Forwarded-For; name the proxy's address")
            try:
                ipaddress.ip_network(name, strict=False)
            except ValueError:
                raise ValueError(f"{name!r} is not an IP address or network (e.g. 127.0.0.1 or 10.0.0.0/8)") from None
        return ",".join(names) or None

    def llm(self) -> "LLMSettings | None":
        """The LLM's settings, or None when no endpoint is configured."""
        if self.llm_base_url is None:   # blank reads as unset (_blank_is_unset)
            return None
        from agent.llm_parser import LLMSettings

        given = {"model": self.llm_model, "timeout_s": self.llm_timeout_s,
                 "api_key": self.openai_api_key.get_secret_value() if self.openai_api_key else None}
        return LLMSettings(base_url=self.llm_base_url.strip(), **{k: v for k, v in given.items() if v})

    def rates(self) -> dict[str, int]:
        """The abuse limits, by the names ``web.limits.RateSettings`` takes."""
        return {name[len("rate_"):]: getattr(self, name) for name in type(self).model_fields if name.startswith("rate_")}

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        try:
            return cls(**overrides)
        except ValidationError as exc:
            problems = "; ".join(f"CINEAGENT_{str(e['loc'][0]).upper()}: {e['msg']}" for e in exc.errors())
            raise SettingsError(f"invalid configuration: {problems}") from None
