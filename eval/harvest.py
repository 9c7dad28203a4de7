"""``cineagent eval harvest``: candidate gold cases from what people did, written for review.

Three kinds of disagreement between the agent and the person, read from the ``Swipe`` and
``Turn`` events of the event store (``data.event_store``):

- ``liked_low``: a liked card the agent had placed at rank ``low_rank`` or below;
- ``disliked_high``: a disliked card the agent had placed at rank ``high_rank`` or above;
- ``corrected``: the next message of the same session, within ``window_s`` seconds, refines the
  request with genres or exclusions (the first reading may have missed them), or asks again in
  other words (content words overlapping by ``reask_overlap``) and gets a different reading.

Each becomes a case in the gold schema (``{"id", "utterance", "expected", "tags"}``) plus a
``"reason"`` saying what happened (items, ranks, genres, the trace id). ``expected`` is a
suggestion for the reviewer: the parse of that turn for swipes, the parse with the correction
applied for ``corrected`` (which wins when both concern one utterance). Utterances already in the gold set are skipped and one case is kept per
utterance (reasons joined). Candidates go to ``$CINEAGENT_HOME/eval/candidates-<date>.jsonl`` and
are never merged into ``data/eval_dataset.json``: a person reviews them, drops ``reason`` and
copies the good ones over (``eval.gold.validate_case`` accepts each once ``reason`` is removed).
"""
from __future__ import annotations

import json
import logging
import re
from datetime import date as Date
from pathlib import Path
from typing import Any, Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from data.events import Swipe, Turn
from data.movielens import GENRES
from data.store import home, write_bytes_atomic

log = logging.getLogger(__name__)


class HarvestConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    low_rank: int = Field(default=8, ge=1)            # a liked card at this rank or lower was ranked too low
    high_rank: int = Field(default=2, ge=1)           # a disliked card at this rank or higher was ranked too high
    window_s: float = Field(default=300.0, gt=0)      # a correction follows within this many seconds
    reask_overlap: float = Field(default=0.6, ge=0, le=1)  # Jaccard of the content words of a re-ask


# words that say nothing about which movie: two requests sharing only these are not the same request
FILLER = frozenset("a an the some any me my i i'm im we you please want wanted would like to watch see show give "
                   "find recommend something anything movie movies film films flick flicks one ones with in on of "
                   "for about that this them it is are be and or good great nice really".split())


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def content_words(text: str) -> set[str]:
    """Lower-cased words minus ``FILLER``, a plural "s" dropped ("dinosaurs" -> "dinosaur")."""
    words = re.findall(r"[a-z0-9']+", text.casefold())
    return {w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words if w not in FILLER}


def overlap(a: str, b: str) -> float:
    """Jaccard similarity of the content words of two messages (0 when either has none)."""
    wa, wb = content_words(a), content_words(b)
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


def parsed_reading(turn: Turn) -> dict | None:
    """What the parser read from the turn's message: {"genres", "exclude_genres", "titles"}."""
    if turn.parsed is None:
        return None
    return {key: list(turn.parsed.get(key, [])) for key in ("genres", "exclude_genres", "titles")}


def _describe(item_id: int, movies: dict | None) -> str:
    movie = (movies or {}).get(item_id)
    return f"item {item_id}" if movie is None else f"{movie.title} ({movie.year}) [{'|'.join(movie.genres)}]"


def swipe_candidates(records: Iterable[Swipe], turns: dict[str, Turn], config: HarvestConfig,
                     movies: dict | None = None) -> list[dict]:
    out = []
    for r in records:
        if r.rank is None or not r.trace_id:
            continue
        kind = ("liked_low" if r.action == "like" and r.rank >= config.low_rank else
                "disliked_high" if r.action == "dislike" and r.rank <= config.high_rank else None)
        turn = turns.get(r.trace_id)
        reading = parsed_reading(turn) if turn else None
        if kind is None or reading is None or not turn.message:
            continue
        verb = "liked" if r.action == "like" else "disliked"
        out.append({"utterance": turn.message, "expected": reading, "kind": kind,
                    "reason": f"{verb} {_describe(r.item_id, movies)} shown at rank {r.rank}; the request was read as "
                              f"genres {reading['genres'] or '-'}, excluded {reading['exclude_genres'] or '-'}, "
                              f"titles {reading['titles'] or '-'} (trace {r.trace_id})"})
    return out


