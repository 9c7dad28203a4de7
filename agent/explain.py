"""Explanations built only from a pick's evidence: profile items it resembles, the requested
genres it has, and the sources that ranked it. Nothing else may be cited."""
from __future__ import annotations

from data.movielens import MovieLens
from retrieval.profile_index import ProfileHit

from agent.ranking import RankedItem

SOURCE_PHRASES = {
    "two_tower": "your taste profile (two-tower model)",
    "ease": "people who liked what you liked (EASE)",
    "svd": "your rating pattern (SVD)",
    "popularity": "its popularity",
    "semantic": "how closely it matches your request",
    "neighbours": "its similarity to the titles you mentioned",
    "evidence": "its closeness to your favourites for this request",
}
CITED_RANK = 20        # a source is named as a reason only when it ranked the pick this high
MIN_RESEMBLANCE = 0.35  # cosine below this is not "resembles" (MiniLM texts of unrelated films sit ~0.2)


def evidence_for(item: RankedItem, resembled: list[ProfileHit], data: MovieLens, referenced: list[int]) -> dict:
    """The structured evidence of one pick (what the explanation and the UI's "why" show).

    ``resembled``: the person's liked items nearest to the pick (``ProfileStore.search_many``)."""
    hits = [h for h in resembled if h.score >= MIN_RESEMBLANCE and h.item_id != item.item_id]
    top_sources = sorted(((n, r) for n, r in item.source_ranks.items() if r <= CITED_RANK), key=lambda kv: kv[1])[:2]
    return {
        "profile_items": [{"item_id": h.item_id, "title": data.movies[h.item_id].label,
                           "similarity": round(h.score, 3), "your_rating": h.rating} for h in hits],
        "genres": list(item.matched_genres),
        "sources": {name: rank for name, rank in top_sources},
        "referenced_titles": [data.movies[t].label for t in referenced if t in data.movies]
        if "neighbours" in item.source_ranks else [],
    }


def explain(evidence: dict) -> str:
    """One or two sentences, each clause backed by an entry of ``evidence``."""
    parts = []
    if evidence["genres"]:
        parts.append(f"It is {' and '.join(evidence['genres'])}, as you asked.")
    if evidence["profile_items"]:
        titles = " and ".join(p["title"] for p in evidence["profile_items"])
        parts.append(f"It resembles {titles}, which you liked.")
    if evidence["referenced_titles"]:
        parts.append(f"People who like {', '.join(evidence['referenced_titles'])} like it too.")
    if evidence["sources"]:
        reasons = " and ".join(f"{SOURCE_PHRASES.get(n, n)} (#{r})" for n, r in evidence["sources"].items())
        parts.append(f"Ranked high by {reasons}.")
    return " ".join(parts) or "A popular pick."
