"""Real dialogues: replay a seeker's messages to the agent and score its last cards.

Each case is a conversation in which a person asked another person for a movie, and the movies
that person suggested next (``targets``, MovieLens item ids). The case is replayed as a new
person with a fresh session: the seeker's messages go to the agent in order, and the cards of the
last reply that had any are the agent's ranking (no reply with cards: the case scores 0).
Recall@k is the share of a case's targets in the top k, averaged over cases; HR@10 the share of
cases with any target in the top 10. The case file's schema (one JSON object per line):

    {"id": str, "seeker_messages": [str, ...], "mentioned": [item id, ...],
     "seeker_mentioned": [item id, ...], "targets": [item id, ...], ...}

(ReDial conversations mapped to MovieLens 100k have this shape.) Baselines from the same run:

- ``popularity``: the most-rated MovieLens movies, minus those the dialogue mentioned;
- ``corated``: the movies most often rated by the same MovieLens users as the movies the seeker
  mentioned (co-rating counts), minus the mentioned ones; popularity fills what it leaves. It
  knows what the agent is told;
- ``corated_all``: the same from every movie the dialogue mentioned, the other person's too:
  more than the agent is told, so a stronger yardstick.
"""
from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from data.movielens import MovieLens
from data.errors import CineAgentError

log = logging.getLogger(__name__)

KS = (1, 5, 10)
SYSTEMS = ("cineagent", "popularity", "corated", "corated_all")


class DialogueSetError(CineAgentError, ValueError):
    """The dialogue file cannot be read as cases; the message names the file, line and field."""


def load_dialogues(path: str | Path) -> list[dict]:
    """Cases from a JSON Lines file (or a JSON list), each checked for the fields scoring needs."""
    path = Path(path)
    if not path.is_file():
        raise DialogueSetError(f"{path}: no such file; pass --dataset with a JSON Lines file of dialogues")
    text = path.read_text(encoding="utf-8")
    try:
        rows = json.loads(text) if text.lstrip().startswith("[") else [
            json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise DialogueSetError(f"{path}: not JSON Lines ({exc})") from None
    cases = []
    for number, row in enumerate(rows, 1):
        where = f"{path} case {number}"
        if not isinstance(row, dict):
            raise DialogueSetError(f"{where}: expected an object")
        messages, targets = row.get("seeker_messages"), row.get("targets")
        if not isinstance(messages, list) or not all(isinstance(m, str) for m in messages):
            raise DialogueSetError(f"{where}: 'seeker_messages' must be a list of strings")
        if not isinstance(targets, list) or not targets or not all(_is_id(t) for t in targets):
            raise DialogueSetError(f"{where}: 'targets' must be a non-empty list of MovieLens item ids")
        for key in ("mentioned", "seeker_mentioned"):
            if not all(_is_id(t) for t in row.get(key, [])):
                raise DialogueSetError(f"{where}: '{key}' must be a list of MovieLens item ids")
        cases.append({"id": str(row.get("id", number)), "seeker_messages": messages, "targets": list(targets),
                      "mentioned": list(row.get("mentioned", [])),
                      "seeker_mentioned": list(row.get("seeker_mentioned", []))})
    if not cases:
        raise DialogueSetError(f"{path}: no cases")
    return cases


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def case_metrics(ranked: Sequence[int], targets: Iterable[int]) -> dict[str, float]:
    targets = set(targets)
    out = {f"R@{k}": len(targets & set(ranked[:k])) / len(targets) for k in KS}
    out["HR@10"] = float(bool(targets & set(ranked[:10])))
    return out


class Baselines:
    """Popularity and co-rating baselines over the MovieLens ratings."""

    def __init__(self, data: MovieLens) -> None:
        ratings = data.ratings
        self.item_ids = np.asarray(data.item_ids)
        pos = {int(i): p for p, i in enumerate(self.item_ids)}
        self.position = pos
        users = {int(u): r for r, u in enumerate(sorted(ratings["user_id"].unique()))}
        rows = ratings["user_id"].map(users).to_numpy()
        cols = ratings["item_id"].map(pos).to_numpy()
        # user x item incidence: who rated what (any rating: co-rating is about audiences, not taste)
        self.rated = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                                   shape=(len(users), len(self.item_ids)))
        self.counts = np.asarray(self.rated.sum(axis=0)).ravel()
        self.by_popularity = [int(self.item_ids[p]) for p in np.argsort(-self.counts, kind="stable")]
        self._rated_csc = self.rated.tocsc()

    def popularity(self, exclude: Iterable[int], k: int = 10) -> list[int]:
        exclude = set(exclude)
        return [i for i in self.by_popularity if i not in exclude][:k]

    def corated(self, seeds: Iterable[int], exclude: Iterable[int], k: int = 10) -> list[int]:
        cols = [self.position[s] for s in seeds if s in self.position]
        exclude = set(exclude)
        if not cols:
            return self.popularity(exclude, k)
        raters = self._rated_csc[:, cols]
        co = np.asarray((self.rated.T @ raters).sum(axis=1)).ravel()  # co-rating counts with the seeds
        co[cols] = -1.0
        order = np.lexsort((-self.counts, -co))  # co-rating first, popularity breaks ties
        picks = [int(self.item_ids[p]) for p in order if co[p] > 0 and int(self.item_ids[p]) not in exclude][:k]
        return picks + [i for i in self.popularity(exclude | set(picks), k) if i not in picks][: k - len(picks)]


