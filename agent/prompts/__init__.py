"""Versioned prompts, shipped with the package as ``<name>_v<N>.json`` files in this folder.

A prompt is never edited in place once it has been evaluated: a change is a new file with the next
version number, so every trace and gold-set score names the exact text that produced it
(``Prompt.version``, e.g. ``"intent_v1"``). ``load_prompt(name)`` returns the latest version.

File format (JSON, unknown keys rejected)::

    {"name": "intent", "version": "intent_v1",
     "notes": "...",             # why the text and examples are what they are (for the next version)
     "system": "...",            # system prompt; "{genres}" is replaced by the genre vocabulary
     "user_template": "{text}",  # the message as sent; "{text}" is the person's message
     "previous_template": "...", # used instead when a standing request exists; "{previous}", "{text}"
     "examples": [{"user": "...", "previous": {...} | null, "output": {...}}]}  # few-shot
"""
from __future__ import annotations

import json
import re
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from data.errors import CineAgentError

_FILE = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)_v(?P<number>\d+)\.json$")


class PromptError(CineAgentError, ValueError):
    """A prompt that does not exist or does not parse; the message names what is available."""


class Example(BaseModel):
    """One few-shot turn: the person's message, the standing request if any, the expected output."""

    model_config = ConfigDict(extra="forbid")

    user: str
    previous: dict | None = None
    output: dict


class Prompt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    notes: str = ""
    system: str
    user_template: str = "{text}"
    previous_template: str = "{text}"
    examples: list[Example] = Field(default_factory=list)


def available(name: str) -> list[int]:
    """Version numbers of prompt ``name`` shipped in this folder, ascending."""
    numbers = []
    for entry in resources.files(__name__).iterdir():
        m = _FILE.match(entry.name)
        if m and m["name"] == name:
            numbers.append(int(m["number"]))
    return sorted(numbers)


def load_prompt(name: str, version: int | None = None) -> Prompt:
    """The prompt ``name`` at ``version`` (default: the latest shipped).

    Raises PromptError naming the versions that exist when the file is missing, and the field at
    fault when it does not match the format above."""
    numbers = available(name)
    if not numbers:
        raise PromptError(f"no prompt named {name!r} in {__name__}")
    number = numbers[-1] if version is None else version
    if number not in numbers:
        raise PromptError(f"prompt {name!r} has no version {number}; available: {numbers}")
    file_name = f"{name}_v{number}.json"
    try:
        prompt = Prompt.model_validate(json.loads(resources.files(__name__).joinpath(file_name).read_text("utf-8")))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise PromptError(f"{file_name} is not a valid prompt file: {exc}") from exc
    if prompt.name != name or prompt.version != f"{name}_v{number}":
        raise PromptError(f"{file_name} declares name={prompt.name!r} version={prompt.version!r}; "
                          f"expected {name!r} and '{name}_v{number}'")
    return prompt
