"""The span attributes Langfuse reads, in one place (names as in the Langfuse v5 SDK's
``langfuse._client.attributes.LangfuseOtelSpanAttributes``), and the scrubbing of what leaves the
process.

Instrumentation scope: the Langfuse server treats spans whose scope name starts with
``langfuse-sdk`` as its own SDK's. For those it maps the ``langfuse.*`` attributes onto the
observation and stops there; for any other scope it also copies every span attribute into the
observation's metadata (``metadata.attributes``), i.e. each step's input and output twice. So our
spans use the SDK's scope name, with the ``public_key`` scope attribute that the server checks
against the key the batch was sent with (``SCOPE`` / ``scope_attributes``).

Trace-level attributes (name, user, session, version, metadata) go on every span, as the SDK's
``propagate_attributes`` does: Langfuse filters observations, not only traces, by them.

Minimum server: the pinned SDK (langfuse 5.x) needs Langfuse Cloud or self-hosted Langfuse
v4.59.0 or later (``MIN_SERVER_VERSION``). Among other things its score queue posts a JSON array
of scores to ``POST /api/public/scores``, which older servers, taking one score object, reject.
"""
from __future__ import annotations

import json
from typing import Any, Callable

import orjson

from agent.steps import Step

SCOPE = "langfuse-sdk"          # the SDK's LANGFUSE_TRACER_NAME: see the module docstring
MIN_SERVER_VERSION = "4.59.0"   # for langfuse 5.x (its v4 -> v5 upgrade guide, "Minimum versions")

TRACE_NAME = "langfuse.trace.name"
USER_ID = "user.id"
SESSION_ID = "session.id"
TAGS = "langfuse.trace.tags"
TRACE_METADATA = "langfuse.trace.metadata"
VERSION = "langfuse.version"
RELEASE = "langfuse.release"
ENVIRONMENT = "langfuse.environment"
TYPE = "langfuse.observation.type"
INPUT = "langfuse.observation.input"
OUTPUT = "langfuse.observation.output"
METADATA = "langfuse.observation.metadata"
LEVEL = "langfuse.observation.level"
STATUS_MESSAGE = "langfuse.observation.status_message"
MODEL = "langfuse.observation.model.name"
MODEL_PARAMETERS = "langfuse.observation.model.parameters"
USAGE = "langfuse.observation.usage_details"
PROMPT_NAME = "langfuse.observation.prompt.name"
PROMPT_VERSION = "langfuse.observation.prompt.version"

MAX_TEXT = 1000             # characters kept of any exported string (a request is at most 2000)
MAX_ITEMS = 50              # elements kept of any exported list (a page is at most 50 cards)
# keys that would carry a person's history rather than ids of this turn: never exported
PERSONAL_KEYS = frozenset({"ratings", "rating", "your_rating", "profile", "history", "swipes", "likes",
                           "dislikes", "evidence", "profile_items"})


# what a generation's parameters may hold: the model's own sampling settings, not the client's
# (``timeout_s``, a base URL...), which Langfuse would show as if the model had been given them
MODEL_PARAMETER_KEYS = frozenset({"temperature", "max_tokens", "top_p", "top_k", "min_p", "seed", "stop",
                                  "frequency_penalty", "presence_penalty", "repeat_penalty", "response_format",
                                  "tool_choice", "n"})


def session_key(user_id: str, session_id: str) -> str:
    """The Langfuse session id of a person's conversation: ``{user}:{session}``, so that two people
    who both name their session "s1" do not share one Langfuse session."""
    return f"{user_id}:{session_id}"


def session_of(user_id: str | None, key: str | None) -> str | None:
    """The person's own session id back from ``session_key`` (a key without the prefix as it is)."""
    prefix = f"{user_id}:"
    return key[len(prefix):] if key and user_id is not None and key.startswith(prefix) else key


def scope_attributes(public_key: str | None) -> dict[str, str] | None:
    return {"public_key": public_key} if public_key else None