Replay = Callable[[dict], tuple[list[int], dict]]


def agent_replay(agent) -> Replay:
    """Replay one case through a DialogueManager as a brand-new person with a fresh session."""

    def replay(case: dict) -> tuple[list[int], dict]:
        user, session = f"dialogue-{uuid.uuid4().hex[:16]}", uuid.uuid4().hex
        last: list[int] = []
        replies, last_had_cards = [], False
        for message in case["seeker_messages"]:
            result = agent.turn(user, session, message)
            cards = [c.item_id for c in result.cards]
            last_had_cards = bool(cards)
            if cards:
                last = cards
            replies.append({"message": message[:200], "act": result.act, "items": cards[:10], "text": result.text,
                            "unused": [u.model_dump() for u in result.unused]})
        return last, {"replies": replies, "last_reply_had_cards": last_had_cards}

    return replay


def api_replay(base_url: str, timeout_s: float = 30.0) -> Replay:
    """Replay one case through a served app's JSON API, as a person would: ``POST /api/people``
    for a new person, then each message to ``POST /api/chat`` with that person's bearer token. A
    429 waits the ``Retry-After`` it names (start the app with higher ``CINEAGENT_RATE_*`` limits
    to go faster). The person is deleted afterwards (``DELETE /api/people/me``)."""
    base = base_url.rstrip("/")

    def call(method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        for _ in range(20):
            request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=timeout_s) as response:
                    raw = response.read()
                    return json.loads(raw) if raw else {}
            except urllib.error.HTTPError as exc:
                if exc.code != 429:
                    raise DialogueSetError(f"{method} {path}: HTTP {exc.code} {exc.read()[:300]!r}") from None
                time.sleep(float(exc.headers.get("Retry-After") or 1))
        raise DialogueSetError(f"{method} {path}: still rate limited after 20 tries; raise the app's limits")

    def replay(case: dict) -> tuple[list[int], dict]:
        person = call("POST", "/api/people", {"name": f"dialogue {case['id']}"[:60]})
        token, session = person["token"], uuid.uuid4().hex
        last: list[int] = []
        replies, last_had_cards = [], False
        try:
            for message in case["seeker_messages"]:
                reply = call("POST", "/api/chat", {"session_id": session, "message": message[:2000]}, token)
                cards = [int(c["item_id"]) for c in reply["items"]]
                last_had_cards = bool(cards)
                last = cards or last
                replies.append({"message": message[:200], "act": reply.get("intent", {}).get("act"),
                                "items": cards[:10], "text": reply["text"], "unused": reply.get("unused", [])})
        finally:
            call("DELETE", "/api/people/me", token=token)
        return last, {"replies": replies, "last_reply_had_cards": last_had_cards}

    return replay


def evaluate_dialogues(cases: Sequence[dict], data: MovieLens, replay: Replay, k: int = 10) -> dict:
    """Score the agent and both baselines on every case; the report keeps each case's answer."""
    baselines = Baselines(data)
    rows: dict[str, list[dict]] = {name: [] for name in SYSTEMS}
    out_cases, no_cards, last_without, started = [], 0, 0, time.perf_counter()
    for case in cases:
        ranked, detail = replay(case)
        mentioned = set(case["mentioned"])
        answers = {"cineagent": ranked[:k], "popularity": baselines.popularity(mentioned, k),
                   "corated": baselines.corated(case["seeker_mentioned"], mentioned, k),
                   "corated_all": baselines.corated(case["mentioned"], mentioned, k)}
        for name, items in answers.items():
            rows[name].append(case_metrics(items, case["targets"]))
        no_cards += not ranked
        last_without += not detail["last_reply_had_cards"]
        out_cases.append({"id": case["id"], "targets": case["targets"], "cineagent": ranked[:k],
                          **{f"{n}_R@10": rows[n][-1]["R@10"] for n in SYSTEMS}, **detail})
    metrics = {name: {**{key: float(np.mean([r[key] for r in rs])) for key in rs[0]}, "n": len(rs)}
               for name, rs in rows.items()}
    n = len(cases)
    return {"metrics": metrics, "n": n, "no_cards": no_cards, "no_cards_share": no_cards / n,
            "last_reply_without_cards": last_without, "seconds": round(time.perf_counter() - started, 1),
            "cases": out_cases}


def format_report(report: dict) -> str:
    lines = [f"{report['n']} dialogues in {report['seconds']:.0f} s; {report['no_cards']} "
             f"({report['no_cards_share']:.1%}) ended with no cards at all, {report['last_reply_without_cards']} "
             "with a last reply without cards",
             f"{'system':<12}" + "".join(f"{m:>8}" for m in ("R@1", "R@5", "R@10", "HR@10"))]
    for name in SYSTEMS:
        m = report["metrics"][name]
        lines.append(f"{name:<12}" + "".join(f"{m[key]:>8.3f}" for key in ("R@1", "R@5", "R@10", "HR@10")))
    return "\n".join(lines)
