"""Which prompt text a parser uses: Langfuse prompt management when configured, else the repo copy.

The repo (``agent/prompts/<name>_v<N>.json``, loaded by ``agent.prompts.load_prompt``) is the
source of truth and the fallback. With Langfuse configured (``agent.tracing.setup_tracing`` hands
this module its client), ``get(name)`` fetches the version labelled ``production`` of the Langfuse
text prompt of the same name and turns it into the same ``Prompt``:

- the Langfuse prompt text is the system prompt;
- its ``config`` holds the rest of the repo format: ``user_template``, ``previous_template``,
  ``examples``, ``notes`` (``publish`` writes exactly that shape).

Its version reads ``"<name>@langfuse-v<N>"`` (e.g. ``"intent@langfuse-v3"``), so traces and gold
scores say which text produced them; ``link(version)`` gives tracing the Langfuse (name, version)
pair, so generations link to the prompt in Langfuse. A fetch that fails (endpoint down, slow, no
such prompt or label, a config that does not fit the format) falls back to the repo copy and says
why in ``ResolvedPrompt.fallback_reason``. Results are cached for ``cache_ttl_s`` seconds.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from agent.prompts import Prompt, load_prompt

log = logging.getLogger(__name__)

LABEL = "production"
FETCH_TIMEOUT_S = 2       # a prompt fetch happens when the agent loads; longer would delay start-up
CACHE_TTL_S = 300         # seconds a resolved prompt is reused before Langfuse is asked again
LANGFUSE_VERSION_MARK = "@langfuse-v"


@dataclass(frozen=True)
class ResolvedPrompt:
    prompt: Prompt
    source: Literal["langfuse", "repo"]
    langfuse_name: str | None = None
    langfuse_version: int | None = None
    fallback_reason: str | None = None    # why Langfuse's copy was not used (None: not configured or used)


def from_langfuse(name: str, version: int, text: str, config: Any) -> Prompt:
    """A Langfuse text prompt (``text`` + ``config``) as a repo-format ``Prompt``; ValueError if
    ``config`` does not fit (unknown keys are rejected like in the repo files)."""
    if not isinstance(config, dict):
        raise ValueError(f"prompt {name!r} v{version}: config must be an object with user_template, "
                         f"previous_template, examples, notes; got {type(config).__name__}")
    try:
        return Prompt(name=name, version=f"{name}{LANGFUSE_VERSION_MARK}{version}", system=text, **config)
    except (TypeError, ValidationError) as exc:
        raise ValueError(f"prompt {name!r} v{version} does not fit the repo prompt format: {exc}") from exc


def to_langfuse(prompt: Prompt) -> tuple[str, dict]:
    """The (text, config) pair ``from_langfuse`` reads back; the repo version goes in ``config``
    as ``notes`` context only, never as the Langfuse version."""
    config = prompt.model_dump(include={"user_template", "previous_template", "examples", "notes"}, mode="json")
    config["notes"] = f"published from {prompt.version}. {prompt.notes}".strip()
    return prompt.system, config


class PromptRegistry:
    """Resolves prompts by name; ``client`` is a ``langfuse.Langfuse`` or None (repo only)."""

    def __init__(self, client: Any | None = None, label: str = LABEL, fetch_timeout_s: int = FETCH_TIMEOUT_S,
                 cache_ttl_s: float = CACHE_TTL_S) -> None:
        self.client = client
        self.label = label
        self.fetch_timeout_s = fetch_timeout_s
        self.cache_ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, ResolvedPrompt]] = {}
        self._links: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> ResolvedPrompt:
        """The prompt to use now (see the module docstring); PromptError if the repo has none."""
        with self._lock:
            cached = self._cache.get(name)
            if cached and time.monotonic() - cached[0] < self.cache_ttl_s:
                return cached[1]
        resolved = self._resolve(name)
        with self._lock:
            self._cache[name] = (time.monotonic(), resolved)
            if resolved.source == "langfuse":
                self._links[resolved.prompt.version] = (resolved.langfuse_name, resolved.langfuse_version)
        return resolved

    def link(self, version: str | None) -> tuple[str, int] | None:
        """Langfuse (name, version) of a prompt version this registry fetched, else None."""
        with self._lock:
            return self._links.get(version) if version else None

    def publish(self, name: str, version: int | None = None, labels: tuple[str, ...] = (LABEL,)) -> int:
        """Upload the repo prompt ``name`` (default: latest version) to Langfuse as a new version
        carrying ``labels``; returns the Langfuse version number. Needs a client."""
        if self.client is None:
            raise RuntimeError("Langfuse is not configured: set LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY and "
                               "LANGFUSE_BASE_URL to publish prompts")
        prompt = load_prompt(name, version)
        text, config = to_langfuse(prompt)
        created = self.client.create_prompt(name=name, prompt=text, config=config, labels=list(labels), type="text",
                                            commit_message=f"from repo {prompt.version}")
        with self._lock:
            self._cache.pop(name, None)
        log.info("published %s to Langfuse as %s v%s (labels %s)", prompt.version, name, created.version, list(labels))
        return int(created.version)

    def _resolve(self, name: str) -> ResolvedPrompt:
        repo = load_prompt(name)
        if self.client is None:
            return ResolvedPrompt(repo, "repo")
        try:
            fetched = self.client.get_prompt(name, label=self.label, type="text", max_retries=0,
                                             fetch_timeout_seconds=self.fetch_timeout_s,
                                             cache_ttl_seconds=int(self.cache_ttl_s))
            prompt = from_langfuse(name, int(fetched.version), fetched.prompt, fetched.config)
        except Exception as exc:  # noqa: BLE001 - any failure means the repo copy answers
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            log.warning("prompt %r: using the repo copy %s (Langfuse label %r unavailable: %s)", name, repo.version,
                        self.label, reason)
            return ResolvedPrompt(repo, "repo", fallback_reason=reason)
        log.info("prompt %r: using Langfuse version %s (label %r)", name, fetched.version, self.label)
        return ResolvedPrompt(prompt, "langfuse", name, int(fetched.version))


_registry = PromptRegistry()


def registry() -> PromptRegistry:
    """The process's registry: repo-only until ``agent.tracing.setup_tracing`` configures Langfuse."""
    return _registry


def configure(client: Any | None) -> PromptRegistry:
    """Replace the process's registry with one using ``client`` (called by ``setup_tracing``)."""
    global _registry
    _registry = PromptRegistry(client)
    return _registry