def correction_candidates(turns: Sequence[Turn], config: HarvestConfig) -> list[dict]:
    """Turns whose next message in the conversation corrects or re-asks them."""
    by_session: dict[tuple[str, str], list[Turn]] = {}
    for t in turns:
        if t.message and t.outcome == "ok":
            by_session.setdefault((t.user_id, t.session_id), []).append(t)
    out = []
    for session in by_session.values():
        session.sort(key=lambda t: t.ts)
        for first, nxt in zip(session, session[1:]):
            if first.act not in ("recommend", "refine", "clarify") or (nxt.ts - first.ts).total_seconds() > config.window_s:
                continue
            before, after = parsed_reading(first), parsed_reading(nxt)
            if before is None or after is None:
                continue
            if nxt.act == "refine":
                added = [g for g in after["genres"] if g not in before["genres"]]
                excluded = [g for g in after["exclude_genres"] if g not in before["exclude_genres"]]
                if not (added or excluded):
                    continue
                expected = {"genres": [g for g in GENRES if g in {*before["genres"], *added} and g not in excluded],
                            "exclude_genres": [g for g in GENRES if g in {*before["exclude_genres"], *excluded}],
                            "titles": before["titles"]}
                what = "; ".join(p for p in (f"+{', '.join(added)}" if added else "",
                                              f"no {', '.join(excluded)}" if excluded else "") if p)
                reason = (f"the next message {nxt.message!r} refined it ({what}); the first reading may have missed "
                          f"it (trace {first.trace_id})")
            elif (nxt.act == "recommend" and after != before
                  and overlap(first.message, nxt.message) >= config.reask_overlap):
                expected = after
                reason = (f"asked again as {nxt.message!r}, read differently: {before} then {after} "
                          f"(traces {first.trace_id}, {nxt.trace_id})")
            else:
                continue
            out.append({"utterance": first.message, "expected": expected, "kind": "corrected", "reason": reason})
    return out


def harvest(records: Iterable[Swipe], turns: Sequence[Turn], gold_cases: Sequence[dict],
            config: HarvestConfig | None = None, movies: dict | None = None, day: Date | None = None) -> list[dict]:
    """Candidate gold cases (see the module docstring), in the gold schema plus ``reason``."""
    config = config or HarvestConfig()
    index = {t.trace_id: t for t in turns}
    known = {_norm(c["utterance"]) for c in gold_cases}
    merged: dict[str, dict] = {}
    for cand in [*swipe_candidates(records, index, config, movies), *correction_candidates(turns, config)]:
        key = _norm(cand["utterance"])
        if key in known or not key:
            continue
        if key in merged:
            kept = merged[key]
            kept["reason"] += f" | {cand['reason']}"
            if cand["kind"] == "corrected":
                kept["expected"] = cand["expected"]   # a correction says more than the reading a swipe copies
            if cand["kind"] not in kept["tags"]:
                kept["tags"].append(cand["kind"])
            continue
        merged[key] = {"utterance": cand["utterance"], "expected": cand["expected"], "tags": ["harvested", cand["kind"]],
                       "reason": cand["reason"]}
    stamp = (day or Date.today()).isoformat()
    return [{"id": f"harvest-{stamp}-{n:03d}", **c} for n, c in enumerate(merged.values(), 1)]


def write_candidates(candidates: Sequence[dict], path: Path | None = None, day: Date | None = None) -> Path:
    """Write the review file (default ``$CINEAGENT_HOME/eval/candidates-<date>.jsonl``) atomically."""
    path = path or home() / "eval" / f"candidates-{(day or Date.today()).isoformat()}.jsonl"
    payload = "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in candidates)
    write_bytes_atomic(path, payload.encode("utf-8"))
    return path


def run_harvest(config: HarvestConfig | None = None, database_url: str | None = None, gold_set: Path | None = None,
                out: Path | None = None, data: Any = None) -> tuple[list[dict], Path]:
    """Read the swipes and turns from the event store, harvest, write the review file; returns
    (candidates, path)."""
    from data import GOLD_SET
    from data.event_store import open_store
    from eval.gold import load_cases

    store = open_store(database_url)
    try:
        swipes, turns = store.swipes(), store.turns()
    finally:
        store.close()
    movies = data.movies if data is not None else None
    candidates = harvest(swipes, turns, load_cases(gold_set or GOLD_SET), config, movies)
    path = write_candidates(candidates, out)
    log.info("harvest: %d candidate(s) from %d turns -> %s", len(candidates), len(turns), path)
    return candidates, path