def scrub(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy for export: ``PERSONAL_KEYS`` dropped, strings cut to ``MAX_TEXT``, lists to
    ``MAX_ITEMS``, nesting below 6 levels summarised."""
    # exact type checks first: this runs over every step of every turn (ABC checks cost 10x more)
    kind = type(value)
    if kind is str:
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"
    if value is None or kind is int or kind is float or kind is bool:
        return value
    if depth > 6:
        return "…"
    if isinstance(value, dict):
        return {str(k): scrub(v, depth + 1) for k, v in value.items() if str(k) not in PERSONAL_KEYS}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [scrub(v, depth + 1) for v in list(value)[:MAX_ITEMS]]
    if isinstance(value, (int, float)):   # numpy scalars and other number types
        return value.item() if hasattr(value, "item") else float(value)
    return scrub(str(value), depth + 1)


def dumps(value: Any) -> str:
    """Scrubbed JSON, as Langfuse reads input, output and metadata values (orjson: compact, UTF-8
    kept, as ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))``, at a third of the CPU:
    this runs for every step of every turn, on the turn's own thread)."""
    return orjson.dumps(scrub(value)).decode()


def metadata(prefix: str, values: dict[str, Any]) -> dict[str, str]:
    """``{prefix}.{key}`` = JSON value, None values left out (the SDK encodes strings too)."""
    return {f"{prefix}.{k}": json.dumps(v, ensure_ascii=False) for k, v in values.items() if v is not None}


def trace_attributes(name: str, user_id: str, session_id: str, version: str | None, trace_metadata: dict) -> dict:
    """What every span of a turn carries (``propagate_attributes``)."""
    attrs = {TRACE_NAME: name, USER_ID: user_id, SESSION_ID: session_id, **metadata(TRACE_METADATA, trace_metadata)}
    if version:
        attrs[VERSION] = version
    return attrs


def step_attributes(step: Step, prompt_link: Callable[[str | None], tuple[str, int] | None]) -> dict:
    """A finished step as a Langfuse observation: type, input, output, level, and for a
    generation model, parameters, usage and the Langfuse prompt it used (``prompt_link``)."""
    facts = step.facts
    attrs: dict[str, Any] = {TYPE: step.kind or "span", INPUT: dumps(step.input), OUTPUT: dumps(step.output)}
    attrs.update(metadata(METADATA, {k: step.output.get(k) for k in ("parser", "prompt_version", "fallback_reason")}))
    if step.output.get("fallback_reason"):   # answered, but not the way it was asked
        attrs[LEVEL], attrs[STATUS_MESSAGE] = "WARNING", f"LLM parser fell back to offline: {step.output['fallback_reason']}"
    if step.kind == "generation":
        attrs.update(_generation(facts, prompt_link))
    if facts.get("level"):
        attrs[LEVEL], attrs[STATUS_MESSAGE] = facts["level"], str(facts.get("status_message", ""))[:MAX_TEXT]
    if step.error:
        attrs[LEVEL], attrs[STATUS_MESSAGE] = "ERROR", step.error[:MAX_TEXT]
    return attrs


def _generation(facts: dict, prompt_link: Callable[[str | None], tuple[str, int] | None]) -> dict:
    attrs: dict[str, Any] = {"gen_ai.operation.name": "chat"}
    model, usage = facts.get("model"), facts.get("usage") or {}
    params = {k: v for k, v in (facts.get("model_parameters") or {}).items() if k in MODEL_PARAMETER_KEYS}
    attrs.update(metadata(METADATA, {"prompt_version": facts.get("prompt_version")}))
    if model:
        attrs[MODEL] = attrs["gen_ai.request.model"] = model
    if params:
        attrs[MODEL_PARAMETERS] = json.dumps(params)
        for key, otel in (("temperature", "gen_ai.request.temperature"), ("max_tokens", "gen_ai.request.max_tokens")):
            if params.get(key) is not None:
                attrs[otel] = params[key]
    tokens_in, tokens_out = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    if tokens_in or tokens_out:
        total = int(usage.get("total_tokens") or tokens_in + tokens_out)
        attrs[USAGE] = json.dumps({"input": tokens_in, "output": tokens_out, "total": total})
        attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"] = tokens_in, tokens_out
    link = prompt_link(facts.get("prompt_version"))
    if link:
        attrs[PROMPT_NAME], attrs[PROMPT_VERSION] = link
    return attrs
