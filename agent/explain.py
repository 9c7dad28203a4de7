"""Explanations built only from a pick's evidence, and every claim checkable against it.

Evidence of one pick (``evidence_for``):
- ``profile_items``: the person's liked movies (rated 4+ or swiped like) that the collaborative
  model itself leans on to score the pick: EASE's item-to-item weights from each liked movie to the
  pick (the terms of the pick's own EASE score), the largest ones, and only movies among the
  ``NEIGHBOUR_RANK`` that weigh most toward the pick in the whole catalog;
- ``referenced_titles``: titles the person asked for whose own EASE neighbours rank the pick in
  their top ``NEIGHBOUR_RANK`` ("people who like Alien also like it" is then literally true);
- ``genres`` / ``missing_genres``: the wanted genres the pick has and lacks;
- ``tones``: the mood directions in force and where the pick sits on each (z-score);
- ``sources``: the model sources that ranked it in their top ``CITED_RANK`` (for the "why"
  detail only: people read reasons, operators read model names and ranks).

``explain`` turns that into one short sentence or two for a person; nothing else may be cited.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from agent.ranking import RankedItem, RequestRanker
from agent.replies import PLURAL, join_words as _join

CITED_RANK = 20        # a source is listed in the "why" detail when it ranked the pick this high
NEIGHBOUR_RANK = 50    # "people who like X also like it": the pick is among X's 50 nearest (EASE)
MAX_CITED = 2          # liked movies named per card
LIKED = 4              # a rating (or a like swipe, stored as 5) at least this high is a like

TONE_WORDS = {"darker": "darker", "lighter": "lighter", "funnier": "funnier", "less_violent": "gentler"}


class EvidenceSource:
    """What explanations may consult: the EASE weights and neighbourhoods, the catalog."""

    def __init__(self, ranker: RequestRanker) -> None:
        self.ranker = ranker
        self.data = ranker.data
        ease = ranker.ease
        self.B = getattr(ease, "B", None)  # (n_items, n_items): weight of row item in column item's score

    def liked_contributions(self, liked: list[int], pick: int) -> list[tuple[int, float]]:
        """(liked item, its EASE weight toward the pick), largest first: only items among the
        ``NEIGHBOUR_RANK`` whose weight toward the pick is largest in the catalog."""
        if self.B is None or not liked:
            return []
        pos = self.ranker.position
        rows = [pos[i] for i in liked if i in pos]
        if not rows:
            return []
        column = self.B[:, pos[pick]]
        bar = max(float(np.partition(column, -NEIGHBOUR_RANK)[-NEIGHBOUR_RANK]), 0.0)
        weights = column[rows]
        order = np.argsort(-weights, kind="stable")
        return [(self.ranker.item_ids[rows[k]].item(), float(weights[k])) for k in order
                if weights[k] > 0 and weights[k] >= bar]

    def neighbour_rank(self, title: int, pick: int) -> int | None:
        """The pick's 1-based rank among the title's EASE neighbours, or None."""
        if self.B is None or title not in self.ranker.position:
            return None
        row = self.B[self.ranker.position[title]]
        value = row[self.ranker.position[pick]]
        return int((row > value).sum()) + 1 if value > 0 else None


def evidence_for(item: RankedItem, liked: Mapping[int, int], source: EvidenceSource, wanted: list[str],
                 referenced: list[int], moods: list[str], cited_before: dict[int, int] | None = None) -> dict:
    """The structured evidence of one pick (what the explanation and the "why" detail show).

    ``liked``: the person's ratings (item -> 1..5); ``referenced``: the titles they asked about;
    ``cited_before``: how often each liked movie was cited on earlier cards of the same answer
    (updated here): among the movies that qualify, the less cited go first, so ten cards do not
    all name the same two favourites. Every one that qualifies is equally true."""
    data, pick = source.data, item.item_id
    loved = [i for i, r in liked.items() if r >= LIKED and i != pick]
    qualified = source.liked_contributions(loved, pick)
    if cited_before is not None:
        qualified.sort(key=lambda iw: cited_before.get(iw[0], 0))  # stable: by weight within a count
    cited = qualified[:MAX_CITED]
    if cited_before is not None:
        for i, _ in cited:
            cited_before[i] = cited_before.get(i, 0) + 1
    near = [(t, source.neighbour_rank(t, pick)) for t in referenced if t in data.movies and t != pick]
    top_sources = sorted(((n, r) for n, r in item.source_ranks.items() if r <= CITED_RANK), key=lambda kv: kv[1])[:2]
    tones = {}
    for mood in moods:
        tones[mood] = round(float(source.ranker.tone_scores(mood)[source.ranker.position[pick]]), 2)
    return {
        "profile_items": [{"item_id": i, "title": data.movies[i].display_title, "your_rating": int(liked[i]),
                           "weight": round(w, 4)} for i, w in cited],
        "referenced_titles": [data.movies[t].display_title for t, rank in near if rank and rank <= NEIGHBOUR_RANK],
        "neighbour_ranks": {str(t): rank for t, rank in near if rank},
        "genres": list(item.matched_genres),
        "year": data.movies[pick].year,
        "other_genres": [g for g in data.movies[pick].genres if g not in item.matched_genres],
        "missing_genres": [] if item.alternatives else [g for g in wanted if g not in item.matched_genres],
        "tones": tones,
        "sources": {name: rank for name, rank in top_sources},
    }


def explain(evidence: dict) -> str:
    """One or two short sentences, each clause backed by an entry of ``evidence``."""
    parts = []
    genres = [PLURAL[g] for g in evidence["genres"]]
    if genres and evidence["missing_genres"]:
        missing = " or ".join(PLURAL[g] for g in evidence["missing_genres"])
        parts.append(f"{_join(genres).capitalize()}, though not {missing}.")
    elif genres:
        # the card's own year and its other genres make the reason the card's, not one line ten times
        year = f"A {evidence['year']} " if evidence.get("year") else ("An " if genres[0][0] in "aeiou" else "A ")
        also = [PLURAL[g] for g in evidence.get("other_genres", [])[:2]]
        parts.append(f"{year}{_join(genres)} film, as you asked"
                     + (f", with {_join(also)} in it too." if also else "."))
    if evidence["profile_items"]:
        parts.append(f"Because you liked {_join([p['title'] for p in evidence['profile_items']])}.")
    elif evidence["referenced_titles"]:
        parts.append(f"People who like {_join(evidence['referenced_titles'])} often like it too.")
    leaning = [TONE_WORDS[t] for t, z in evidence.get("tones", {}).items() if z > 0]
    if leaning:
        parts.append(f"On the {_join(leaning)} side.")
    if not parts and "popularity" in evidence["sources"]:
        parts.append("One of the most-watched movies that fit.")
    return " ".join(parts) or "Picked for your request."

